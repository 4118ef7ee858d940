"""Atomic checkpoints and the RNG state that makes resumed runs bit-identical.

Everything stored loads with ``torch.load(weights_only=True)`` (plain
containers and tensors only), which ``benchmark.models.load_weights`` relies on.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codecfake_build.atomic import atomic_path

FORMAT = "codecfake-bench-train/1"
_EPOCH_FILE = re.compile(r"^epoch_(\d{3,})\.pt$")


def epoch_path(ckpt_dir: Path, epoch: int) -> Path:
    return ckpt_dir / f"epoch_{epoch:03d}.pt"


def atomic_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)



def load_checkpoint(path: Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(
            f"{path}: not a training checkpoint of this toolkit ({FORMAT}). "
            "Fix: delete it or choose another out_dir"
        )
    return state


def prune_epoch_checkpoints(ckpt_dir: Path, keep: int | None) -> None:
    if keep is None:
        return
    files = sorted((int(m[1]), p) for p in ckpt_dir.iterdir() if (m := _EPOCH_FILE.match(p.name)))
    for _, p in files[:-keep]:
        p.unlink(missing_ok=True)


def capture_rng(sampler_generator: torch.Generator | None) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        # numpy's key array is converted so the checkpoint stays weights_only-loadable.
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "sampler": sampler_generator.get_state() if sampler_generator is not None else None,
    }


def restore_rng(state: dict[str, Any], sampler_generator: torch.Generator | None) -> None:
    version, gstate, gauss = state["python"]
    random.setstate((version, tuple(gstate), gauss))
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if sampler_generator is not None and state["sampler"] is not None:
        sampler_generator.set_state(state["sampler"])
