"""The columns of a built dataset.  The writer produces them and
``benchmark.data`` consumes them; this module is the single source of truth.

``FEATURES`` are the core columns every built dataset has had since the first
release; readers require exactly these.  ``EXTRA_FEATURES`` were added later
(condition, quality, clipping) and readers treat them as optional, so datasets
built before them still load.  The writer writes ``DATASET_FEATURES`` (both).
"""

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

#: Added columns (optional for readers):
#: ``condition``   "real" for bona fide rows, "C<k>" for the k-th codec of the build
#:                 (the --codec order, or the preset's table: Codecfake's C1..C7);
#: ``logmel_distance``, ``si_snr_db``  the fake against its source (see quality.py),
#:                 null on bona fide rows;
#: ``clipped``     the source recording is clipped (see quality.is_clipped); a codec
#:                 copy carries its source's flag.
EXTRA_FEATURES = datasets.Features(
    {
        "condition": datasets.Value("string"),
        "logmel_distance": datasets.Value("float32"),
        "si_snr_db": datasets.Value("float32"),
        "clipped": datasets.Value("bool"),
    }
)

DATASET_FEATURES = datasets.Features({**FEATURES, **EXTRA_FEATURES})

REAL_CONDITION = "real"

SPLITS = ("train", "validation", "test")


def condition_label(k: int) -> str:
    """The condition name of the k-th (1-based) codec: C1, C2, ..."""
    return f"C{k}"


def condition_index(label: str) -> int | None:
    """k for "C<k>", None for "real" or anything else."""
    if len(label) > 1 and label[0] == "C" and label[1:].isdigit():
        return int(label[1:])
    return None


def row_id(row: dict) -> str:
    """Stable per-row file name: ``<corpus>/<source_id>`` for bona fide,
    ``<corpus>/<source_id>@<codec>@<config>`` for codec copies."""
    base = f"{row['corpus']}/{row['source_id']}"
    if row["codec"] == NO_CODEC:
        return base
    return f"{base}@{row['codec']}@{row['codec_config']}"
