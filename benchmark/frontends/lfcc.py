"""LFCC as in the ASVspoof 2019/2021 LFCC-LCNN baseline (Wang & Yamagishi,
nii-yamagishilab/project-NN-Pytorch-scripts, ``sandbox/util_frontend.LFCC`` with
the baseline's ``frame_lens=320, frame_hops=160, fft_n=512, lfcc_dim=20,
with_energy=True``):

pre-emphasis 0.97 -> STFT (periodic Hamming window of 320 samples = 20 ms,
hop 160 = 10 ms, 512-point FFT, centred frames, zero padding) -> power spectrum
-> 20 linear triangular filters spanning 0-8 kHz -> log10(. + float32 eps)
-> orthonormal DCT-II -> coefficient 0 replaced by log frame energy
-> deltas and delta-deltas (x[t+1] - x[t-1], edges replicated) = 60 dims.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.frontends.base import FRONTENDS, power_stft

_EPS = float(np.finfo(np.float32).eps)


def linear_filterbank(sample_rate: int, n_fft: int, n_filters: int) -> np.ndarray:
    """Triangular filters with peak 1 and equally spaced edges, ``(bins, n_filters)``."""
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = np.linspace(0.0, sample_rate / 2, n_filters + 2)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lo) / (mid - lo)
    falling = (hi - freqs[:, None]) / (hi - mid)
    return np.clip(np.minimum(rising, falling), 0.0, None)


def delta(x: torch.Tensor) -> torch.Tensor:
    """Central difference along the last (time) axis, edges replicated."""
    padded = F.pad(x, (1, 1), mode="replicate")
    return padded[..., 2:] - padded[..., :-2]


@FRONTENDS.register("lfcc")
class LFCC(nn.Module):
    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, win_length: int = 320,
                 hop_length: int = 160, n_filters: int = 20, with_energy: bool = True,
                 with_delta: bool = True, preemphasis: float = 0.97):
        super().__init__()
        self.n_fft, self.hop_length, self.n_filters = n_fft, hop_length, n_filters
        self.with_energy, self.with_delta, self.preemphasis = with_energy, with_delta, preemphasis
        fb = linear_filterbank(sample_rate, n_fft, n_filters)
        dct = scipy.fft.dct(np.eye(n_filters), type=2, norm="ortho", axis=0)
        self.register_buffer("fbank", torch.from_numpy(fb.T).float(), persistent=False)
        self.register_buffer("dct", torch.from_numpy(dct).float(), persistent=False)
        self.register_buffer("window", torch.hamming_window(win_length), persistent=False)

    @property
    def num_features(self) -> int:
        return self.n_filters * (3 if self.with_delta else 1)

    def num_frames(self, num_samples: int) -> int:
        return 1 + num_samples // self.hop_length

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> ``(B, 60, frames)``: static, delta, delta-delta stacked."""
        if self.preemphasis:
            wave = torch.cat([wave[:, :1], wave[:, 1:] - self.preemphasis * wave[:, :-1]], dim=1)
        power = power_stft(wave, self.n_fft, self.hop_length, self.window, "constant")
        cep = self.dct @ torch.log10(self.fbank @ power + _EPS)
        if self.with_energy:
            energy = torch.log10(power.sum(dim=1, keepdim=True) / self.n_fft + _EPS)
            cep = torch.cat([energy, cep[:, 1:]], dim=1)
        if not self.with_delta:
            return cep
        d1 = delta(cep)
        return torch.cat([cep, d1, delta(d1)], dim=1)
