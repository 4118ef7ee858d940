"""A first-time user's audit of ``python -m codecfake_build``: every bad flag value, bad
path and bad output directory ends in one line on stderr naming the problem and the fix,
never a traceback; a rerun that would mix builds or leave stale files is refused or
cleaned up."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecfake_build import cli

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
REPO = Path(__file__).resolve().parents[2]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        rc = cli.main([*argv, "--no-progress"] if argv[:1] != ("codecs",) else list(argv))
    except SystemExit as exit_:  # argparse
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error" in lines[0]
    for n in needles:
        assert n in lines[0], lines[0]


def tone_corpus(root: Path, n: int = 3) -> Path:
    t = np.arange(8000) / 16000
    for i in range(n):
        (root / "spk").mkdir(parents=True, exist_ok=True)
        sf.write(root / "spk" / f"u{i}.wav", (0.3 * np.sin(2 * np.pi * (150 + 30 * i) * t)).astype(np.float32), 16000)
    return root


# ---------------------------------------------------------------- flags and paths


@pytest.mark.parametrize("argv,needles", [
    (["--codec", "mp3@32kbps", "--amp", "fp8"], ["--amp", "fp8", "--help"]),
    (["--codec", "mp3@32kbps", "--split-by", "spk"], ["--split-by"]),
    (["--codec", "mp3@32kbps", "--limit", "ten"], ["--limit"]),
    (["--codec", "mp3@32kbps", "--limit", "0"], ["--limit", "at least 1"]),
    (["--codec", "mp3@32kbps", "--limit", "-1"], ["--limit", "at least 1"]),
    (["--codec", "mp3@32kbps", "--max-seconds", "nan"], ["--max-seconds"]),
    (["--codec", "mp3@32kbps", "--ratios", "nan,1,1"], ["ratios", "nan"]),
    (["--codec", "mp3@32kbps", "--ratios", "inf,1,1"], ["ratios", "inf"]),
    (["--codec", "mp3@32kbps", "--shard-size", "0"], ["--shard-size"]),
    (["--codec", "mp4@32kbps"], ["mp4", "Did you mean 'mp3'"]),
    (["--codec", "mp3@32kbps", "--corpus", "vctk"], ["--corpus vctk", "PATH"]),
    (["--codec", "mp3@32kbps", "--corpus", "folder="], ["--corpus folder=", "PATH"]),
    (["--codec", "mp3@32kbps", "--corpus", "=/data"], ["--corpus =/data"]),
    (["--codec", "mp3@32kbps", "--weights", "mp3="], ["--weights mp3="]),
    (["--codec", "mp3@32kbps", "--device", "gpu"], ["--device gpu", "cuda:N"]),
    (["--codec", "mp3@32kbps", "--device", "cuda:99"], ["--device cuda:99", "CUDA device"]),
    (["--preset", "codecfake", "--corpus", "vctk=/nonexistent/vctk"], ["/nonexistent/vctk", "Fix"]),
])
def test_bad_values_fail_in_one_line(capsys, tmp_path, argv, needles):
    rc, _, err = run_cli(capsys, *argv, "--out", str(tmp_path / "out"))
    assert rc == 2
    assert_one_line_error(err, *needles)
    assert not (tmp_path / "out" / "data").exists()


def test_out_that_is_a_file_fails_before_any_work(capsys, tmp_path):
    out = tmp_path / "taken"
    out.write_text("not a directory")
    rc, _, err = run_cli(capsys, "--codec", "mp3@32kbps", "--limit", "1", "--out", str(out))
    assert rc == 2
    assert_one_line_error(err, str(out), "--out", "Fix")


def test_unwritable_out_fails_in_one_line(capsys, tmp_path, monkeypatch):
    # Root ignores permission bits, so the refusal is simulated where the build creates --out.
    real_mkdir = Path.mkdir

    def refuse(self, *a, **kw):
        if self == tmp_path / "ro":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", refuse)
    rc, _, err = run_cli(capsys, "--codec", "mp3@32kbps", "--limit", "1", "--out", str(tmp_path / "ro"))
    assert rc == 2
    assert_one_line_error(err, str(tmp_path / "ro"), "Permission denied", "--out")


def test_symlinked_speaker_folders_are_read_and_loops_end(tmp_path):
    from codecfake_build.corpora import open_corpus

    real = tone_corpus(tmp_path / "elsewhere", n=2)
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "spk").symlink_to(real / "spk", target_is_directory=True)
    (root / "spk" / "again").symlink_to(root, target_is_directory=True)  # a loop back to the root
    ids = [u.source_id for u in open_corpus("folder", root).utterances()]
    assert ids == ["spk/u0", "spk/u1"]


def test_codecs_json_is_strict_json_with_delay(capsys):
    rc, out, _ = run_cli(capsys, "codecs", "--json")
    assert rc == 0

    def no_nan(c):
        raise AssertionError(f"non-JSON constant {c}")

    infos = json.loads(out, parse_constant=no_nan)
    assert {"mp3", "dac", "encodec"} <= {i["name"] for i in infos}
    for info in infos:
        assert {"name", "sample_rate", "configs"} <= set(info)
        for cfg in info["configs"].values():
            assert isinstance(cfg["delay_samples"], int), info["name"]


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--ratios", "--limit", "--seed", "--shard-size", "--device", "--batch-size", "--out"):
        assert flag in text
    assert "normalised" in text  # --ratios 1,1,1 is a valid thirds split, say so
    assert "resume" in text


# ---------------------------------------------------------------- output directory life cycle


@needs_ffmpeg
def test_rerun_with_other_options_names_the_option(capsys, tmp_path):
    corpus = tone_corpus(tmp_path / "c")
    out = tmp_path / "out"
    base = ["--codec", "mp3@32kbps", "--corpus", f"folder={corpus}", "--out", str(out)]
    assert run_cli(capsys, *base)[0] == 0
    rc, _, err = run_cli(capsys, *base, "--seed", "7")
    assert rc == 2
    assert_one_line_error(err, "--seed 0 there, 7 now", "--overwrite")
    rc, _, err = run_cli(capsys, *base[:1], "mp3@64kbps", *base[2:])
    assert_one_line_error(err, "--codec mp3@32kbps there, mp3@64kbps now")
    sf.write(corpus / "spk" / "new.wav", np.full(4000, 0.1, np.float32), 16000)
    rc, _, err = run_cli(capsys, *base)
    assert_one_line_error(err, "corpus files", "3 files", "4 files")


@needs_ffmpeg
def test_overwrite_leaves_no_stale_shards_or_export_files(capsys, tmp_path):
    import datasets

    corpus = tone_corpus(tmp_path / "c", n=6)
    out = tmp_path / "out"
    base = ["--corpus", f"folder={corpus}", "--out", str(out), "--export", "codecfake", "--ratios", "1/0/0"]
    assert run_cli(capsys, "--codec", "mp3@32kbps,opus@16kbps", "--shard-size", "2", *base)[0] == 0
    assert len(list((out / "data").glob("*.parquet"))) == 3
    assert any((out / "codecfake" / "train").glob("F02_*.wav"))
    rc, _, err = run_cli(capsys, "--codec", "mp3@32kbps", "--shard-size", "50", *base, "--overwrite",
                         "--export", "codecfake")
    assert rc == 0, err
    assert [p.name for p in (out / "data").glob("*.parquet")] == ["train-00000-of-00001.parquet"]
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf")).cast_column(
        "audio", datasets.Audio(decode=False))
    assert len(ds["train"]) == 12  # 6 bona fide + 6 mp3, nothing from the old build
    assert not any((out / "codecfake" / "train").glob("F02_*.wav"))
    assert len(list((out / "codecfake" / "train").glob("*.wav"))) == 12
    report = json.loads((out / "build_report.json").read_text())
    assert report["command"].count("--export") == 1


@needs_ffmpeg
def test_foreign_parquet_in_out_is_refused(capsys, tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "data" / "train-00000-of-00001.parquet").write_bytes(b"someone else's")
    rc, _, err = run_cli(capsys, "--codec", "mp3@32kbps", "--limit", "1", "--out", str(out))
    assert rc == 2
    assert_one_line_error(err, "manifest.json", "--overwrite")


@needs_ffmpeg
@pytest.mark.parametrize("text", ["{broken", "[]"])
def test_corrupt_manifest_is_one_line(capsys, tmp_path, text):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(text)
    rc, _, err = run_cli(capsys, "--codec", "mp3@32kbps", "--limit", "1", "--out", str(out))
    assert rc == 2
    assert_one_line_error(err, "manifest.json", "--overwrite")


@needs_ffmpeg
def test_disk_full_is_one_line_and_resumable(capsys, tmp_path, monkeypatch):
    import codecfake_build.build as build_mod

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "data" / "x.parquet"))

    monkeypatch.setattr(build_mod, "write_shard", full)
    rc, _, err = run_cli(capsys, "--codec", "mp3@32kbps", "--limit", "1", "--out", str(tmp_path / "out"))
    assert rc == 2
    assert_one_line_error(err, "No space left on device", "resume")


@needs_ffmpeg
def test_ctrl_c_prints_one_line_and_the_rerun_resumes(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "codecfake_build", "--codec", "mp3@32kbps", "--shard-size", "1", "--limit", "12",
           "--no-progress", "--out", str(out)]
    env = {**os.environ, "CODECFAKE_BUILD_PREFETCH": "0"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "manifest.json").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the build finished before the interrupt arrived")
    assert proc.returncode == 130
    assert_one_line_error(err, "interrupted", "resume")
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "12 bona fide" in done.stdout
