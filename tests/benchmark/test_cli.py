"""The stable benchmark CLIs: score, evaluate, train, models, run demo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from benchmark.cli import main

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=REPO, capture_output=True, text=True)


def test_score_official_aasist_l_on_real_clips_skips_bad_files(shared, tmp_path, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(shared / "data/speech/en/arctic/arctic_a0007.wav", clips / "real.wav")
    shutil.copy(shared / "data/pairs/wavefake/vocoded/LJ001-0001_gen.wav", clips / "fake.wav")
    (clips / "broken.wav").write_bytes(b"not audio at all")
    silent = tmp_path / "silent.flac"
    sf.write(silent, np.zeros(4000, np.float32), 16000)
    out = tmp_path / "scores.tsv"
    rc = main(["score", "--model", "aasist-l", "--checkpoint", str(shared / "weights/aasist/AASIST-L.pth"),
               "--device", "cpu", "--out", str(out), str(clips), str(silent)])
    assert rc == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "filename\tcm-score"
    names = [ln.split("\t")[0] for ln in lines[1:]]
    # Paths as found: the folder joined with each file, the file as typed.
    assert names == [str(clips / "fake.wav"), str(clips / "real.wav"), str(silent)]
    assert all(np.isfinite(float(ln.split("\t")[1])) for ln in lines[1:])
    assert "skipped 1" in capsys.readouterr().out


def test_evaluate_cli_writes_metrics_and_reports_errors(tmp_path):
    scores, keys = tmp_path / "s.tsv", tmp_path / "k.tsv"
    scores.write_text("filename\tcm-score\na\t2.0\nb\t1.0\nc\t-1.0\nd\t0.5\n")
    keys.write_text("filename\tcm-label\na\tbonafide\nb\tbonafide\nc\tspoof\nd\tspoof\n")
    assert main(["evaluate", "--scores", str(scores), "--keys", str(keys), "--out", str(tmp_path / "m.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["eer"] == 0.0 and m["auc"] == 1.0 and m["n_bonafide"] == 2 and m["n_spoof"] == 2
    keys.write_text("filename\tcm-label\na\tbonafide\nb\tbonafide\nc\tspoof\nzz\tspoof\n")
    res = cli("evaluate", "--scores", str(scores), "--keys", str(keys), "--out", str(tmp_path / "m2.json"))
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Fix:" in err[0]


def test_train_cli_bad_config_is_one_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("data: {dataset: /nope}\nmodel: {name: lcnn}\nout_dir: x\noptim: {lrr: 1}\n")
    res = cli("train", "--config", str(cfg))
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "lrr" in err[0]


def test_score_cli_unknown_model_is_one_line(tmp_path):
    res = cli("score", "--model", "aasistt", "--out", str(tmp_path / "s.tsv"), str(tmp_path))
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "aasist" in err[0]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_run_demo_end_to_end(tmp_path):
    """The whole slice: embedded corpus -> 2 codecs -> dataset -> Mel-LCNN -> EER -> leaderboard."""
    out = tmp_path / "demo"
    res = cli("run", "demo", "--out", str(out), "--epochs", "1", "--device", "cpu", "--codec", "mp3@32kbps,opus@16kbps")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "dataset" / "README.md").is_file()
    metrics = json.loads((out / "eval" / "lcnn" / "metrics.json").read_text())
    assert 0.0 <= metrics["eer"] <= 100.0 and metrics["n_bonafide"] > 0 and metrics["n_spoof"] == 2 * metrics["n_bonafide"]
    runs = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert runs == ["lcnn-demo-test-mp3_32kbps-s0.json", "lcnn-demo-test-opus_16kbps-s0.json", "lcnn-demo-test-s0.json"]
    board = (out / "leaderboard" / "leaderboard.md").read_text()
    assert "demo-test(mp3@32kbps)" in board and "lcnn" in board
    assert (out / "train" / "lcnn" / "checkpoints" / "best.pt").is_file()
