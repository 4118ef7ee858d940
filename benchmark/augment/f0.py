"""FD-ADD's F0 pseudo-target (ablation "F0 instead of speed/compression", Table XII).

The official code (RedamancyAY/RobustSpeechDetection 5f0d326, ``model/loss.py``
``get_f0_loss``, ``model/model.py`` ``cls_f0``) regresses the content feature onto
a pitch track with MSE: the YIN estimate of the 48,000-sample model input with
pitch range 20-9000 Hz, a 0.01513 s hop (242 samples, giving 192 frames) and
threshold 0.1, divided by 9000; 0 marks aperiodic frames.  It uses the
``torch-yin`` package; this is an own numpy implementation of the same YIN
variant (de Cheveigne & Kawahara 2002, steps 2-4):

* frames of ``2 * tau_max`` samples (``tau_max = int(sr / pitch_min)``), hop
  ``int(stride * sr)``; a clip shorter than one frame is zero-padded to one;
* difference function d(tau) over the whole frame (``sum_j (x_j - x_{j+tau})^2``
  for j + tau inside the frame), for tau < tau_max;
* cumulative-mean-normalised d'(tau) = d(tau) * tau / max(sum_{k<=tau} d(k), 1e-5),
  for tau from ``int(sr / pitch_max) + 1``;
* the period is the first local minimum (d' rising after it) at or after the first
  tau with d' below the threshold; no such tau (or only the very first one, a
  quirk kept from torch-yin) means aperiodic, pitch 0.
"""

from __future__ import annotations

import numpy as np

PITCH_MIN = 20.0
PITCH_MAX = 9000.0
FRAME_STRIDE_S = 0.01513
THRESHOLD = 0.1
#: The official target divides Hz by this.
F0_SCALE = 9000.0


def _geometry(sample_rate: int, pitch_min: float, pitch_max: float, frame_stride: float) -> tuple[int, int, int]:
    tau_min = int(sample_rate / pitch_max)
    tau_max = int(sample_rate / pitch_min)
    return tau_min, tau_max, int(frame_stride * sample_rate)


def f0_frames(num_samples: int, sample_rate: int = 16000, pitch_min: float = PITCH_MIN,
              frame_stride: float = FRAME_STRIDE_S) -> int:
    """Pitch values per clip of ``num_samples`` (192 for FD-ADD's 48,000)."""
    _, tau_max, hop = _geometry(sample_rate, pitch_min, PITCH_MAX, frame_stride)
    frame = 2 * tau_max
    return 1 + (max(num_samples, frame) - frame) // hop


def yin_pitch(x: np.ndarray, sample_rate: int = 16000, pitch_min: float = PITCH_MIN,
              pitch_max: float = PITCH_MAX, frame_stride: float = FRAME_STRIDE_S,
              threshold: float = THRESHOLD) -> np.ndarray:
    """Pitch in Hz per frame of 1-D ``x`` (0 = aperiodic), float64."""
    tau_min, tau_max, hop = _geometry(sample_rate, pitch_min, pitch_max, frame_stride)
    frame = 2 * tau_max
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]  # (F, frame)

    # Linear autocorrelation r(tau) = sum_j x_j x_{j+tau}: an FFT of >= 2*frame points has no wrap-around.
    n_fft = 1 << int(np.ceil(np.log2(2 * frame)))
    spec = np.fft.rfft(frames, n_fft, axis=-1)
    r = np.fft.irfft(spec * np.conj(spec), n_fft, axis=-1)[:, :tau_max]
    # sum_{j < frame - tau} x_j^2 + sum_{j >= tau} x_j^2 from one running sum of squares.
    energy = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames * frames, axis=-1)], axis=-1)
    taus = np.arange(tau_max)
    d = energy[:, frame - taus] + (energy[:, -1:] - energy[:, taus]) - 2.0 * r

    # Cumulative-mean normalisation for tau = 1 .. tau_max-1, then drop periods below tau_min+1.
    dn = d[:, 1:] * np.arange(1, tau_max) / np.maximum(np.cumsum(d[:, 1:], axis=-1), 1e-5)
    dn = dn[:, tau_min:]  # column i <-> period i + tau_min + 1

    below = dn < threshold
    first = np.where(below.any(axis=-1), below.argmax(axis=-1), 0)
    # A local minimum: d' does not fall at the next period (the last column counts as one).
    rising = np.concatenate([np.diff(dn, axis=-1) >= 0.0, np.ones((len(dn), 1), bool)], axis=-1)
    cols = np.arange(dn.shape[1])
    ok = rising & (cols[None, :] >= np.where(first > 0, first, dn.shape[1])[:, None])
    col = np.where(ok.any(axis=-1), ok.argmax(axis=-1), 0)
    return np.where(col > 0, sample_rate / (col + tau_min + 1.0), 0.0)


def f0_target(x: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """FD-ADD's F0 regression target for one model-ready clip: float32 (f0_frames,), pitch / 9000."""
    return (yin_pitch(x, sample_rate) / F0_SCALE).astype(np.float32)
