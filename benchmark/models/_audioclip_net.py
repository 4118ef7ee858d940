"""ESResNeXt-fbsp, AudioCLIP's audio encoder, written from the facts of AndreyGuzhov/AudioCLIP
(45327aa, model/esresnet/{fbsp,base,attention}.py; Guzhov et al., ICASSP 2022 / ICPR 2021).

What the network computes (state-dict names follow the official module, so the released
checkpoint's ``audio.*`` entries load strictly):

1. ``x`` is mapped from the int16 range to [-1, 1] (``(x + 32768) * 2 / 65535 - 1``): the
   official encoder expects int16-scaled samples.
2. Frames of ``win_length`` samples every ``hop_length`` (the signal zero-padded half before,
   half after so the last frame fits), times a scipy window (``window`` buffer), zero-padded
   centrally to ``n_fft``.
3. ``fbsp``: a learnable complex Fourier basis of n_fft/2 + 1 rows.  Row k has frequency
   ``fc[k]``, bandwidth ``fb[k]`` and window shape ``m[k]``: over ``t = pi * linspace(-1, 1, n_fft)``
   the kernel is ``sqrt(fb) * sinc(fb t / m)^m * exp(-i fc t)`` (the power of a negative sinc
   lobe keeps its phase pi * m), divided by sqrt(n_fft) when ``normalized``.
4. The |.|^2 spectrum, cut into three stacked frequency bands (the "RGB" channels of the
   ImageNet trunk: bins [0, F//3), [F//3, 2F//3), ...), in dB (10 log10, floor 1e-18).
5. A ResNeXt-50 (32x4d) trunk whose stages are gated by ``Attention2d`` maps computed from each
   stage's input, then average pooling gated by a fifth map, then ``fc`` -> the embedding.

The trunk's widths, depths and groups are configurable so tests can run a small network
through the same code; the defaults are AudioCLIP's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-8          # fbsp's guard against division by zero
_LOG_FLOOR = 1e-18   # power floor before log10


@dataclass(frozen=True)
class ESResNeXtConfig:
    n_fft: int = 2048
    hop_length: int = 561
    win_length: int = 1654
    window: str = "blackmanharris"
    normalized: bool = True
    embed_dim: int = 1024
    widths: tuple = (64, 128, 256, 512)
    layers: tuple = (3, 4, 6, 3)
    groups: int = 32
    width_per_group: int = 4
    attention: bool = True


def _normalise_grad(grad: torch.Tensor) -> torch.Tensor:
    # The official fbsp rescales the gradients of m, fb, fc by their max-abs value.
    return grad / (grad.abs().max() + _EPS)


class FourierBasisFrontEnd(nn.Module):
    """Learnable short-time Fourier transform: frames -> (B, F, frames) real and imaginary parts."""

    def __init__(self, n_bins: int, normalized: bool):
        super().__init__()
        self.normalized = normalized
        self.m = nn.Parameter(torch.zeros(n_bins))
        self.fb = nn.Parameter(torch.ones(n_bins))
        self.fc = nn.Parameter(torch.arange(n_bins, dtype=torch.get_default_dtype()))
        for p in (self.m, self.fb, self.fc):
            p.register_hook(_normalise_grad)

    def basis(self, n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary (F, n) kernels."""
        t = math.pi * torch.linspace(-1.0, 1.0, n, dtype=dtype, device=device)[None, :] + _EPS
        m, fb, fc = self.m[:, None], self.fb[:, None], self.fc[:, None]
        arg = fb * t / (m + _EPS)
        sinc = torch.where(arg == 0, torch.ones_like(arg), torch.sin(arg) / arg)
        # sinc ** m for a real, possibly negative base: magnitude |sinc|^m, phase m * angle(sinc).
        phase = m * torch.where(sinc < 0, torch.full_like(sinc, math.pi), torch.zeros_like(sinc))
        magnitude = (sinc * sinc) ** (0.5 * m)
        win_re, win_im = magnitude * torch.cos(phase), magnitude * torch.sin(phase)
        ker_re, ker_im = torch.cos(fc * t), -torch.sin(fc * t)
        scale = fb.sqrt() / (math.sqrt(n) if self.normalized else 1.0)
        return scale * (win_re * ker_re - win_im * ker_im), scale * (win_re * ker_im + win_im * ker_re)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w_re, w_im = self.basis(frames.shape[-1], frames.dtype, frames.device)
        return F.linear(frames, w_re).transpose(1, 2), F.linear(frames, w_im).transpose(1, 2)


