"""The columns of a built dataset.  The writer produces them and
``benchmark.data`` consumes them; this module is the single source of truth."""

from __future__ import annotations

import datasets

LABELS = ["bonafide", "spoof"]  # ClassLabel ids: bonafide=0, spoof=1
BONAFIDE, SPOOF = 0, 1
STORE_RATE = 16000
NO_CODEC = "none"

FEATURES = datasets.Features(
    {
        "audio": datasets.Audio(sampling_rate=STORE_RATE),
        "label": datasets.ClassLabel(names=LABELS),
        "codec": datasets.Value("string"),
        "codec_config": datasets.Value("string"),
        "source_id": datasets.Value("string"),
        "speaker": datasets.Value("string"),
        "language": datasets.Value("string"),
        "corpus": datasets.Value("string"),
        "split": datasets.Value("string"),
        "duration_s": datasets.Value("float32"),
    }
)

SPLITS = ("train", "validation", "test")


def row_id(row: dict) -> str:
    """Stable per-row file name: ``<corpus>/<source_id>`` for bona fide,
    ``<corpus>/<source_id>@<codec>@<config>`` for codec copies."""
    base = f"{row['corpus']}/{row['source_id']}"
    if row["codec"] == NO_CODEC:
        return base
    return f"{base}@{row['codec']}@{row['codec_config']}"
