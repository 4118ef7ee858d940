"""Sharded Hugging Face parquet output with a checksummed manifest.

Layout (the HF hub convention, so ``datasets.load_dataset(DIR)`` finds splits):
``DIR/data/<split>-NNNNN-of-NNNNN.parquet``.  Each shard is written through a
temp file and renamed; only then is it recorded in ``DIR/manifest.json`` with
its sha256.  On resume a shard counts as done only if its file exists and its
checksum matches, so a shard torn by ``kill -9`` is simply rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from codecfake_build.atomic import atomic_path, atomic_write_json
from codecfake_build.schema import DATASET_FEATURES

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


class OutputConflictError(RuntimeError):
    """The output directory holds a different build."""


def shard_name(split: str, index: int, total: int) -> str:
    return f"data/{split}-{index:05d}-of-{total:05d}.parquet"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def rows_to_table(rows: list[dict[str, Any]], features: datasets.Features = DATASET_FEATURES) -> pa.Table:
    schema = features.arrow_schema
    columns = {name: [features[name].encode_example(r[name]) if name == "label" and isinstance(r[name], str)
                      else r[name] for r in rows] for name in features}
    return pa.Table.from_pydict(columns, schema=schema)


def write_shard(rows: list[dict[str, Any]], path: Path, features: datasets.Features = DATASET_FEATURES) -> str:
    """Write rows as one parquet file atomically; returns its sha256.
    Fixed writer options make the bytes a pure function of the rows.
    ``features``: the build's columns (``schema.dataset_features``)."""
    table = rows_to_table(rows, features)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=64, write_statistics=False)
    return sha256_file(path)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest as a dict; a damaged one (hand-edited, another tool's file) is one line."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        problem = "" if isinstance(data, dict) and isinstance(data.get("shards", {}), dict) else "not a build manifest"
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        problem = str(err).splitlines()[0]
    if problem:
        raise OutputConflictError(f"{path}: unreadable ({problem}). Fix: choose a new --out, or pass --overwrite "
                                  "to rebuild it")
    return data


@dataclass
class Manifest:
    out: Path
    fingerprint: str
    shards: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Build options worth naming when a resume is refused (e.g. {"--quality": "pesq"}).
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, out: Path, fingerprint: str, overwrite: bool = False,
             options: dict[str, Any] | None = None) -> "Manifest":
        path = out / MANIFEST
        options = dict(options or {})
        if path.exists() and not overwrite:
            data = read_manifest(path)
            if data.get("fingerprint") != fingerprint:
                old = data.get("options", {})
                differ = "; ".join(f"{k} {old[k]} there, {v} now"
                                   for k, v in options.items() if k in old and old[k] != v)
                raise OutputConflictError(
                    f"{out}: holds a build with different inputs or options{f' ({differ})' if differ else ''}. "
                    "Fix: choose a new --out, or pass --overwrite to rebuild it"
                )
            return cls(out, fingerprint, data.get("shards", {}), options)
        return cls(out, fingerprint, options=options)

    def is_done(self, name: str) -> bool:
        entry = self.shards.get(name)
        if not entry:
            return False
        if entry["rows"] == 0:  # every input of the shard was bad: nothing to write
            return True
        path = self.out / name
        return path.is_file() and sha256_file(path) == entry["sha256"]

    def record(self, name: str, sha256: str | None, rows: int, skipped: list[dict[str, str]],
               **extra: Any) -> None:
        """``extra``: more per-shard lists the report needs after a resume (e.g. quality_failures)."""
        self.shards[name] = {"sha256": sha256, "rows": rows, "skipped": skipped, **extra}
        self.save()

    def save(self) -> None:
        atomic_write_json(self.out / MANIFEST, {
            "format": MANIFEST_FORMAT, "fingerprint": self.fingerprint, "shards": self.shards,
            **({"options": self.options} if self.options else {}),
        })
