"""End-to-end behaviour of the dataset build on a small corpus with bad files."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from codecfake_build.build import BuildConfig, build
from codecfake_build.codecs import parse_codec_list
from codecfake_build.writer import OutputConflictError

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")

REPO = Path(__file__).resolve().parents[2]
CODECS = "mp3@32kbps,opus@16kbps"


def voiced(seconds: float, sr: int, f0: float, seed: int) -> np.ndarray:
    """A speech-like test signal: harmonics of a wobbling f0 with a syllable envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (0.2 * x * env + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def make_corpus(root: Path, n_per_speaker: int = 4) -> dict[str, str]:
    """Good files for 3 speakers at mixed rates, plus one file of each bad kind.
    Returns the expected skip reason keyword per bad file."""
    for s, (spk, sr) in enumerate([("spk_a", 16000), ("spk_b", 22050), ("spk_c", 48000)]):
        for i in range(n_per_speaker):
            path = root / spk / f"{spk}_{i:03d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, voiced(0.6 + 0.2 * i, sr, 110 + 40 * s, seed=10 * s + i), sr)
    bad = root / "spk_bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    (bad / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 20)
    nan = voiced(0.5, 16000, 150, 99)
    nan[100] = np.nan
    sf.write(bad / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(bad / "silent.wav", np.zeros(8000, np.float32), 16000)
    stereo = np.stack([voiced(0.7, 44100, 130, 7), voiced(0.7, 44100, 131, 8)], axis=1)
    sf.write(root / "spk_a" / "stereo_44k.wav", stereo, 44100)
    return {"empty": "empty", "corrupt": "cannot decode", "nan": "NaN", "silent": "silence"}


def cfg_for(corpus: Path, out: Path, codecs: str = CODECS, **kw) -> BuildConfig:
    kw.setdefault("shard_size", 5)
    return BuildConfig(corpora=[("folder", str(corpus))], codecs=parse_codec_list(codecs), out=out,
                       language="en", progress=False, **kw)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("corpus")
    return root, make_corpus(root)


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    result = build(cfg_for(corpus[0], out, export=["codecfake"]))
    return out, result


def test_dataset_loads_with_schema_and_invariants(built, tmp_path):
    import datasets

    out, result = built
    # A private cache: the shared HF cache keys local folders by name, and pytest reuses
    # tmp names (ds0), so it can hand back an older build's table.
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf")).cast_column(
        "audio", datasets.Audio(decode=False))
    rows = [r for split in ds.values() for r in split]
    assert len(rows) == result.rows == 13 * 3  # 12 good + stereo, each as bona fide + 2 codecs
    assert result.bonafide == 13 and result.spoof == 26
    assert ds["train"].features["label"].names == ["bonafide", "spoof"]
    by_source: dict[str, set] = {}
    for r in rows:
        assert r["split"] in ds  # the split column agrees with the file it is in
        wave, sr = sf.read(io.BytesIO(r["audio"]["bytes"]))
        assert sr == 16000 and wave.ndim == 1
        assert abs(len(wave) / 16000 - r["duration_s"]) < 1e-6
        assert np.max(np.abs(wave)) <= 0.99 + 1e-4
        assert (r["codec"] == "none") == (r["label"] == 0)
        # The k-th --codec is condition C<k>; quality columns only on codec rows.
        assert r["condition"] == {"none": "real", "mp3": "C1", "opus": "C2"}[r["codec"]]
        assert (r["logmel_distance"] is None) == (r["si_snr_db"] is None) == (r["codec"] == "none")
        assert r["clipped"] is False
        by_source.setdefault(r["source_id"], set()).add((r["split"], r["codec"], r["codec_config"]))
    for src, entries in by_source.items():
        assert len({e[0] for e in entries}) == 1, f"{src} spans splits"
        assert {e[1:] for e in entries} == {("none", ""), ("mp3", "32kbps"), ("opus", "16kbps")}
    # Codec copies keep the source's duration exactly.
    durations = Counter((r["source_id"], round(r["duration_s"], 6)) for r in rows)
    assert all(n == 3 for n in durations.values())
    assert any(r["source_id"] == "spk_a/stereo_44k" for r in rows)


def test_bad_files_are_skipped_and_reported(built, corpus):
    out, result = built
    report = json.loads((out / "build_report.json").read_text())
    reasons = {Path(s["path"]).stem: s["reason"] for s in report["skipped"]}
    expected = corpus[1]
    assert set(reasons) == set(expected)
    for stem, keyword in expected.items():
        assert keyword.lower() in reasons[stem].lower(), (stem, reasons[stem])
    assert "skipped 4 source files" in result.summary()


def test_card_and_codecfake_export(built):
    out, _ = built
    card = (out / "README.md").read_text()
    assert "data_files" in card and "mp3" in card and "opus" in card and "python -m codecfake_build" in card
    labels = (out / "codecfake" / "label" / "train.txt").read_text().split("\n")
    lines = [ln.split() for ln in labels if ln]
    assert lines and all(kind in ("real", "fake") for _, kind, _ in lines)
    fakes = [name for name, kind, k in lines if kind == "fake"]
    assert all(name.startswith(("F01_", "F02_")) for name in fakes)
    for name, _, _ in lines:
        wave, sr = sf.read(out / "codecfake" / "train" / name)
        assert sr == 16000
    assert (out / "codecfake" / "codec_map.txt").read_text().split("\n")[0] == "F01 mp3@32kbps"
    # Test files are grouped per condition: test/C<k> = the real test files + F0k fakes.
    for k in (1, 2):
        test = [ln.split() for ln in (out / "codecfake" / "label" / f"C{k}.txt").read_text().splitlines()]
        assert {kind for _, kind, _ in test} == {"real", "fake"}
        assert all(n.startswith(f"F0{k}_") for n, kind, _ in test if kind == "fake")
        assert all((out / "codecfake" / "test" / f"C{k}" / n).is_file() for n, _, _ in test)


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))}


