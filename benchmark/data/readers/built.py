"""Datasets written by ``codecfake_build`` (our own Codecfake-style builds),
read through ``benchmark.data.BuiltDataset``.

Each row becomes an item whose ``vocoder`` is ``codec@config`` (the codec
copy) and whose audio is decoded from the parquet shard on demand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from benchmark.data.built import BuiltDataset, find_split_files
from benchmark.data.readers.base import BONAFIDE_CONDITION, DATASETS, DatasetItem, DatasetReader
from codecfake_build.schema import NO_CODEC, STORE_RATE, row_id

#: Built splits keep the builder's names; protocols may also say "dev".
SPLIT_ALIASES = {"validation": "dev"}

_OPEN: dict[tuple[str, str], BuiltDataset] = {}


class BuiltRowAudio:
    """Picklable loader of one row (DataLoader workers re-open the dataset lazily)."""

    def __init__(self, root: Path, split: str, index: int):
        self.root, self.split, self.index = str(root), split, index

    def __call__(self) -> tuple[np.ndarray, int]:
        key = (self.root, self.split)
        if key not in _OPEN:
            _OPEN[key] = BuiltDataset(self.root, self.split)
        return _OPEN[key][self.index].wave, STORE_RATE


@DATASETS.register("built")
class Built(DatasetReader):
    title = "a dataset built with codecfake_build"
    url = "`python -m codecfake_build --out DIR` (see README)"
    layout = "data/<split>-NNNNN-of-NNNNN.parquet"
    paper = "this project"
    sample_rates = "16 kHz"

    def __init__(self, root, *, cache_dir: str | Path | None = None, **options: Any):
        super().__init__(root, **options)
        self.cache_dir = cache_dir

    def _read(self) -> list[DatasetItem]:
        files = find_split_files(self.root)
        if not files:
            raise self.missing(self.root / "data", "the parquet shards")
        items = []
        for split in sorted(files):
            if sum(pq.read_metadata(f).num_rows for f in files[split]) == 0:
                continue  # the builder records an empty split with a zero-row shard
            ds = BuiltDataset(self.root, split, cache_dir=self.cache_dir)
            cols = {name: ds.column(name) for name in ("codec", "codec_config", "source_id", "speaker", "language",
                                                        "corpus", "duration_s")}
            for i in range(len(ds)):
                row = {k: v[i] for k, v in cols.items()}
                real = row["codec"] == NO_CODEC
                condition = BONAFIDE_CONDITION if real else f"{row['codec']}@{row['codec_config']}"
                items.append(DatasetItem(
                    utt_id=row_id(row), label=int(ds.labels[i]), path=None, speaker=row["speaker"],
                    source_id=f"{row['corpus']}/{row['source_id']}", split=SPLIT_ALIASES.get(split, split),
                    attack=condition, vocoder=condition, vocoder_category=BONAFIDE_CONDITION if real else "codec",
                    language=row["language"], corpus=row["corpus"], duration=float(row["duration_s"]),
                    extra={"codec_family": row["codec"]}, audio=BuiltRowAudio(self.root, split, i),
                ))
        return items
