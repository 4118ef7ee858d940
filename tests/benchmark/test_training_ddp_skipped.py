"""DDP (2 gloo processes on CPU) where every item of one rank's batch cannot be decoded: the
rank must still join the step's all-reduce, or the other rank waits forever."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from benchmark.data import BuiltDataset, make_loader
from codecfake_build.audio import AudioError
from tests.benchmark.test_data import write_built_dataset

REPO = Path(__file__).resolve().parents[2]
SEED, BATCH, WORLD = 7, 4, 2


def _epoch_one_batches(data: Path, cache: Path, rank: int) -> list[list[int]]:
    """The dataset indices of ``rank``'s epoch-1 batches, drawn as the trainer draws them (through
    the DataLoader, whose iterator takes a seed from the shared generator before the sampler)."""
    src = BuiltDataset(str(data), "train", cache_dir=str(cache))
    loader = make_loader(src, train=True, batch_size=BATCH, num_samples=2000, seed=SEED, rank=rank, world_size=WORLD)
    loader.dataset.set_epoch(1)
    index = {name: i for i, name in enumerate(src.filenames)}
    return [[index[name] for name in batch.filenames] for batch in loader]


def _spoil_rows(data: Path, indices: list[int]) -> None:
    path = data / "data" / "train-00000-of-00001.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    for i in indices:
        rows[i]["audio"] = {"bytes": b"not audio at all", "path": None}
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)


def _first_batch_of_rank1_and_third_of_rank0(rank0: list[list[int]], rank1: list[list[int]]) -> list[int]:
    # Rank 1's first batch (before it decoded anything: the noise stand-in) and rank 0's third
    # batch (a replayed batch stands in) are wholly unreadable.
    return rank1[0] + rank0[2]


def _all_of_rank1(rank0: list[list[int]], rank1: list[list[int]]) -> list[int]:
    # Rank 1 decodes nothing in epoch 1: it must neither raise alone nor stall rank 0.
    return [i for batch in rank1 for i in batch]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("choose, model", [(_first_batch_of_rank1_and_third_of_rank0, "lcnn-ddp-test"),
                                           (_all_of_rank1, "lcnn-ddp-test"),
                                           (_first_batch_of_rank1_and_third_of_rank0, "own-loss-ddp-test")])
def test_ddp_rank_with_an_all_skipped_batch_stays_in_step(tmp_path, choose, model):
    data = write_built_dataset(tmp_path / "ds", {"train": 32, "validation": 16})
    cache = tmp_path / "hf"
    rank1, rank0 = _epoch_one_batches(data, cache, 1), _epoch_one_batches(data, cache, 0)
    spoiled = sorted(choose(rank0, rank1))
    assert len(spoiled) >= 2 * BATCH
    _spoil_rows(data, spoiled)
    src = BuiltDataset(str(data), "train", cache_dir=str(cache / "check"))
    for i in spoiled:  # the rows really are the ones the sampler hands out
        with pytest.raises(AudioError):
            src[i]

    out = tmp_path / "out"
    raw = {"data": {"dataset": str(data), "cache_dir": str(cache)},
           "model": {"name": model, "kwargs": {}},
           "optim": {"epochs": 2, "batch_size": BATCH, "lr": 3e-3, "num_workers": 0},
           "seed": SEED, "device": "cpu", "tensorboard": False, "out_dir": str(out)}
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD), "--master_addr",
         "127.0.0.1", "--master_port", str(port), "-m", "tests.benchmark.ddp_entry", str(cfg)],
        capture_output=True, text=True, timeout=240, env=env, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == WORLD and summary["epochs_completed"] == 2
    assert summary["replicas_in_sync"] is True
    # Each bad file counted once, though both ranks met some of them in epoch 2 as well.
    assert summary["skipped_files"] == len(spoiled)
    assert len(summary["skipped_examples"]) == len(spoiled)
    assert all("cannot decode" in why for why in summary["skipped_examples"].values())
