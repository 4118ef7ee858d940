"""Constant-Q transform as a multi-channel image (magnitude + phase), for WaveSpec.

``CQTImage`` maps 16 kHz waveforms ``(B, T)`` to ``(B, C, n_bins, frames)``:
row 0 is the lowest bin (``fmin``), channel 0 is ``log(|X| + eps)`` and the
remaining channels hold phase (see ``phase`` below).  Everything runs in torch
on the module's device; librosa is only used by the tests as a reference.

**Transform.**  A direct (non-recursive) CQT with fixed complex kernels: bin k
has centre frequency ``f_k = fmin * 2**(k / bins_per_octave)`` and a periodic
Hann window of ``N_k = Q * sr / f_k`` samples, ``Q = 1 / alpha`` with
``alpha = (2**(2/B) - 1) / (2**(2/B) + 1)``: the same filter lengths as
``librosa.cqt`` (gamma = 0, filter_scale = 1).  Each kernel is the windowed
complex exponential divided by its window sum and multiplied by ``sqrt(N_k)``,
which reproduces librosa's ``norm=1, scale=True`` amplitudes (a unit cosine at
``f_k`` gives ``|X| ~= sqrt(N_k) / 2``).  librosa computes the low octaves on
resampled signals, so the two agree to a few percent of the peak, not exactly
(see tests/benchmark/test_cqt.py).  Kernels are grouped by octave so each
octave's convolution is only as long as its own longest filter (about 3.5x
less work than padding all 84 filters to the 8,480-sample lowest one).

**Frame grid (alignment with wav2vec2 / XLS-R).**  Frame ``j`` is centred on
sample ``first_centre + j * hop_length``; samples outside the clip count as
zeros.  ``frames_for(T) = (T - 2 * first_centre) // hop_length + 1``.  The
defaults (``hop_length=320``, ``first_centre=200``) put frame ``j`` on the centre
of wav2vec2's frame ``j``, whose convolutional encoder has a 400-sample receptive
field and a 320-sample stride: its frame ``j`` covers samples
``[320 j, 320 j + 400)`` and it yields ``(T - 400) // 320 + 1`` frames (64,600 ->
201), exactly ``frames_for(T)``.  So CQT frame ``j`` and SSL frame ``j`` (every
transformer layer keeps the encoder's frame grid) describe the same 20 ms of
audio; a CNN stage that pools time by ``2**s`` maps its frame ``i`` onto SSL
frames ``[2**s i, 2**s (i + 1))``.  ``first_centre=0`` gives librosa's
centred grid (``1 + T // hop`` frames).

**Phase channels** (``phase``):

* ``None``: magnitude only, C = 1 (WaveSpec's magnitude-only ablation).
* ``"raw"`` (default, WaveSpec's 2-channel image): ``angle(X)`` in ``[-pi, pi]``, C = 2.
  Phase is referenced to each frame's centre sample, so a stationary cosine
  ``cos(2 pi f t + phi)`` reads ``2 pi f c_j / sr + phi`` (wrapped) at its bin.
* ``"sincos"``: ``sin(angle)``, ``cos(angle)``: continuous across the +-pi cut, C = 3.
* ``"ifreq"``: instantaneous frequency, the frame-to-frame phase advance
  ``wrap(angle_j - angle_{j-1})`` in ``[-pi, pi)``, C = 2; frame 0 has no
  predecessor and reads 0.  A stationary tone at ``f`` reads
  ``wrap(2 pi f hop / sr)`` at its bin in every other frame.

Where ``|X|`` is ~0 (silence, zero padding) the phase is arbitrary (``atan2(0, 0) = 0``);
the magnitude channel tells the network where phase means something.
``eps`` (default 1e-6) floors the log magnitude at about -13.8: for speech
normalised to +-1 the CQT magnitudes of the 84 bins lie roughly between 1e-4
and 10, so the floor only touches digital silence.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PHASES = ("raw", "sincos", "ifreq", None)


def cqt_frequencies(n_bins: int, fmin: float, bins_per_octave: int) -> np.ndarray:
    return fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)


def cqt_filter_lengths(freqs: np.ndarray, sample_rate: int, bins_per_octave: int) -> np.ndarray:
    """Window lengths in samples (float) for a constant Q of one bin's bandwidth."""
    ratio = 2.0 ** (2.0 / bins_per_octave)
    alpha = (ratio - 1.0) / (ratio + 1.0)
    return sample_rate / (alpha * freqs)


