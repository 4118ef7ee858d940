"""Shared by the device tests: every test takes a ``device`` from ``DEVICES`` ("cpu" always,
"cuda" when this machine has one), so the same logic runs on the CPU in CI and on the GPU in
a GPU session (scripts/gpu_session/run.sh), where the CUDA variants are the point.

``record`` keeps measured numbers (largest differences, chosen dtypes) in a JSON-lines file
when ``$GPU_TESTS_RECORD`` names one: run.sh collects it, so one GPU call brings back the
figures behind every pass or failure, not just the verdict.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import Any, Iterator

import pytest
import torch

CUDA = torch.cuda.is_available()
NO_CUDA = "CUDA is not available here; this variant runs on a GPU machine (scripts/gpu_session/run.sh)"

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not CUDA, reason=NO_CUDA)),
]


def record(test: str, device: str, **values: Any) -> None:
    """Append one measurement to ``$GPU_TESTS_RECORD`` (no-op when it is unset)."""
    path = os.environ.get("GPU_TESTS_RECORD")
    if not path:
        return
    row = {"test": test, "device": device, **values}
    if device.startswith("cuda"):
        row["device_name"] = torch.cuda.get_device_name(0)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=str) + "\n")


@contextmanager
def strict_float32() -> Iterator[None]:
    """Plain float32 arithmetic on CUDA for the duration: cuDNN convolutions use TF32 (10-bit
    mantissa) by default on Ampere and later, which alone moves results by ~1e-3 relative.
    A no-op on a CPU."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def module_devices(obj: Any) -> set[str]:
    """Device types of the parameters of every torch module an object holds as an attribute
    (codecs keep theirs as ``model`` or ``net``)."""
    found: set[str] = set()
    for value in vars(obj).values():
        if isinstance(value, torch.nn.Module):
            found |= {p.device.type for p in value.parameters()}
    return found
