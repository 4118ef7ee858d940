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
                 amp_dtype: str | None = ...,
                 embeddings_out: list[np.ndarray] | None = ...,
                 skipped_out: dict[str, str] | None = ...) -> tuple[list[str], np.ndarray]: ...
@overload
def score_loader(model: nn.Module, loader: Iterable[Batch], device: torch.device | str, *, amp: bool = ...,
                 progress: bool = ..., return_targets: Literal[True],
                 amp_dtype: str | None = ...,
                 embeddings_out: list[np.ndarray] | None = ...,
                 skipped_out: dict[str, str] | None = ...) -> tuple[list[str], np.ndarray, np.ndarray]: ...


def score_loader(model, loader, device, *, amp=False, progress=False, return_targets=False, amp_dtype="fp16",
                 embeddings_out=None, skipped_out=None):
    """Score every batch: ``(filenames, scores)`` with score = logit[bona fide] - logit[spoof]
    (higher = more bona fide), float64, in loader order.  With ``return_targets`` also the
    model targets (1 = bona fide, 0 = spoof, -1 = unlabelled).  With a list as
    ``embeddings_out``, the model's ``embed`` output of each batch is appended to it (float32,
    loader order), taken from the same forward pass that gave the scores.  Items that could not be
    decoded are left out (no score); with a dict as ``skipped_out`` they are added to it
    (filename -> problem).

    Puts the model in eval mode and leaves it there.
    """
    device = torch.device(device)
    model.eval()
    names: list[str] = []
    scores: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    with torch.inference_mode():
        for batch in tqdm(loader, desc="scoring", disable=not progress, leave=False, dynamic_ncols=True):
            if skipped_out is not None:
                skipped_out.update(batch.skipped)
            if len(batch) == 0:
                continue
            wave = batch.wave.to(device, non_blocking=True)
            with autocast_for(device, amp, amp_dtype):
                if embeddings_out is None:
                    logits = model(wave)
                else:
                    logits, emb = forward_with_embedding(model, wave)
                    embeddings_out.append(emb.float().cpu().numpy())
            scores.append(scores_from_logits(logits.float()).cpu().numpy().astype(np.float64))
            targets.append(batch.target.numpy())
            names += batch.filenames
    score_arr = np.concatenate(scores) if scores else np.zeros(0, dtype=np.float64)
    if return_targets:
        return names, score_arr, (np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64))
    return names, score_arr


def forward_with_embedding(model: nn.Module, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(model(wave), model.embed(wave))`` from one forward pass where the model's forward
    goes through ``self.embed`` once (the usual ``head(embed(wave))``): the call is caught on
    its way through, so evaluation reads and runs each test set once, not twice.  A forward
    that does not call ``embed`` exactly once gets a second, separate ``embed`` call."""
    caught: list[torch.Tensor] = []
    embed = model.embed

    def catching(*args, **kwargs):
        out = embed(*args, **kwargs)
        caught.append(out)
        return out

    model.embed = catching  # an instance attribute shadows the method for this one call
    try:
        logits = model(wave)
    finally:
        del model.embed
    emb = caught[0] if len(caught) == 1 else embed(wave)
    if emb.dim() != 2 or emb.shape[0] != wave.shape[0]:
        raise ValueError(f"model {getattr(model, 'registry_name', type(model).__name__)}: embed() returned shape "
                         f"{tuple(emb.shape)} for a batch of {wave.shape[0]}. Fix: return (batch, dim) embeddings")
    return logits, emb
