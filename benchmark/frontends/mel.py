"""Log-mel spectrogram with the settings of Codecfake's Mel-LCNN.

Codecfake (github.com/xieyuankun/Codecfake, preprocess.py) computes
``torchaudio.transforms.MelSpectrogram(n_mels=80, n_fft=512, hop_length=128,
sample_rate=16000)``; with torchaudio's defaults that is: periodic Hann window of
512 samples, centred frames with reflect padding, power (|X|^2) spectrum, HTK
mel scale over 0-8 kHz, unnormalised triangular filters.  We reproduce exactly
that (torchaudio itself is not usable here, so the filters come from librosa
with ``htk=True, norm=None``, which are the same filters).

Codecfake feeds that power mel to the LCNN *without* a logarithm.  We take
``ln(mel + floor)`` by default because the LCNN has no input normalisation and
raw power spans ~10 orders of magnitude; ``log=False`` gives Codecfake's exact
input (needed to run their released checkpoints).
"""

from __future__ import annotations

import librosa
import torch
from torch import nn

from benchmark.frontends.base import FRONTENDS, power_stft


@FRONTENDS.register("logmel")
class LogMel(nn.Module):
    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, hop_length: int = 128,
                 n_mels: int = 80, f_min: float = 0.0, f_max: float | None = None,
                 log: bool = True, floor: float = 1e-6):
        super().__init__()
        self.n_fft, self.hop_length, self.n_mels = n_fft, hop_length, n_mels
        self.log, self.floor = log, floor
        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min,
                                 fmax=f_max, htk=True, norm=None)
        self.register_buffer("fbank", torch.from_numpy(fb).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def num_features(self) -> int:
        return self.n_mels

    def num_frames(self, num_samples: int) -> int:
        return 1 + num_samples // self.hop_length

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> ``(B, n_mels, frames)``."""
        mel = self.fbank @ power_stft(wave, self.n_fft, self.hop_length, self.window, "reflect")
        return torch.log(mel + self.floor) if self.log else mel
