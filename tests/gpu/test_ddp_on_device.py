"""torchrun on each device.

* The collectives (tests/gpu/nccl_entry.py): NCCL with one rank per GPU on CUDA (at least 1:
  the trainer creates no process group at world size 1, so this is what proves NCCL works on
  a one-GPU machine), gloo with 2 ranks on a CPU.
* The training CLI under torchrun (tests/benchmark/ddp_entry.py, as the gloo test there):
  world size = the GPU count on CUDA (DDP on NCCL from 2 GPUs), 1 on a CPU, where
  tests/benchmark/test_training.py already trains 2 gloo ranks (each spawn costs seconds)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.benchmark.test_data import write_built_dataset
from tests.benchmark.test_training import make_config
from tests.gpu.conftest import DEVICES, record

REPO = Path(__file__).resolve().parents[2]


def _world(device: str, cpu: int) -> int:
    return max(1, torch.cuda.device_count()) if device == "cuda" else cpu


def _torchrun(nproc: int, module_args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr",
         "127.0.0.1", "--master_port", str(port), "-m", *module_args],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


@pytest.mark.parametrize("device", DEVICES)
def test_collectives_and_a_ddp_step(device):
    world = _world(device, cpu=2)
    res = _torchrun(world, ["tests.gpu.nccl_entry"], {"NCCL_ENTRY_DEVICE": device})
    assert res.returncode == 0, res.stderr[-3000:]
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    record("ddp_collectives", device, **seen)
    assert seen["backend"] == ("nccl" if device == "cuda" else "gloo")
    assert seen["world_size"] == world and seen["all_reduce"] == world * (world + 1) / 2
    assert seen["replicas_equal"] is True


@pytest.mark.parametrize("device", DEVICES)
def test_training_cli_under_torchrun(device, tmp_path):
    world = _world(device, cpu=1)
    built = write_built_dataset(tmp_path / "built", {"train": 32, "validation": 16})
    out = tmp_path / "ddp"
    cfg = make_config(built, tmp_path / "cache", out, epochs=2, batch_size=4)
    cfg.model.name, cfg.model.kwargs, cfg.device = "lcnn-ddp-test", {}, device
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.to_dict()))
    res = _torchrun(world, ["tests.benchmark.ddp_entry", str(cfg_path)], {})
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    record("ddp_training", device, world_size=summary["world_size"], in_sync=summary["replicas_in_sync"],
           summary_device=summary["device"])
    assert summary["world_size"] == world and summary["replicas_in_sync"] is True
    assert summary["device"].startswith(device)
    assert summary["effective_batch_size"] == 4 * world and summary["epochs_completed"] == 2
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