def _octave_kernels(freqs: np.ndarray, lengths: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(2 * len(freqs), 1, 2 h + 1)`` real conv weights: rows ``[real parts; imag parts]``
    of ``conj(kernel)`` so that conv1d (a correlation) gives ``sum_t x[c + t] w[t] e^{-i w t}``.
    ``t = 0`` sits at index ``h`` for every bin of the group."""
    sizes = np.ceil(lengths).astype(int)
    half = int(sizes.max() // 2)
    weights = np.zeros((2, len(freqs), 2 * half + 1))
    for k, (freq, size, length) in enumerate(zip(freqs, sizes, lengths)):
        t = np.arange(size) - size // 2  # the window's centre at t = 0
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)  # periodic Hann
        gain = math.sqrt(length) / window.sum()
        angle = 2 * np.pi * freq * t / sample_rate
        weights[0, k, t + half] = gain * window * np.cos(angle)
        weights[1, k, t + half] = -gain * window * np.sin(angle)
    return weights.reshape(2 * len(freqs), 1, 2 * half + 1)


class CQTImage(nn.Module):
    """``(B, T)`` waveform -> ``(B, C, n_bins, frames)`` CQT image; see the module docstring."""

    def __init__(self, sample_rate: int = 16000, hop_length: int = 320, n_bins: int = 84,
                 bins_per_octave: int = 12, fmin: float = 32.70, phase: str | None = "raw",
                 eps: float = 1e-6, first_centre: int = 200):
        super().__init__()
        if phase not in PHASES:
            raise ValueError(f"CQTImage: phase={phase!r} is not one of {PHASES}")
        freqs = cqt_frequencies(n_bins, fmin, bins_per_octave)
        lengths = cqt_filter_lengths(freqs, sample_rate, bins_per_octave)
        ratio = 2.0 ** (2.0 / bins_per_octave)
        # highest bin's upper band edge: f (1 + alpha * 1.5 / 2), 1.5 bins = Hann's noise bandwidth
        if freqs[-1] * (1 + 0.75 * (ratio - 1) / (ratio + 1)) > sample_rate / 2:
            raise ValueError(f"CQTImage: the top bin ({freqs[-1]:.0f} Hz) reaches past Nyquist "
                             f"({sample_rate / 2:.0f} Hz); use fewer bins or a lower fmin")
        self.sample_rate, self.hop_length, self.n_bins = sample_rate, hop_length, n_bins
        self.bins_per_octave, self.fmin, self.phase = bins_per_octave, fmin, phase
        self.eps, self.first_centre = eps, first_centre
        self.frequencies = freqs
        self._halves: list[int] = []
        for g, start in enumerate(range(0, n_bins, bins_per_octave)):
            sl = slice(start, start + bins_per_octave)
            weights = _octave_kernels(freqs[sl], lengths[sl], sample_rate)
            self._halves.append(weights.shape[-1] // 2)
            # non-persistent: rebuilt from the constructor, never checkpointed
            self.register_buffer(f"kernels{g}", torch.from_numpy(weights).float(), persistent=False)

    @property
    def channels(self) -> int:
        return {None: 1, "raw": 2, "ifreq": 2, "sincos": 3}[self.phase]

    def frames_for(self, num_samples: int) -> int:
        """Frames for a clip of ``num_samples`` (= wav2vec2's count with the defaults)."""
        frames = (num_samples - 2 * self.first_centre) // self.hop_length + 1
        if frames < 1:
            raise ValueError(f"CQTImage: {num_samples} samples is shorter than one frame "
                             f"({2 * self.first_centre} samples); tile or pad the clip")
        return frames

    def frame_centres(self, num_samples: int) -> np.ndarray:
        """Sample index at the centre of each frame."""
        return self.first_centre + self.hop_length * np.arange(self.frames_for(num_samples))

    def complex_cqt(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> complex ``(B, n_bins, frames)``."""
        if wave.dim() != 2:
            raise ValueError(f"CQTImage: expected a (batch, samples) waveform, got shape {tuple(wave.shape)}")
        num_samples = wave.shape[-1]
        frames = self.frames_for(num_samples)
        # Always at least float32 and outside autocast: 8,480-tap sums lose ~1e-3 in half
        # precision, and complex half tensors lack abs/angle on some devices.
        dtype = torch.float64 if wave.dtype == torch.float64 else torch.float32
        x = wave.to(dtype).unsqueeze(1)
        parts = []
        with torch.autocast(device_type=wave.device.type, enabled=False):
            for g, half in enumerate(self._halves):
                weights = getattr(self, f"kernels{g}").to(dtype)
                # output j of an unpadded conv is centred on sample j * hop + half - left:
                # pad (or, negative, crop) so that this is first_centre + j * hop
                left = half - self.first_centre
                right = (frames - 1) * self.hop_length + weights.shape[-1] - (num_samples + left)
                out = F.conv1d(F.pad(x, (left, right)), weights, stride=self.hop_length)
                real, imag = out.chunk(2, dim=1)
                parts.append(torch.complex(real, imag))
        return torch.cat(parts, dim=1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = self.complex_cqt(wave)
        channels = [torch.log(spec.abs() + self.eps)]
        if self.phase is not None:
            angle = torch.angle(spec)
            if self.phase == "raw":
                channels.append(angle)
            elif self.phase == "sincos":
                channels += [torch.sin(angle), torch.cos(angle)]
            else:
                step = angle - F.pad(angle, (1, 0))[..., :-1]
                step[..., 0] = 0.0
                channels.append(torch.remainder(step + math.pi, 2 * math.pi) - math.pi)
        return torch.stack(channels, dim=1)
