"""torchrun entry point for the DDP test: registers a tiny BatchNorm model (so the
test exercises DDP's buffer broadcast too) and runs the normal training CLI."""

import sys

import torch
from torch import nn

from benchmark.models import MODELS
from benchmark.models.base import Detector
from benchmark.training.__main__ import main


@MODELS.register("lcnn-ddp-test")
class _TinyBN(Detector):
    num_samples = 2000

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 8, kernel_size=32, stride=16)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 2)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(torch.log1p(self.bn(self.conv(wave.unsqueeze(1))).abs().mean(dim=-1)))


@MODELS.register("own-loss-ddp-test")
class _TinyOwnLoss(_TinyBN):
    """Its own objective with a head that only the training loss uses: a stand-in pass that
    reaches only the scoring head would leave that head's gradient missing from DDP's reduction."""

    own_loss = True

    def __init__(self):
        super().__init__()
        self.aux = nn.Linear(8, 2)

    def forward(self, wave: torch.Tensor, target: torch.Tensor | None = None, extras=None):
        energy = torch.log1p(self.bn(self.conv(wave.unsqueeze(1))).abs().mean(dim=-1))
        logits = self.head(energy)
        if target is None:
            return logits
        ce = nn.functional.cross_entropy
        return ce(logits, target) + ce(self.aux(energy), target), {}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] + ["--quiet"]))