class Attention2d(nn.Module):
    """Gate: adaptive max-pool to the stage's output size, depthwise conv, pointwise conv, BN, sigmoid."""

    def __init__(self, channels_in: int, channels_out: int, kernel: tuple[int, int]):
        super().__init__()
        pad = (kernel[0] // 2, kernel[1] // 2)
        self.conv_depth = nn.Conv2d(channels_in, channels_in, kernel, padding=pad, groups=channels_in)
        self.conv_point = nn.Conv2d(channels_in, channels_out, 1)
        self.bn = nn.BatchNorm2d(channels_out)

    def forward(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        x = F.adaptive_max_pool2d(x, size)
        return torch.sigmoid(self.bn(self.conv_point(self.conv_depth(x))))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, channels_in: int, planes: int, stride: int, groups: int, width_per_group: int):
        super().__init__()
        width = int(planes * width_per_group / 64.0) * groups
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(channels_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or channels_in != out:
            self.downsample = nn.Sequential(nn.Conv2d(channels_in, out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


# Attention kernels per gate (official: (3,1), (1,5), (3,1), (1,5) after the stages, (3,5) on the pool).
_GATE_KERNELS = ((3, 1), (1, 5), (3, 1), (1, 5))


class ESResNeXtFBSP(nn.Module):
    """(B, T) waveform -> (B, embed_dim) AudioCLIP audio embedding (before L2 normalisation)."""

    def __init__(self, cfg: ESResNeXtConfig = ESResNeXtConfig()):
        super().__init__()
        from scipy.signal import get_window

        self.cfg = cfg
        self.fbsp = FourierBasisFrontEnd(cfg.n_fft // 2 + 1, cfg.normalized)
        window = get_window(cfg.window, cfg.win_length, fftbins=True)
        self.register_buffer("window", torch.from_numpy(np.asarray(window)).to(torch.get_default_dtype()))
        stem = cfg.widths[0]
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        channels = stem
        for i, (planes, depth) in enumerate(zip(cfg.widths, cfg.layers)):
            blocks = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(Bottleneck(channels, planes, stride, cfg.groups, cfg.width_per_group))
                channels = planes * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            if cfg.attention:
                gate_in = stem if i == 0 else cfg.widths[i - 1] * Bottleneck.expansion
                setattr(self, f"att{i + 1}", Attention2d(gate_in, channels, _GATE_KERNELS[i]))
        if cfg.attention:
            self.att5 = Attention2d(channels, channels, (3, 5))
        self.fc = nn.Linear(channels, cfg.embed_dim)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        win, hop, length = self.cfg.win_length, self.cfg.hop_length, x.shape[-1]
        n = 1 if length <= win else 1 + math.ceil((length - win) / hop)
        total = (n - 1) * hop + win - length
        if total > 0:
            x = F.pad(x, (total // 2, total - total // 2))
        frames = x.unfold(-1, win, hop)[:, :n] * self.window
        extra = self.cfg.n_fft - win
        if extra > 0:
            frames = F.pad(frames, (extra // 2, extra - extra // 2))
        return frames

    def log_power(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, T) int16-scaled samples -> (B, 3, F // 3, frames) dB image."""
        x = (wave.to(torch.get_default_dtype()) + 32768.0) * 2.0 / 65535.0 - 1.0
        with torch.no_grad():  # the official code frames without gradient (nothing to learn there)
            frames = self.frames(x)
        re, im = self.fbsp(frames)
        band = re.shape[1] // 3
        power = (re[:, :3 * band] ** 2 + im[:, :3 * band] ** 2).reshape(re.shape[0], 3, band, re.shape[-1])
        power = torch.where(power > 0, power, torch.full_like(power, _LOG_FLOOR))
        return 10.0 * torch.log10(power)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.log_power(wave)
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        for i in range(1, 5):
            stage = getattr(self, f"layer{i}")
            if self.cfg.attention:
                gate_input = x
                x = stage(x)
                x = x * getattr(self, f"att{i}")(gate_input, x.shape[-2:])
            else:
                x = stage(x)
        pooled = F.adaptive_avg_pool2d(x, 1)
        if self.cfg.attention:
            pooled = pooled * self.att5(x, pooled.shape[-2:])
        return self.fc(pooled.flatten(1))
