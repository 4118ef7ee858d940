"""Every detector is an ``nn.Module`` that takes a batch of raw 16 kHz waveforms
``(B, T)`` and returns logits ``(B, 2)`` with index 1 = bona fide.  Front-ends
(log-mel, LFCC, SSL) are sub-modules, so features are computed batched on the
model's device.  Class attributes tell the data pipeline how to cut inputs.
"""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import Any

import torch
from torch import nn

from codecfake_build.registry import Registry

MODELS: Registry[type[nn.Module]] = Registry("model", "benchmark.models")


class Detector(nn.Module):
    sample_rate: int = 16000
    #: Fixed input length in samples (None = variable length).
    num_samples: int | None = 64600
    #: How evaluation inputs are cut to num_samples: "tile" (first N, repeat short ones)
    #: or "middle" (centre N, repeat short ones).
    crop: str = "tile"
    #: Models with their own multi-term objective (FD-ADD, WaveSpec) set this: in training
    #: the trainer then calls ``model(wave, target=target, extras=batch.extras)`` (through
    #: DDP when distributed) and gets ``(loss, parts)`` back, ``parts`` being a dict of
    #: detached scalar tensors logged as ``train_<name>``.  Scoring still calls ``model(wave)``.
    own_loss: bool = False
    #: Models whose constructor takes ``systems`` (the spoof systems of the training set, as
    #: extra classes) set this; the trainer fills ``systems`` from the training data when a
    #: config leaves it out and records the list in the run's config.yaml.
    uses_systems: bool = False
    #: DDP must look for parameters a step leaves unused (ablations that skip a branch).
    ddp_find_unused: bool = False

    def train_transform(self) -> Any:
        """An ``benchmark.data.ItemTransform`` that replaces the random training crop, or None."""
        return None

    def score(self, wave: torch.Tensor) -> torch.Tensor:
        """Bona-fide logit minus spoof logit: higher means more bona fide."""
        logits = self(wave)
        return logits[:, 1] - logits[:, 0]

    # Parameter counts (``python -m benchmark models``): params = backend_params() + frontend_params().
    def _pretrained_frontends(self) -> dict[str, nn.Module]:
        """The SSL front-ends among this model's submodules, by their module path."""
        from benchmark.frontends.ssl import SSLFrontend

        return {name: m for name, m in self.named_modules() if isinstance(m, SSLFrontend)}

    def frontend_params(self) -> int:
        """Size of the pretrained (SSL) front-ends as the detector keeps them (an SSL model cut
        above the hidden state it reads), counted whether or not their frozen weights are
        registered in ``parameters()``; 0 for models trained from scratch."""
        return sum(m.num_params() for m in self._pretrained_frontends().values())

    def frontend_full_params(self) -> int:
        """Size of those pretrained front-ends as released, with every layer (papers often
        quote this one); equals ``frontend_params()`` when nothing is cut."""
        frontends = self._pretrained_frontends()
        if not frontends:  # a model that counts its front-end by overriding frontend_params()
            return self.frontend_params()
        return sum(m.full_params() for m in frontends.values())

    def backend_params(self) -> int:
        """Parameters outside the pretrained front-ends.  An SSL front-end's registered
        weights (fine-tuned) are left out; frozen ones are not in ``parameters()`` anyway."""
        total = sum(p.numel() for p in self.parameters())
        frontends = self._pretrained_frontends()
        if not frontends:  # a model that counts its front-end by overriding frontend_params()
            return total - self.frontend_params()
        return total - sum(p.numel() for m in frontends.values() for p in m.parameters())


def configure(model: nn.Module, overrides: dict[str, Any]) -> Any:
    """``model``'s class-level ``config`` dataclass with ``overrides`` applied; an unknown
    option raises one TypeError line that lists the valid ones."""
    try:
        return dataclasses.replace(model.config, **overrides)
    except TypeError as exc:
        valid = ", ".join(f.name for f in dataclasses.fields(model.config))
        raise TypeError(f"{type(model).__name__}: {exc}. Valid options: {valid}") from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    return MODELS.get(name)(**kwargs)


def load_weights(model: nn.Module, path: str | Path, map_location: str = "cpu") -> nn.Module:
    """Load an official plain state dict or one of our training checkpoints
    (``{"model": state_dict, ...}``).  Key mismatches raise with the first few keys named."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found. Fix: pass --checkpoint with an existing .pth/.pt file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read checkpoint ({type(exc).__name__}). "
                         "Fix: pass a PyTorch state dict (.pth/.pt) saved with torch.save") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    name = getattr(model, "registry_name", type(model).__name__)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except (RuntimeError, ValueError) as exc:
        # Models may explain a mismatch themselves (e.g. which AASIST variant fits);
        # torch's own report is many lines, so keep only its first.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: {first}" if "Fix:" in first else
                         f"{path}: checkpoint does not fit model {name} ({first}). "
                         "Fix: pass the --model that produced this checkpoint") from None
    if missing or unexpected:
        raise ValueError(
            f"{path}: checkpoint does not fit model {name}: "
            f"missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}. "
            "Fix: pass the --model that produced this checkpoint"
        )
    return model
