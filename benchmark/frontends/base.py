"""Front-end registry and the STFT helper the spectral front-ends share.

Front-ends map raw waveforms ``(B, T)`` to features on the caller's device.
Their filterbanks and windows are non-persistent buffers: they follow
``.to(device)`` but stay out of state dicts, so checkpoints hold only learned
weights and a front-end can be rebuilt from its constructor arguments.
"""

from __future__ import annotations

import torch

from codecfake_build.registry import Registry

FRONTENDS: Registry[type[torch.nn.Module]] = Registry("front-end", "benchmark.frontends")


def power_stft(wave: torch.Tensor, n_fft: int, hop_length: int, window: torch.Tensor,
               pad_mode: str) -> torch.Tensor:
    """|STFT|^2 of ``(B, T)`` as ``(B, n_fft // 2 + 1, frames)``, frames = 1 + T // hop."""
    spec = torch.stft(wave, n_fft, hop_length=hop_length, win_length=window.numel(), window=window,
                      center=True, pad_mode=pad_mode, return_complex=True)
    return spec.real.square() + spec.imag.square()


def create_frontend(name: str, **kwargs) -> torch.nn.Module:
    return FRONTENDS.get(name)(**kwargs)
