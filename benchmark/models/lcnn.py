"""LCNN with max-feature-map activations (Lavrentyeva et al. 2019), as used for
Codecfake's Mel-LCNN (xieyuankun/Codecfake, model.py ``LCNN``).

Layer list, dropout (0.7 before the first linear layer), the 160 -> MFM -> 80
-> 256 embedding head and the 2-way output follow Codecfake, and so do the
module names (``conv1``..``conv9``, ``out``, ``fc_mu``), so a state dict
extracted from their released checkpoints has the same keys.  Two differences
to keep in mind when loading Codecfake weights: their logit index 0 is bona fide
(ours is index 1), and their mel input has no logarithm (pass ``log_mel=False``).

The flattened size, hence the first linear layer, depends on the input length:
for 64,600 samples and 80 log-mels it is 32 x (505 // 16) x (80 // 16) = 4,960,
which makes 793,760 of the model's 972,514 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.frontends import LFCC, LogMel
from benchmark.models.base import MODELS, Detector


class MaxFeatureMap(nn.Module):
    """Element-wise max of the two halves of the channel (or feature) axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.maximum(a, b)


def _mfm_conv(in_ch: int, out_ch: int, kernel: int, *tail: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, 2 * out_ch, kernel, padding=kernel // 2), MaxFeatureMap(), *tail)


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, affine=False)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(2, 2)


class _LCNNBase(Detector):
    def __init__(self, frontend: nn.Module, enc_dim: int = 256):
        super().__init__()
        self.frontend = frontend
        self.conv1 = _mfm_conv(1, 32, 5, _pool())
        self.conv2 = _mfm_conv(32, 32, 1, _bn(32))
        self.conv3 = _mfm_conv(32, 48, 3, _pool(), _bn(48))
        self.conv4 = _mfm_conv(48, 48, 1, _bn(48))
        self.conv5 = _mfm_conv(48, 64, 3, _pool())
        self.conv6 = _mfm_conv(64, 64, 1, _bn(64))
        self.conv7 = _mfm_conv(64, 32, 3, _bn(32))
        self.conv8 = _mfm_conv(32, 32, 1, _bn(32))
        self.conv9 = _mfm_conv(32, 32, 3, _pool())
        # Four 2x2 pools; the flattened map is 32 x (frames // 16) x (features // 16).
        flat = 32 * (frontend.num_frames(self.num_samples) // 16) * (frontend.num_features // 16)
        self.out = nn.Sequential(nn.Dropout(0.7), nn.Linear(flat, 160), MaxFeatureMap(), nn.Linear(80, enc_dim))
        self.fc_mu = nn.Linear(enc_dim, 2)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        # Codecfake lays features out as (batch, 1, frames, features).
        x = self.frontend(wave).transpose(1, 2).unsqueeze(1)
        for i in range(1, 10):
            x = getattr(self, f"conv{i}")(x)
        return self.out(x.flatten(1))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.fc_mu(self.embed(wave))


@MODELS.register("lcnn")
class LCNN(_LCNNBase):
    """Mel-LCNN: 80 log-mels (n_fft 512, hop 128) of the first 64,600 samples."""

    def __init__(self, log_mel: bool = True, enc_dim: int = 256):
        super().__init__(LogMel(log=log_mel), enc_dim)


@MODELS.register("lfcc-lcnn")
class LFCCLCNN(_LCNNBase):
    """The same back-end on 60-dim LFCC (20 ms / 10 ms, 512-point FFT)."""

    def __init__(self, enc_dim: int = 256):
        super().__init__(LFCC(), enc_dim)
