"""Batched scoring shared by the trainer (dev EER) and the scoring CLI."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Iterable, overload, Literal

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from benchmark.data.labels import scores_from_logits
from benchmark.data.loader import Batch


def autocast_for(device: torch.device, amp: bool, dtype: str | None = "fp16"):
    """fp16 or bf16 autocast on CUDA when asked; a no-op elsewhere (AMP is CUDA-only here)."""
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)
    return nullcontext()


@overload
def score_loader(model: nn.Module, loader: Iterable[Batch], device: torch.device | str, *, amp: bool = ...,
                 progress: bool = ..., return_targets: Literal[False] = ...,
                 amp_dtype: str | None = ...) -> tuple[list[str], np.ndarray]: ...
@overload
def score_loader(model: nn.Module, loader: Iterable[Batch], device: torch.device | str, *, amp: bool = ...,
                 progress: bool = ..., return_targets: Literal[True],
                 amp_dtype: str | None = ...) -> tuple[list[str], np.ndarray, np.ndarray]: ...


def score_loader(model, loader, device, *, amp=False, progress=False, return_targets=False, amp_dtype="fp16"):
    """Score every batch: ``(filenames, scores)`` with score = logit[bona fide] - logit[spoof]
    (higher = more bona fide), float64, in loader order.  With ``return_targets`` also the
    model targets (1 = bona fide, 0 = spoof, -1 = unlabelled).

    Puts the model in eval mode and leaves it there.
    """
    device = torch.device(device)
    model.eval()
    names: list[str] = []
    scores: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    with torch.inference_mode():
        for batch in tqdm(loader, desc="scoring", disable=not progress, leave=False, dynamic_ncols=True):
            with autocast_for(device, amp, amp_dtype):
                logits = model(batch.wave.to(device, non_blocking=True))
            scores.append(scores_from_logits(logits.float()).cpu().numpy().astype(np.float64))
            targets.append(batch.target.numpy())
            names += batch.filenames
    score_arr = np.concatenate(scores) if scores else np.zeros(0, dtype=np.float64)
    if return_targets:
        return names, score_arr, (np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64))
    return names, score_arr
