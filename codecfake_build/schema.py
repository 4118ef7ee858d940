"""The columns of a built dataset.  The writer produces them and
``benchmark.data`` consumes them; this module is the single source of truth.

``FEATURES`` are the core columns every built dataset has had since the first
release; readers require exactly these.  ``EXTRA_FEATURES`` were added later
(condition, quality, clipping) and readers treat them as optional, so datasets
built before them still load.  The writer writes ``DATASET_FEATURES`` (both),
plus the ``OPTIONAL_QUALITY`` columns a build asked for with ``--quality``
(``dataset_features``): those exist only in builds that computed them, so a
null there always means "computed and failed", never "not asked for".
"""

from __future__ import annotations

from typing import Iterable

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

#: ``--quality`` measure -> its column (see quality.py); null on bona fide rows and
#: where the measure failed on that clip (reason in build_report.json):
#: ``pesq_wb``  ITU-T P.862.2 wide-band PESQ (MOS-LQO, about 1.04 to 4.64) at 16 kHz;
#: ``stoi``     short-time objective intelligibility (Taal et al. 2011), 0 to 1.
OPTIONAL_QUALITY = {"pesq": "pesq_wb", "stoi": "stoi"}
OPTIONAL_QUALITY_FEATURES = datasets.Features(
    {column: datasets.Value("float32") for column in OPTIONAL_QUALITY.values()}
)


def dataset_features(quality: Iterable[str] = ()) -> datasets.Features:
    """The columns of a build: ``DATASET_FEATURES`` plus the chosen optional measures'
    columns, in ``OPTIONAL_QUALITY`` order whatever the order asked."""
    chosen = set(quality)
    unknown = chosen - set(OPTIONAL_QUALITY)
    if unknown:
        raise ValueError(f"unknown quality measure(s) {sorted(unknown)}; choose from {', '.join(OPTIONAL_QUALITY)}")
    extra = {col: OPTIONAL_QUALITY_FEATURES[col] for m, col in OPTIONAL_QUALITY.items() if m in chosen}
    return datasets.Features({**DATASET_FEATURES, **extra}) if extra else DATASET_FEATURES

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