def test_another_seed_changes_the_split(corpus, built, tmp_path):
    # (The same seed giving the same bytes is asserted by the kill-and-resume test,
    # which compares two independent processes.)
    out, _ = built
    other = tmp_path / "other"
    build(cfg_for(corpus[0], other, seed=1))
    assert shard_bytes(other) != shard_bytes(out)


def test_output_dir_with_other_build_is_refused(corpus, built):
    out, _ = built
    with pytest.raises(OutputConflictError, match="--overwrite"):
        build(cfg_for(corpus[0], out, seed=5))


def test_resume_after_kill_9_gives_identical_bytes(corpus, built, tmp_path):
    out, _ = built
    resumed = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "codecfake_build", "--codec", CODECS, "--corpus", f"folder={corpus[0]}",
           "--language", "en", "--shard-size", "1", "--no-progress", "--out", str(resumed)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = resumed / "manifest.json"
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists():
            try:
                done = len(json.loads(manifest.read_text())["shards"])
            except (json.JSONDecodeError, KeyError):
                done = 0
            if done >= 2:
                os.kill(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    assert done < 17  # 17 shards of one source utterance each: it really was interrupted
    # Resume with a different shard size is a different build; the same command resumes.
    assert subprocess.run(cmd, cwd=REPO, capture_output=True).returncode == 0
    full = tmp_path / "full"
    build(cfg_for(corpus[0], full, shard_size=1))
    assert shard_bytes(resumed) == shard_bytes(full)


def test_torn_shard_is_rebuilt(corpus, built, tmp_path):
    out = tmp_path / "torn"
    shutil.copytree(built[0], out)
    first = sorted((out / "data").glob("*.parquet"))[0]
    good = first.read_bytes()
    first.write_bytes(good[: len(good) // 2])  # what a crash mid-write without rename would leave
    build(cfg_for(corpus[0], out, export=["codecfake"]))
    assert first.read_bytes() == good


def test_speaker_split_is_speaker_disjoint(corpus, tmp_path):
    out = tmp_path / "spk"
    build(cfg_for(corpus[0], out, codecs="mp3", split_by="speaker", ratios=(0.34, 0.33, 0.33)))
    table = [r for p in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    splits_of = {}
    for r in table:
        splits_of.setdefault(r["speaker"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits_of.values())
    # 4 speakers at 34/33/33: one each for train and validation, two for test; the
    # fourth speaker holds only bad files, so at least two splits carry rows.
    assert len({next(iter(s)) for s in splits_of.values()}) >= 2


def test_shard_of_only_bad_files_is_not_written(tmp_path):
    import datasets

    root = tmp_path / "c"
    make_corpus(root, n_per_speaker=1)
    out = tmp_path / "o"
    # Ratios 0/0/1 put everything in test; shard size 1 isolates each bad file.
    res = build(cfg_for(root, out, codecs="mp3", shard_size=1, ratios=(0, 0, 1)))
    manifest = json.loads((out / "manifest.json").read_text())
    empty = [n for n, e in manifest["shards"].items() if e["rows"] == 0]
    assert len(empty) == 4 and not any((out / n).exists() for n in empty)
    assert len(datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))["test"]) == res.rows == 8
    assert res.summary().count("skipped 4 source files") == 1


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codecfake_build", *args], cwd=REPO,
                          capture_output=True, text=True)


@pytest.mark.parametrize("args,needle", [
    (["--codec", "mp4"], "unknown codec 'mp4'"),
    (["--codec", "mp3@fast"], "mp3"),
    (["--codec", "mp3", "--corpus", "vctk=/nonexistent/VCTK"], "/nonexistent/VCTK"),
    (["--codec", "mp3", "--weights", "dac=/x"], "--weights dac"),
    (["--codec", "mp3", "--ratios", "1/2"], "ratios"),
])
def test_cli_errors_are_one_line(args, needle, tmp_path):
    res = run_cli(*args, "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr
