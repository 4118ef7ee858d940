"""WaveSpec's spectral encoder: a lightweight U-Net on the CQT image that yields three scales.

Input ``(B, C, bins, frames)`` (C = CQT channels).  Three levels of two 3x3 conv-BN-ReLU
layers each; between levels a 2x2 average pool halves frequency *and* time, so the deep
level sees ~4x the temporal context of the shallow one (WaveSpec's "global semantics")::

    e1 = enc1(norm(x))          widths[0], bins,     frames
    e2 = enc2(pool(e1))         widths[1], bins/2,   frames/2
    e3 = enc3(pool(e2))         widths[2], bins/4,   frames/4     (bottleneck)
    d2 = dec2(cat(up(e3), e2))  widths[1], bins/2,   frames/2
    d1 = dec1(cat(up(d2), e1))  widths[0], bins,     frames

``taps="decoder"`` (default) returns (d1, d2, e3): shallow, medium, deep.  Decoder maps
carry the skip connection's local detail *and* the deeper context, which is what a U-Net
is for; ``taps="encoder"`` returns (e1, e2, e3) and builds no decoder.  Only the stages a
requested scale needs are built, so no parameter is left unused (DDP needs no
``find_unused_parameters``).

Cost at the defaults (2 x 84 x 201 input, widths 64/128/256): about 7.5 GMAC per 4 s crop
forward, two thirds of it in the two decoder stages (their inputs concatenate the skip);
for scale, XLS-R 300M's forward is about 65 GMAC and the ResNet18 about 1 GMAC.

Average pooling (not max) keeps each pooled frame the exact mean of two input frames, so
its centre sits half-way between them; ``upsample_time`` inverts that mapping exactly
(see ``benchmark.models.wavespec`` for the frame alignment with the SSL frames).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _double_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
    )


def _up_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Double both axes (bilinear, exact factor 2), then pad/crop by replication to ``like``'s size."""
    x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False, recompute_scale_factor=False)
    return fit_last_axes(x, like.shape[-2:])


def fit_last_axes(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Crop or replicate-pad the trailing axes of ``x`` at their end to ``size`` (start stays aligned)."""
    for k, n in enumerate(size):
        axis = x.dim() - len(size) + k
        have = x.shape[axis]
        if have > n:
            x = x.narrow(axis, 0, n)
        elif have < n:
            last = x.narrow(axis, have - 1, 1)
            x = torch.cat([x, last.expand(*[n - have if a == axis else -1 for a in range(x.dim())])], dim=axis)
    return x


class CQTUNet(nn.Module):
    def __init__(self, in_channels: int, widths: tuple[int, int, int] = (64, 128, 256), taps: str = "decoder",
                 scales: tuple[int, ...] = (1, 2, 3)):
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"unet_widths must hold three widths (shallow, medium, deep), got {list(widths)}")
        if taps not in ("decoder", "encoder"):
            raise ValueError(f"unet_taps must be 'decoder' or 'encoder', got {taps!r}")
        self.taps, self.scales, self.widths = taps, tuple(scales), tuple(widths)
        # Log-magnitude and phase live on different scales; a per-channel BatchNorm puts them on one.
        self.norm = nn.BatchNorm2d(in_channels)
        w1, w2, w3 = widths
        # Decoder taps always start from the bottleneck; encoder taps stop at the deepest wanted level.
        depth = 3 if taps == "decoder" else max(self.scales)
        self.enc1 = _double_conv(in_channels, w1)
        self.enc2 = _double_conv(w1, w2) if depth >= 2 else None
        self.enc3 = _double_conv(w2, w3) if depth >= 3 else None
        need_d2 = taps == "decoder" and bool({1, 2} & set(self.scales))
        need_d1 = taps == "decoder" and 1 in self.scales
        self.dec2 = _double_conv(w3 + w2, w2) if need_d2 else None
        self.dec1 = _double_conv(w2 + w1, w1) if need_d1 else None

    @property
    def scale_channels(self) -> dict[int, int]:
        return {1: self.widths[0], 2: self.widths[1], 3: self.widths[2]}

    @staticmethod
    def time_stride(scale: int) -> int:
        """Input frames per frame of a scale's map (1, 2, 4)."""
        return 2 ** (scale - 1)

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """``(B, C, bins, frames)`` -> {scale: (B, width, bins / stride, frames / stride)} for the wanted scales."""
        out = {1: self.enc1(self.norm(x))}
        if self.enc2 is not None:
            out[2] = self.enc2(F.avg_pool2d(out[1], 2))
        if self.enc3 is not None:
            out[3] = self.enc3(F.avg_pool2d(out[2], 2))
        e1 = out[1]
        if self.dec2 is not None:
            out[2] = self.dec2(torch.cat([_up_to(out[3], out[2]), out[2]], dim=1))
        if self.dec1 is not None:
            out[1] = self.dec1(torch.cat([_up_to(out[2], e1), e1], dim=1))
        return {s: out[s] for s in self.scales}
