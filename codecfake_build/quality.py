"""How far each fake is from its source: per-row quality columns of a built dataset.

Both measures compare a codec copy with the bona fide row of the same
utterance, i.e. the two 16 kHz waveforms exactly as they are stored (same
length: the codec framework trims and pads every output to its source).
They say how *hard* a fake is: a copy close to its source is harder to detect.

``logmel_distance`` (lower = closer; 0 for identical signals)
    STFT with n_fft 1024, hop 256, a periodic Hann window of 1024 samples, zero
    padding of 512 samples at both ends (so every sample is centred in a frame
    and clips shorter than one window still work); magnitude |X| (power 1);
    80 Slaney-normalised mel bands from 0 to 8000 Hz (librosa's default
    filterbank at 16 kHz); ``log10(max(mel, 1e-5))``; the mean absolute
    difference over all bands and frames.  The floor 1e-5 (-100 dB) keeps
    digital silence from dominating.  This is the single-resolution form of the
    mel distance used to train and compare neural codecs (DAC, Codec-SUPERB).

``si_snr_db`` (higher = closer; scale-invariant)
    Scale-invariant signal-to-noise ratio in dB: both signals are made zero
    mean, the estimate is projected on the reference, ``s = <y, x> x / |x|^2``,
    ``e = y - s``, and ``10 log10(|s|^2 / |e|^2)``.  Rescaling the fake does not
    change it; an identical copy gives a very large value (> 100 dB), white
    noise added at SNR d dB gives about d.  NaN when either signal has no
    energy (undefined), +inf when the copy is an exact multiple of the source.

Both are NaN (null in the parquet) on bona fide rows.  Computed in float64.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 1024
HOP = 256
N_MELS = 80
F_MAX = 8000.0
LOG_FLOOR = 1e-5
_BLOCK_FRAMES = 2048  # frames per STFT block: bounds memory on clips of many minutes

#: A source is flagged ``clipped`` when its peak exceeds full scale, or when at
#: least CLIP_RUN consecutive samples sit at |x| >= CLIP_LEVEL: a natural peak
#: touches full scale for one sample; a flat top of several is hard clipping.
CLIP_LEVEL = 0.999
CLIP_RUN = 3


@lru_cache(maxsize=4)
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmax: float = F_MAX) -> np.ndarray:
    import librosa.filters  # imported here: librosa is slow to import and only this needs it

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=fmax,
                               htk=False, norm="slaney").astype(np.float64)


def log_mel(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """(frames, 80) log10 mel magnitudes with the settings in the module doc."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    padded = np.pad(x, (N_FFT // 2, N_FFT // 2))
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    window = np.hanning(N_FFT + 1)[:-1]  # periodic Hann
    fb = mel_filterbank(sr)
    out = np.empty((n_frames, fb.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    for start in range(0, n_frames, _BLOCK_FRAMES):
        block = frames[start:start + _BLOCK_FRAMES] * window
        mag = np.abs(np.fft.rfft(block, axis=1))
        out[start:start + len(block)] = np.log10(np.maximum(mag @ fb.T, LOG_FLOOR))
    return out


def logmel_distance(reference: np.ndarray, estimate: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Mean |log10 mel(reference) - log10 mel(estimate)|; the signals must have equal length."""
    if len(reference) != len(estimate):
        raise ValueError(f"logmel_distance needs equal lengths, got {len(reference)} and {len(estimate)}")
    if len(reference) == 0:
        return float("nan")
    return float(np.mean(np.abs(log_mel(reference, sr) - log_mel(estimate, sr))))


def si_snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SNR of ``estimate`` against ``reference`` in dB (see module doc)."""
    if len(reference) != len(estimate):
        raise ValueError(f"si_snr_db needs equal lengths, got {len(reference)} and {len(estimate)}")
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(estimate, dtype=np.float64)
    x = x - x.mean() if x.size else x
    y = y - y.mean() if y.size else y
    ref_energy = float(np.dot(x, x))
    if ref_energy == 0.0 or float(np.dot(y, y)) == 0.0:
        return float("nan")
    target = (np.dot(y, x) / ref_energy) * x
    noise = y - target
    noise_energy = float(np.dot(noise, noise))
    target_energy = float(np.dot(target, target))
    if noise_energy == 0.0:
        return float("inf")
    if target_energy == 0.0:  # the copy is orthogonal to its source
        return float("-inf")
    return float(10.0 * np.log10(target_energy / noise_energy))


def fake_quality(reference: np.ndarray, estimate: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """The quality columns of one codec row."""
    return {"logmel_distance": logmel_distance(reference, estimate, sr), "si_snr_db": si_snr_db(reference, estimate)}


def is_clipped(x: np.ndarray, level: float = CLIP_LEVEL, run: int = CLIP_RUN) -> bool:
    """True for audio over full scale or with a flat top of ``run`` samples at ``level``."""
    a = np.abs(np.asarray(x, dtype=np.float32))
    if a.size == 0:
        return False
    if float(a.max()) > 1.0:
        return True
    hot = a >= level
    if int(hot.sum()) < run:
        return False
    # Longest run of consecutive True values, without a Python loop.
    edges = np.diff(np.concatenate(([0], hot.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return bool(np.max(ends - starts) >= run)
