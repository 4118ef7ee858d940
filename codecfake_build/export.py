"""Exports of a built dataset into other tools' layouts.

``codecfake``: the official Codecfake release layout, so its scripts read our
data (``raw_dataset.codecfake`` / ``codecfake_eval`` in xieyuankun/Codecfake)::

    codecfake/train/*.wav, codecfake/dev/*.wav          bona fide + every training condition
    codecfake/test/C<k>/*.wav                           the bona fide test files + condition k's fakes
    codecfake/label/{train,dev}.txt, label/C<k>.txt     lines "<file> real|fake <k>" (k = 0 for real)
    codecfake/codec_map.txt                             "F0k <codec>@<config>" per condition

All wav files are 16 kHz PCM16.  Real files keep their source name, fakes are
``F{k:02d}_<orig>.wav`` where k comes from the row's ``condition`` column (C<k>):
the codec's position in ``--codec``, or the preset's table, so Codecfake's C7
(DAC) is ``F07_`` even in a build that skipped another condition.  Datasets built
before the condition column fall back to the position in ``codec_specs``.
``<orig>`` is the last part of the source id (``p225_001``, ``SSB00050001``, as
in the release) when that is unique over the dataset, else the full id with
the corpus in front.  Each test condition folder pairs the same real test files
with that condition's fakes, as the release's test/C1..C7 do.
"""

from __future__ import annotations

import glob
import io
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq
import soundfile as sf

from codecfake_build.atomic import atomic_path, atomic_write_text
from codecfake_build.schema import NO_CODEC, condition_index, condition_label

SPLIT_DIRS = {"train": "train", "validation": "dev", "test": "test"}


def _orig_names(shards: list[str]) -> dict[tuple[str, str], str]:
    keys = sorted({(c, s) for shard in shards
                   for c, s in zip(*pq.read_table(shard, columns=["corpus", "source_id"]).to_pydict().values())})
    short = {k: k[1].rsplit("/", 1)[-1] for k in keys}
    if len(set(short.values())) == len(short):
        return short
    # Prefix with the corpus only when ids from several corpora could collide.
    multi_corpus = len({c for c, _ in keys}) > 1
    return {(c, s): (f"{c}_" if multi_corpus else "") + s.replace("/", "_") for c, s in keys}


def _write_wav(path: Path, flac: bytes) -> None:
    wave, sr = sf.read(io.BytesIO(flac), dtype="int16")
    with atomic_path(path) as tmp:
        sf.write(tmp, wave, sr, format="WAV", subtype="PCM_16")


def _condition_k(row: dict, by_position: dict[str, int]) -> int:
    """0 for real rows, k for condition C<k>."""
    if row["codec"] == NO_CODEC:
        return 0
    return condition_index(row.get("condition") or "") or by_position[f"{row['codec']}@{row['codec_config']}"]


def export_codecfake(out: Path, codec_specs: list[str]) -> Path:
    root = out / "codecfake"
    by_position = {spec: k for k, spec in enumerate(codec_specs, start=1)}
    shards = sorted(glob.glob(str(out / "data" / "*.parquet")))
    names = _orig_names(shards)
    # First pass over the metadata only: which conditions the test split has, so
    # every file is written once, straight to its folders (no audio held in memory).
    meta = ["split", "codec", "codec_config", "condition"]
    test_conditions: set[int] = set()
    for shard in shards:
        cols = set(pq.read_schema(shard).names)
        table = pq.read_table(shard, columns=[c for c in meta if c in cols]).to_pylist()
        test_conditions.update(_condition_k(r, by_position) for r in table if r["split"] == "test")
    test_conditions.discard(0)
    labels: dict[str, list[str]] = {"train": [], "dev": [], **{condition_label(k): [] for k in test_conditions}}
    codec_of: dict[int, str] = {}
    written: set[Path] = set()
    for shard in shards:
        for row in pq.read_table(shard).to_pylist():
            orig = names[(row["corpus"], row["source_id"])]
            split = SPLIT_DIRS[row["split"]]
            k = _condition_k(row, by_position)
            if k:
                codec_of[k] = f"{row['codec']}@{row['codec_config']}"
            name = f"F{k:02d}_{orig}.wav" if k else f"{orig}.wav"
            line = f"{name} {'fake' if k else 'real'} {k}"
            if split != "test":
                targets = [(root / split, split)]
            elif k:
                targets = [(root / "test" / condition_label(k), condition_label(k))]
            else:  # a real test file belongs to every test condition
                targets = [(root / "test" / condition_label(c), condition_label(c)) for c in sorted(test_conditions)]
            for folder, label_file in targets:
                _write_wav(folder / name, row["audio"]["bytes"])
                written.add(folder / name)
                labels[label_file].append(line)
    for split, lines in labels.items():
        atomic_write_text(root / "label" / f"{split}.txt", "".join(f"{ln}\n" for ln in sorted(lines)))
    atomic_write_text(root / "codec_map.txt", "".join(f"F{k:02d} {spec}\n" for k, spec in sorted(codec_of.items())))
    written.update(root / "label" / f"{split}.txt" for split in labels)
    _remove_stale(root, written)
    return root


def _remove_stale(root: Path, written: set[Path]) -> None:
    """Drop what an earlier export of this --out wrote and this one did not (another codec list
    after --overwrite): the official scripts read every wav in a folder.  Only our own kinds of
    files in our own folders are touched."""
    folders = [root / "label", *(root / d for d in ("train", "dev")), *sorted((root / "test").glob("C*"))]
    for folder in folders:
        for path in sorted(folder.glob("*.txt" if folder.name == "label" else "*.wav")):
            if path not in written:
                path.unlink()
        if folder.is_dir() and folder.parent.name == "test" and not any(folder.iterdir()):
            folder.rmdir()


def remove_codecfake_export(out: Path) -> bool:
    """Delete an earlier build's ``<out>/codecfake`` export (only the files and folders an export
    writes); True if there was one.  Used by --overwrite without --export codecfake, where the
    old export would otherwise stay beside a dataset it no longer describes."""
    root = out / "codecfake"
    if not root.is_dir():
        return False
    _remove_stale(root, set())
    (root / "codec_map.txt").unlink(missing_ok=True)
    for folder in (root / "label", root / "train", root / "dev", root / "test", root):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return True


EXPORTERS: dict[str, Callable[[Path, list[str]], Path]] = {"codecfake": export_codecfake}
#: What --overwrite calls for each export kind the new build does not ask for.
EXPORT_REMOVERS: dict[str, Callable[[Path], bool]] = {"codecfake": remove_codecfake_export}
