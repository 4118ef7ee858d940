"""``python -m benchmark train`` survives real ``kill -9``: killed in the middle of a checkpoint,
between checkpoint and log, at random moments and while writing the summary, then rerun with
the same command, it ends with the bytes of an uninterrupted run and leaves no temp file."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.benchmark.test_data import write_built_dataset
from tests.benchmark.test_training import TINY

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 7
LOG_KEYS = ("epoch", "train_loss", "dev_eer", "lr")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("kill9")
    return write_built_dataset(root / "built", {"train": 32, "validation": 16}), root / "hfcache"


def _config(tmp: Path, data: tuple[Path, Path], name: str) -> Path:
    built, cache = data
    raw = {"data": {"dataset": str(built), "cache_dir": str(cache)},
           "model": {"name": TINY, "kwargs": {"channels": 8}},
           "optim": {"epochs": EPOCHS, "batch_size": 8, "lr": 3e-3, "num_workers": 0, "class_weights": "balanced",
                     "scheduler": "cosine"},
           "seed": 7, "device": "cpu", "tensorboard": True, "out_dir": str(tmp / name)}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _command(config: Path) -> list[str]:
    return [sys.executable, "-m", "tests.benchmark.kill9_entry", "train", "--config", str(config)]


def _env(kill_at: str | None = None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # same float reductions every run
    env.pop("KILL9_AT", None)
    if kill_at:
        env["KILL9_AT"] = kill_at
    return env


def _run(config: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(_command(config), capture_output=True, text=True, timeout=180, env=_env(kill_at), cwd=REPO)


def _done_epochs(out: Path) -> int:
    last = out / "checkpoints" / "last.pt"
    return torch.load(last, map_location="cpu", weights_only=True)["epoch"] if last.exists() else 0


def _kill_after_next_epoch(config: Path, out: Path, delay: float) -> int:
    """Start the run, wait until it writes an epoch checkpoint it did not start with, sleep
    ``delay`` seconds and SIGKILL it from outside; its exit code (0 if it finished first)."""
    start = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("epoch_*.pt")}
    proc = subprocess.Popen(_command(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env(), cwd=REPO)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        now = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("epoch_*.pt")}
        if any(start.get(k) != v for k, v in now.items()):
            time.sleep(delay)
            break
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    return proc.wait()


def _log(out: Path) -> list[dict[str, str]]:
    return [{k: r[k] for k in LOG_KEYS} for r in csv.DictReader((out / "train_log.csv").open())]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def _summary(out: Path) -> dict:
    doc = json.loads((out / "train_summary.json").read_text())
    for key in ("seconds", "out_dir", "checkpoints"):  # wall time and where the run lives differ
        doc.pop(key)
    return doc


def test_kill9_at_every_write_then_rerun_gives_the_uninterrupted_bytes(data, tmp_path):
    straight = tmp_path / "straight"
    ref = _run(_config(tmp_path, data, "straight"))
    assert ref.returncode == 0, ref.stderr[-2000:]

    config = _config(tmp_path, data, "killed")
    out = tmp_path / "killed"
    # 0. Killed as epoch 1's best.pt is renamed into place: last.pt must not claim the epoch yet,
    #    or the resumed run would never write best.pt.
    r = _run(config, "best.pt:1")
    assert r.returncode == -signal.SIGKILL and _done_epochs(out) == 0
    # 1. Killed halfway through writing epoch 2's checkpoint: a torn temp file, last.pt at epoch 1.
    r = _run(config, "epoch_002.pt:1:torn")
    assert r.returncode == -signal.SIGKILL and _done_epochs(out) == 1
    assert _temp_files(out), "the torn checkpoint's temp file should be on disk before the rerun"
    # 2. Rerun, killed after epoch 3's epoch_003.pt and TensorBoard events, before last.pt moves on.
    r = _run(config, "last.pt:2")
    assert r.returncode == -signal.SIGKILL and _done_epochs(out) == 2
    assert (out / "checkpoints" / "epoch_003.pt").exists()
    # 3. Rerun, killed after epoch 3's last.pt, before train_log.csv lists epoch 3 (its 2nd write:
    #    a resume first rewrites the log from last.pt).
    r = _run(config, "train_log.csv:2")
    assert r.returncode == -signal.SIGKILL and _done_epochs(out) == 3
    assert [row["epoch"] for row in _log(out)] == ["1", "2"]
    # 4. Two kills from outside at staggered moments after an epoch checkpoint appears: these
    #    land wherever the run is (often inside the next checkpoint's save or the dev pass).
    for delay in (0.0, 0.05):
        code = _kill_after_next_epoch(config, out, delay)
        assert code in (-signal.SIGKILL, 0)
    # 5. Killed halfway through writing train_summary.json, after the last epoch.
    if _done_epochs(out) < EPOCHS:
        r = _run(config, "train_summary.json:1:torn")
        assert r.returncode == -signal.SIGKILL and _done_epochs(out) == EPOCHS
    # 6. The same command once more finishes the run.
    final = _run(config)
    assert final.returncode == 0, final.stderr[-2000:]

    assert _temp_files(out) == []
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == sorted(p.name for p in (straight / "checkpoints").iterdir())
    for name in ckpts:  # every epoch file, best.pt and last.pt hold the uninterrupted run's weights
        assert _same_weights(straight / "checkpoints" / name, out / "checkpoints" / name), name
    best_a = torch.load(straight / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
    best_b = torch.load(out / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
    assert best_a["epoch"] == best_b["epoch"]
    assert _log(out) == _log(straight) and len(_log(out)) == EPOCHS
    assert _summary(out) == _summary(straight)
    _check_tensorboard(straight, out)


def _check_tensorboard(straight: Path, out: Path) -> None:
    """TensorBoard shows each epoch once, with the uninterrupted run's values, although the
    killed run wrote several events files and logged some epochs twice."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def scalars(run: Path) -> list[tuple[int, float]]:
        acc = EventAccumulator(str(run / "tensorboard"))
        acc.Reload()
        return [(e.step, e.value) for e in acc.Scalars("train_loss")]

    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) > 1
    assert scalars(out) == scalars(straight)
    assert [step for step, _ in scalars(out)] == list(range(1, EPOCHS + 1))
