"""``python -m benchmark run all`` survives real ``kill -9``: killed during training, halfway
through a run JSON and just before done.json, then rerun, it writes the run JSONs of an
uninterrupted run (dates aside), leaves no temp file, and a finished run is then skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmark.matrix import Matrix
from benchmark.run_all import run_all
from tests.benchmark.test_readers import make_librisevoc
from tests.benchmark.test_training import TINY

REPO = Path(__file__).resolve().parents[2]
ONLY = "tiny/inner-dataset_librisevoc/s0"
RECIPE = f"""\
description: tiny kill -9 test recipe
train:
  model: {{name: {TINY}, kwargs: {{channels: 4, num_samples: 1600}}}}
  optim: {{epochs: 4, batch_size: 4, lr: 3.0e-3, num_workers: 0, class_weights: balanced}}
  device: cpu
  tensorboard: false
"""


@pytest.fixture(scope="module")
def matrix_setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("runall_kill9")
    recipes = base / "recipes"
    recipes.mkdir()
    (recipes / "tiny.yaml").write_text(RECIPE)
    matrix = base / "matrix.yaml"
    matrix.write_text("seeds: [0]\ngroups:\n  - name: g\n    recipes: [tiny]\n    protocols: [inner-dataset_librisevoc]\n")
    return matrix, recipes, make_librisevoc(base / "data")


def _command(setup: tuple[Path, Path, Path], out: Path) -> list[str]:
    matrix, _, data = setup
    return [sys.executable, "-m", "tests.benchmark.kill9_entry", "run", "all", "--matrix", str(matrix),
            "--data", f"librisevoc={data}", "--out", str(out), "--only", ONLY, "--bootstrap", "20", "--device", "cpu"]


def _env(setup: tuple[Path, Path, Path], kill_at: str | None = None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "KILL9_RECIPES": str(setup[1])}
    env.pop("KILL9_AT", None)
    if kill_at:
        env["KILL9_AT"] = kill_at
    return env


def _run(setup, out: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(_command(setup, out), capture_output=True, text=True, timeout=180,
                          env=_env(setup, kill_at), cwd=REPO)


def _kill_during_training(setup, out: Path) -> int:
    """SIGKILL from outside as soon as the first epoch checkpoint appears."""
    proc = subprocess.Popen(_command(setup, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env(setup), cwd=REPO)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not list(out.glob("*/train/checkpoints/epoch_*.pt")):
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    return proc.wait()


def _run_docs(out: Path) -> dict[str, dict]:
    """Every run JSON under ``out`` by relative path, without its date (the wall clock)."""
    docs = {}
    for path in sorted(out.glob("*/runs/*.json")):
        doc = json.loads(path.read_text())
        doc.pop("date")
        docs[str(path.relative_to(out))] = doc
    return docs


def test_run_all_kill9_then_rerun_equals_the_uninterrupted_run(matrix_setup, tmp_path):
    straight = tmp_path / "straight"
    ref = _run(matrix_setup, straight)
    assert ref.returncode == 0, ref.stderr[-2000:]
    (run_id,) = [p.name for p in straight.iterdir() if (p / "done.json").is_file()]

    out = tmp_path / "killed"
    assert _kill_during_training(matrix_setup, out) == -signal.SIGKILL
    assert not (out / run_id / "done.json").exists()
    # Halfway through writing the pooled run JSON (training is finished by then).
    r = _run(matrix_setup, out, "LibriSeVoc.json:1:torn")
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert not (out / run_id / "runs" / "LibriSeVoc.json").exists()
    # Every run JSON written, killed just before done.json marks the run finished.
    r = _run(matrix_setup, out, "done.json:1")
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert (out / run_id / "runs" / "LibriSeVoc.json").exists() and not (out / run_id / "done.json").exists()
    final = _run(matrix_setup, out)
    assert final.returncode == 0, final.stderr[-2000:]

    assert [p for p in out.rglob("*") if p.name.endswith(".tmp")] == []
    assert _run_docs(out) == _run_docs(straight) and len(_run_docs(out)) == 7  # pooled + 6 vocoders
    assert (out / run_id / "done.json").read_text() == (straight / run_id / "done.json").read_text()
    for name in ("best.pt", "last.pt"):
        a = torch.load(straight / run_id / "train/checkpoints" / name, map_location="cpu", weights_only=True)["model"]
        b = torch.load(out / run_id / "train/checkpoints" / name, map_location="cpu", weights_only=True)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert (out / run_id / "eval/LibriSeVoc/scores.tsv").read_bytes() == \
        (straight / run_id / "eval/LibriSeVoc/scores.tsv").read_bytes()

    # A finished run is skipped, never run again.
    matrix, recipes, data = matrix_setup

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished experiment ran again")

    again = run_all(Matrix.load(matrix, recipe_dir=recipes), {"librisevoc": str(data)}, out, only=ONLY,
                    progress=False, say=lambda s: None, runner=must_not_run)
    assert again.skipped_done == [run_id] and not again.failed
