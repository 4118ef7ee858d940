"""README: "--overwrite rebuilds and removes the old build's shards and export files".  A rebuild
that does not ask for --export codecfake used to leave the old <out>/codecfake/ in place, its
codec_map.txt and F01_ files describing a codec the dataset no longer holds.  Files a user put
there themselves stay."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecfake_build import cli

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def _corpus(root: Path) -> Path:
    t = np.arange(8000) / 16000
    (root / "spk").mkdir(parents=True)
    for i in range(3):
        sf.write(root / "spk" / f"u{i}.wav", (0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t)).astype(np.float32), 16000)
    return root


def _build(*argv: str) -> None:
    assert cli.main([*argv, "--no-progress"]) == 0


def test_overwrite_without_export_removes_the_old_export(tmp_path):
    corpus, out = _corpus(tmp_path / "c"), tmp_path / "out"
    base = ["--corpus", f"folder={corpus}", "--out", str(out), "--ratios", "2/0/1"]
    _build("--codec", "mp3@32kbps", "--export", "codecfake", *base)
    export = out / "codecfake"
    assert (export / "codec_map.txt").read_text() == "F01 mp3@32kbps\n"
    (export / "my_notes.md").write_text("mine")

    _build("--codec", "opus@16kbps", "--overwrite", *base)
    assert sorted(p.relative_to(export).as_posix() for p in export.rglob("*")) == ["my_notes.md"]
    assert len(list((out / "data").glob("*.parquet"))) == 2


def test_resume_without_export_keeps_a_matching_export(tmp_path):
    corpus, out = _corpus(tmp_path / "c"), tmp_path / "out"
    base = ["--codec", "mp3@32kbps", "--corpus", f"folder={corpus}", "--out", str(out), "--ratios", "2/0/1"]
    _build(*base, "--export", "codecfake")
    before = sorted(p.name for p in (out / "codecfake").rglob("*.wav"))
    _build(*base)  # same build resumed (nothing to do): its export still describes it
    assert sorted(p.name for p in (out / "codecfake").rglob("*.wav")) == before and before
