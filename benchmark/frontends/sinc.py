"""AASIST's fixed sinc filterbank (Jung et al. 2022, after SincNet / RawNet2).

Band-pass filters with mel-spaced edges over 0..sr/2, ideal sinc responses
shaped by a Hamming window.  They are fixed in AASIST, so they are computed
here rather than stored: the official checkpoints do not contain them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.frontends.base import FRONTENDS


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def sinc_bandpass(n_filters: int, kernel_size: int, sample_rate: int) -> np.ndarray:
    # AASIST spaces the edges between the mel values of a 512-point FFT grid,
    # whose extremes are simply 0 Hz and sr/2.
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_filters + 1))
    t = np.arange(kernel_size) - (kernel_size - 1) / 2
    lo, hi = edges[:-1, None], edges[1:, None]

    def lowpass(fc):
        return 2 * fc / sample_rate * np.sinc(2 * fc * t / sample_rate)

    return (lowpass(hi) - lowpass(lo)) * np.hamming(kernel_size)


@FRONTENDS.register("sinc")
class SincFilterbank(nn.Module):
    def __init__(self, n_filters: int = 70, kernel_size: int = 128, sample_rate: int = 16000):
        super().__init__()
        kernel_size += 1 - kernel_size % 2  # odd length keeps the filters symmetric
        bank = sinc_bandpass(n_filters, kernel_size, sample_rate)
        self.register_buffer("filters", torch.from_numpy(bank).float()[:, None], persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> ``(B, n_filters, T - kernel_size + 1)`` (no padding, as AASIST)."""
        return F.conv1d(wave[:, None], self.filters)
