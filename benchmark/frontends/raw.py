"""Identity front-end for end-to-end models that consume the waveform."""

from __future__ import annotations

import torch
from torch import nn

from benchmark.frontends.base import FRONTENDS


@FRONTENDS.register("raw")
class Raw(nn.Module):
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return wave
