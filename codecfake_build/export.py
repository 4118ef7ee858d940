"""Exports of a built dataset into other tools' layouts.

``codecfake``: the official Codecfake release layout, so its scripts read our
data: ``codecfake/{train,dev,test}/*.wav`` (16 kHz PCM16) and
``codecfake/label/{train,dev,test}.txt`` with lines ``<file> real|fake <type>``.
Real files keep their source name; fakes are ``F{k:02d}_<orig>.wav`` where k is
the codec's 1-based position in ``--codec`` (type 0 = real), as Codecfake names
C1..C7 copies.  ``codec_map.txt`` records which codec each k is.
"""

from __future__ import annotations

import glob
import io
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq
import soundfile as sf

from codecfake_build.atomic import atomic_path, atomic_write_text

SPLIT_DIRS = {"train": "train", "validation": "dev", "test": "test"}


def export_codecfake(out: Path, codec_specs: list[str]) -> Path:
    root = out / "codecfake"
    index = {spec: k for k, spec in enumerate(codec_specs, start=1)}
    labels: dict[str, list[str]] = {d: [] for d in SPLIT_DIRS.values()}
    shards = sorted(glob.glob(str(out / "data" / "*.parquet")))
    # Prefix names with the corpus only when ids from several corpora could collide.
    corpora = {c for s in shards for c in pq.read_table(s, columns=["corpus"]).column("corpus").to_pylist()}
    multi_corpus = len(corpora) > 1
    for shard in shards:
        for row in pq.read_table(shard).to_pylist():
            orig = row["source_id"].replace("/", "_")
            if multi_corpus:
                orig = f"{row['corpus']}_{orig}"
            split = SPLIT_DIRS[row["split"]]
            if row["codec"] == "none":
                name, line = f"{orig}.wav", "real 0"
            else:
                k = index[f"{row['codec']}@{row['codec_config']}"]
                name, line = f"F{k:02d}_{orig}.wav", f"fake {k}"
            wave, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="int16")
            with atomic_path(root / split / name) as tmp:
                sf.write(tmp, wave, sr, format="WAV", subtype="PCM_16")
            labels[split].append(f"{name} {line}")
    for split, lines in labels.items():
        atomic_write_text(root / "label" / f"{split}.txt", "".join(f"{ln}\n" for ln in sorted(lines)))
    atomic_write_text(root / "codec_map.txt", "".join(f"F{k:02d} {spec}\n" for spec, k in index.items()))
    return root


EXPORTERS: dict[str, Callable[[Path, list[str]], Path]] = {"codecfake": export_codecfake}
