"""Read a dataset written by ``codecfake_build`` (HF hub layout:
``DIR/data/<split>-NNNNN-of-NNNNN.parquet``)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmark.data.source import DataError, Item
from codecfake_build.audio import ALLOW_SILENCE, AudioError, decode_audio_bytes, load_audio
from codecfake_build.schema import FEATURES, STORE_RATE, row_id

META_COLUMNS = tuple(name for name in FEATURES if name != "audio")
_SHARD = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}\.parquet$")


def find_split_files(root: str | Path) -> dict[str, list[Path]]:
    """Split name -> sorted shard files found under ``root/data``."""
    data = Path(root) / "data"
    out: dict[str, list[Path]] = {}
    if data.is_dir():
        for f in sorted(data.glob("*.parquet")):
            if f.name.startswith("."):  # a writer's temp file
                continue
            m = _SHARD.match(f.name)
            out.setdefault(m["split"] if m else f.stem, []).append(f)
    return out


class BuiltDataset:
    """One split of a built dataset, optionally filtered.

    ``codecs`` entries match the ``codec`` column ("encodec") or codec plus
    config ("encodec@24k_6kbps"); bona-fide rows have codec ``"none"``, so
    include it to keep them.  Metadata and labels come from the Arrow cache
    without touching the audio column.
    """

    sample_rate = STORE_RATE

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        codecs: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        corpora: Sequence[str] | None = None,
        cache_dir: str | Path | None = None,
    ):
        self.root = Path(root)
        self.split = split
        files = find_split_files(self.root)
        if not files:
            raise DataError(
                f"{self.root}: no parquet shards under {self.root / 'data'}. "
                "Fix: pass the directory that codecfake_build wrote (it contains data/ and README.md)"
            )
        if split not in files:
            raise DataError(
                f"{self.root}: no split '{split}' (found: {', '.join(sorted(files))}). Fix: choose one of those splits"
            )
        # datasets' parquet reader crashes on a zero-row shard, and the builder writes one for an empty split.
        shards = [f for f in files[split] if pq.read_metadata(f).num_rows > 0]
        if not shards:
            raise DataError(
                f"{self.root}: split '{split}' has no rows. Fix: choose another split or rebuild with more data"
            )
        ds = datasets.load_dataset(
            "parquet",
            data_files={split: [str(f) for f in shards]},
            split=split,
            cache_dir=None if cache_dir is None else str(cache_dir),
        )
        missing = [c for c in FEATURES if c not in ds.column_names]
        if missing:
            raise DataError(
                f"{files[split][0]}: not a built dataset, columns {missing} are missing. "
                "Fix: rebuild it with the current codecfake_build"
            )
        # torchcodec is not available (and not wanted): we decode FLAC bytes ourselves.
        ds = ds.cast_column("audio", datasets.Audio(sampling_rate=STORE_RATE, decode=False))
        table = ds.data.table
        mask = _filter_mask(table, self.root, split, codecs=codecs, languages=languages, corpora=corpora)
        self.filters = {"codecs": _opt_list(codecs), "languages": _opt_list(languages), "corpora": _opt_list(corpora)}
        self._rows = np.flatnonzero(mask) if mask is not None else np.arange(len(ds))
        if len(self._rows) == 0:
            raise DataError(
                f"{self.root}: no rows of split '{split}' match the filters {self._describe_filters()}. "
                "Fix: check the names against the dataset card (README.md)"
            )
        self._labels = table.column("label").to_numpy()[self._rows].astype(np.int64)
        self._durations = table.column("duration_s").to_numpy()[self._rows].astype(np.float64)
        self._audio = ds.select_columns(["audio"])
        self._meta = ds.select_columns(list(META_COLUMNS))

    def _describe_filters(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.filters.items() if v is not None) or "(none)"

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def durations(self) -> np.ndarray:
        return self._durations

    def meta(self, index: int) -> dict[str, Any]:
        row = self._meta[int(self._rows[index])]
        row["filename"] = row_id(row)
        return row

    @property
    def filenames(self) -> list[str]:
        cols = self._take(["corpus", "source_id", "codec", "codec_config"])
        return [row_id(dict(zip(cols, vals))) for vals in zip(*cols.values())]

    def _take(self, names: list[str]) -> dict[str, list[Any]]:
        return self._meta.data.table.select(names).take(pa.array(self._rows)).to_pydict()

    def column(self, name: str) -> list[Any]:
        """One metadata column for the selected rows (e.g. 'codec' for per-codec EERs)."""
        if name not in META_COLUMNS:
            raise KeyError(f"unknown column '{name}'; choose one of: {', '.join(META_COLUMNS)}")
        return self._take([name])[name]

    def __getitem__(self, index: int) -> Item:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        meta = self.meta(index)
        audio = self._audio[int(self._rows[index])]["audio"]
        if audio.get("bytes") is not None:  # b"" too: it fails to decode, as a one-line AudioError
            wave, _ = decode_audio_bytes(audio["bytes"], name=meta["filename"], target_sr=self.sample_rate)
        elif audio.get("path"):  # a dataset written with external file paths instead of embedded bytes
            wave, _ = load_audio(audio["path"], target_sr=self.sample_rate, check=ALLOW_SILENCE)
        else:
            raise AudioError(meta["filename"], "row has neither audio bytes nor an audio path",
                             f"rebuild the dataset at {self.root}")
        return Item(wave, int(self._labels[index]), meta)

    def __repr__(self) -> str:
        return f"BuiltDataset({str(self.root)!r}, split={self.split!r}, rows={len(self)}, filters={self._describe_filters()})"


def _opt_list(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):  # a bare string would otherwise filter by its characters
        return [values]
    return list(values)


def _filter_mask(
    table: pa.Table, root: Path, split: str, *, codecs: Iterable[str] | None,
    languages: Iterable[str] | None, corpora: Iterable[str] | None,
) -> np.ndarray | None:
    mask: np.ndarray | None = None

    def apply(name: str, wanted: list[str], column_mask: np.ndarray, available: list[str]) -> None:
        nonlocal mask
        unmatched = [w for w in wanted if w not in available]
        if unmatched:
            warnings.warn(
                f"{root}: split '{split}' has no rows with {name} {unmatched} (available: {', '.join(available)})",
                stacklevel=3,
            )
        mask = column_mask if mask is None else mask & column_mask

    if (codecs := _opt_list(codecs)) is not None:
        codec, combo = table.column("codec"), pc.binary_join_element_wise(table.column("codec"), table.column("codec_config"), "@")
        hit = pc.or_(pc.is_in(codec, pa.array(codecs, pa.string())), pc.is_in(combo, pa.array(codecs, pa.string())))
        available = sorted(set(pc.unique(codec).to_pylist()) | set(pc.unique(combo).to_pylist()))
        apply("codec", codecs, hit.to_numpy(zero_copy_only=False), available)
    for name, wanted in (("language", languages), ("corpus", corpora)):
        if (wanted := _opt_list(wanted)) is not None:
            col = table.column(name)
            hit = pc.is_in(col, pa.array(wanted, pa.string())).to_numpy(zero_copy_only=False)
            apply(name, wanted, hit, sorted(pc.unique(col).to_pylist()))
    return mask
