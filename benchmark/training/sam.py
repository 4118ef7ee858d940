"""Sharpness-aware minimisation around any base optimiser (Foret et al. 2021;
ASAM: Kwon et al. 2021), as Codecfake trains W2V2-AASIST (rho 0.05 around Adam).

One step on a batch:

1. forward/backward at w -> gradient g;
2. ``first_step``: move to w + e with e = rho * g / ||g|| (SAM) or, adaptively,
   e = rho * w^2 * g / || |w| * g || (ASAM; norms over all parameters);
3. forward/backward on the *same* batch at w + e, with BatchNorm running
   statistics frozen (``frozen_bn_stats``: the buffers are saved and restored,
   which also holds for ``momentum=None`` layers, unlike the momentum=0 trick);
4. ``second_step``: restore w and let the base optimiser step with the
   gradient taken at w + e.

CSAM is this plus the co-training batch sampler (``benchmark.data.cotrain``).
The wrapper holds no state across steps, so checkpoints store the base
optimiser's state dict unchanged.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

SAM_MODES = ("none", "sam", "asam")


class SAM:
    def __init__(self, base: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False, eps: float = 1e-12):
        if rho < 0:
            raise ValueError(f"SAM rho must be >= 0, got {rho}")
        self.base, self.rho, self.adaptive, self.eps = base, rho, adaptive, eps
        self._saved: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def param_groups(self):
        return self.base.param_groups

    def _params(self) -> Iterator[torch.Tensor]:
        for group in self.base.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield p

    @torch.no_grad()
    def perturbation(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(parameter, e) pairs for the current gradients."""
        params = list(self._params())
        if not params:
            return []
        scaled = [(p.abs() * p.grad) if self.adaptive else p.grad for p in params]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s.float()) for s in scaled]))
        scale = self.rho / (norm + self.eps)
        return [(p, (p.square() if self.adaptive else 1.0) * p.grad * scale.to(p.dtype)) for p in params]

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True) -> None:
        """Climb to w + e; remembers w for ``second_step``."""
        if self._saved:
            raise RuntimeError("SAM.first_step called twice without second_step")
        for p, e in self.perturbation():
            self._saved.append((p, p.detach().clone()))
            p.add_(e)
        if zero_grad:
            self.base.zero_grad(set_to_none=True)

    @torch.no_grad()
    def restore(self) -> None:
        for p, w in self._saved:
            p.copy_(w)
        self._saved = []

    def second_step(self, zero_grad: bool = True, scaler: torch.amp.GradScaler | None = None) -> None:
        """Back to w, then the base step with the gradients taken at w + e."""
        self.restore()
        if scaler is not None and scaler.is_enabled():
            scaler.step(self.base)
            scaler.update()
        else:
            self.base.step()
        if zero_grad:
            self.base.zero_grad(set_to_none=True)

    # The trainer checkpoints and schedules the wrapper like the base optimiser.
    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return self.base.state_dict()

    def load_state_dict(self, state) -> None:
        self.base.load_state_dict(state)


def make_sam(mode: str, base: torch.optim.Optimizer, rho: float = 0.05) -> SAM | None:
    """``optim.sam`` of a training config: "none" -> None, "sam", "asam"."""
    if mode not in SAM_MODES:
        raise ValueError(f"unknown SAM mode '{mode}'; choose one of: {', '.join(SAM_MODES)}")
    return None if mode == "none" else SAM(base, rho, adaptive=mode == "asam")


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers still normalise with batch statistics in train mode, but their
    running mean/var and batch counters are left exactly as they were."""
    saved = [(m, {k: b.detach().clone() for k, b in m.named_buffers(recurse=False)})
             for m in model.modules() if isinstance(m, _BatchNorm)]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in saved:
                for k, value in buffers.items():
                    getattr(m, k).copy_(value)
