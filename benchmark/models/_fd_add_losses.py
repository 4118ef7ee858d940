"""Loss terms and feature augmentations of FD-ADD (Zhang et al., IEEE TIFS 2025), kept apart
from the network so each one can be tested on hand-made inputs.

Our own implementation of the paper's equations; where RedamancyAY/RobustSpeechDetection
(commit 5f0d326) does something else, the difference is a named option and is documented
on that option.  All randomness comes from torch's generator, so a resumed run (whose torch
RNG state the trainer restores) draws the same masks, partners and noise.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn


def contrastive_loss(features: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 4: same-label pairs pay ``1 - cos``, different-label pairs ``max(cos - margin, 0)``;
    summed over all ``B^2`` ordered pairs (the diagonal included, where it costs 0) / ``B^2``."""
    unit = F.normalize(features.float(), dim=1)
    cos = unit @ unit.T
    same = labels[:, None] == labels[None, :]
    pair_cost = torch.where(same, 1.0 - cos, (cos - margin).clamp(min=0.0))
    return pair_cost.sum() / labels.numel() ** 2


def focal_loss(logit: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017), mean over the batch; ``alpha`` weighs target 1."""
    logit, target = logit.float(), target.float()
    bce = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
    p = torch.sigmoid(logit)
    p_true = p * target + (1 - p) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (weight * (1 - p_true) ** gamma * bce).mean()


def uniform_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the uniform distribution: the adversarial target that makes a
    classifier unable to tell the classes apart (label smoothing leaves it unchanged)."""
    return -F.log_softmax(logits.float(), dim=-1).mean(dim=-1).mean()


def partners_within_groups(labels: torch.Tensor) -> torch.Tensor:
    """For each item, a random partner index with the same label (a permutation per group)."""
    partner = torch.empty_like(labels, dtype=torch.long)
    for value in labels.unique():
        idx = (labels == value).nonzero(as_tuple=True)[0]
        partner[idx] = idx[torch.randperm(idx.numel(), device=labels.device)]
    return partner


def shuffle_pair_labels(target: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """A (content of i, synthesizer feature of perm[i]) pair is real (1) only if both items are."""
    return target * target[perm]


def blend_features(x: torch.Tensor, labels: torch.Tensor, *, eta: float = 10.0, mode: str = "paper",
                   mix_low: float = 0.5, eps: float = 1e-9) -> torch.Tensor:
    """Algorithm 1 (feature blending) on ``(B, D)`` features.

    ``mode="paper"``: each feature's mean and std (over its D entries) are mixed with those of
    a random partner from the same label group, ``r ~ U(0.5, 1)`` per item, then multiplicative
    noise ``r1 * Beta(2,5) * U(-1,1) + 1`` and additive noise ``r2 * Beta(2,5) * N(0,1)`` are
    applied, ``r1, r2 ~ U(0, eta) / 100``.  ``eta`` is read in percent as the official code
    does (``randint(0, 10) / 100``); a literal ``U(0, 10)`` would scale unit-norm-x-10 features
    by up to +-10x.

    ``mode="official"``: what RedamancyAY/RobustSpeechDetection's ``exchange_mu_std`` returns:
    it computes the mixed feature and then overwrites it with the noisy *original*, so only
    the noise takes effect.
    """
    if mode not in ("paper", "official"):
        raise ValueError(f"blend mode {mode!r}: unknown. Fix: use 'paper' or 'official'")
    if mode == "paper":
        partner = partners_within_groups(labels)
        mu = x.mean(dim=1, keepdim=True)
        std = x.std(dim=1, keepdim=True)
        r = mix_low + (1.0 - mix_low) * torch.rand(x.shape[0], 1, device=x.device, dtype=x.dtype)
        target_mu = r * mu + (1 - r) * mu[partner]
        target_std = r * std + (1 - r) * std[partner]
        mixed = target_std * (x - mu) / (std + eps) + target_mu
    else:
        mixed = x
    return add_feature_noise(mixed, eta)


def add_feature_noise(x: torch.Tensor, eta: float) -> torch.Tensor:
    """Noisy feature mixup: ``(r1 * b1 * U(-1, 1) + 1) * x + r2 * b2 * N(0, 1)``, scalars
    ``r1, r2 ~ U(0, eta) / 100`` and ``b1, b2 ~ Beta(2, 5)`` drawn once per call."""
    if eta <= 0:
        return x
    levels = torch.rand(2, device=x.device) * (eta / 100.0)
    beta = torch.distributions.Beta(torch.tensor([2.0, 2.0], device=x.device),
                                    torch.tensor([5.0, 5.0], device=x.device)).sample()
    scale = (levels * beta).to(x.dtype)
    mult = scale[0] * (2 * torch.rand_like(x) - 1) + 1
    add = scale[1] * torch.randn_like(x)
    return mult * x + add


def spec_augment(spec: torch.Tensor, *, freq_masks: int = 2, freq_width: int = 27, time_masks: int = 2,
                 time_width: int = 70, time_ratio: float = 0.2, axes: str = "paper") -> torch.Tensor:
    """SpecAugment without time warping on ``(B, 1, F, T)``: per item ``freq_masks`` bands of
    width ``< freq_width`` and ``time_masks`` spans of width ``< min(time_width, time_ratio * T)``,
    filled with that item's mean (taken before masking).

    ``axes="official"``: the official ``SpecAugmentBatchTransform`` reads the last axis as
    frequency, but torchaudio's spectrogram is ``(..., freq, time)``, so its "frequency"
    masks cut time and vice versa (invisible there because the input is 257 x 257).
    """
    if axes not in ("paper", "official"):
        raise ValueError(f"specaugment axes {axes!r}: unknown. Fix: use 'paper' or 'official'")
    b, _, n_freq, n_time = spec.shape
    fill = spec.mean(dim=(1, 2, 3), keepdim=True)
    f_axis, t_axis = (2, 3) if axes == "paper" else (3, 2)
    f_len, t_len = spec.shape[f_axis], spec.shape[t_axis]
    masked = torch.zeros(b, n_freq, n_time, dtype=torch.bool, device=spec.device)
    max_t = min(time_width, int(t_len * time_ratio))
    for axis, length, count, width in ((f_axis, f_len, freq_masks, freq_width), (t_axis, t_len, time_masks, max_t)):
        if width < 1 or length <= width:
            continue
        pos = torch.arange(length, device=spec.device)
        for _ in range(count):
            w = torch.randint(0, width, (b, 1), device=spec.device)
            start = (torch.rand(b, 1, device=spec.device) * (length - w)).long()
            band = (pos >= start) & (pos < start + w)  # (B, length)
            masked |= band[:, :, None] if axis == 2 else band[:, None, :]
    return torch.where(masked[:, None], fill, spec)


@contextmanager
def bn_running_stats_kept(module: nn.Module) -> Iterator[None]:
    """BatchNorm still uses batch statistics in train mode, but running mean/var and counters
    are restored afterwards: a second pass over the same batch must not count twice."""
    saved = [(m, {k: b.detach().clone() for k, b in m.named_buffers(recurse=False)})
             for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    try:
        yield
    finally:
        # Through .data: the first pass saved these buffers for its backward, and a tracked
        # in-place write would bump their version and make that backward refuse to run.
        for m, buffers in saved:
            for k, value in buffers.items():
                getattr(m, k).data.copy_(value)
