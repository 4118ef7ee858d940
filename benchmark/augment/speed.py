"""Speed change by band-limited (Kaiser-windowed sinc) resampling, without torchaudio.

FD-ADD changes the speed of a clip by reading it as if it had been recorded at
``round(speed * 16000)`` Hz and resampling that to 16 kHz, so duration shrinks by
``speed`` and every frequency (pitch included) is multiplied by ``speed``.  The
official code does this with ``torchaudio.functional.resample(...,
resampling_method="sinc_interp_kaiser")`` and torchaudio's defaults
(lowpass_filter_width 6, rolloff 0.99, beta 14.769656459379492).  torchaudio
cannot be imported in this project, so this module computes the same filter:

* the two rates are reduced by their gcd to ``orig`` input and ``new`` output
  samples per period (11/10 for speed 1.1), so output sample ``k*new + p`` only
  depends on the input around ``k*orig`` through one of ``new`` fixed phases;
* each phase is an ideal low-pass at ``cutoff = min(orig, new) * rolloff`` (in
  cycles per period), evaluated at offset ``d = m/orig - p/new`` periods from the
  output instant, truncated to ``lowpass_filter_width`` zero crossings either side
  and tapered by a Kaiser window of shape ``beta``;
* the input is zero-padded by the filter half-width on the left (and half-width
  plus one period on the right), and the output is ``ceil(len * new / orig)``
  samples long, as torchaudio returns.

Agreement with torchaudio is checked against stored torchaudio outputs in
tests/fixtures/fd_add_speed_reference/ (when present) and by properties (a sine
moves to ``f * speed``; aliases of the upper band are suppressed).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

#: torchaudio's default Kaiser shape for ``sinc_interp_kaiser``.
KAISER_BETA = 14.769656459379492
LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99


def speed_rates(speed: float, sample_rate: int = 16000) -> tuple[int, int]:
    """(orig, new): the gcd-reduced source and target rates that change speed by ``speed``."""
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    source = int(round(speed * sample_rate))
    g = math.gcd(source, sample_rate)
    return source // g, sample_rate // g


@lru_cache(maxsize=64)
def _phase_filters(orig: int, new: int, width_zeros: int, rolloff: float, beta: float) -> tuple[np.ndarray, int]:
    """Filter bank (new, 2*half + orig) and its half-width ``half`` in input samples."""
    cutoff = min(orig, new) * rolloff
    # Enough input samples either side to reach width_zeros zero crossings of the sinc.
    half = math.ceil(width_zeros * orig / cutoff)
    taps = np.arange(-half, half + orig, dtype=np.float64) / orig  # input offsets, in periods
    phases = np.arange(new, dtype=np.float64)[:, None] / new  # output instants, in periods
    # Argument of the sinc in zero-crossing units; outside the window the taps are
    # held at the window edge (where sin(pi * integer) is ~0), as torchaudio does.
    z = np.clip((taps[None, :] - phases) * cutoff, -width_zeros, width_zeros)
    window = np.i0(beta * np.sqrt(np.maximum(1.0 - (z / width_zeros) ** 2, 0.0))) / np.i0(beta)
    # np.sinc(z) = sin(pi z) / (pi z), 1 at 0; cutoff/orig keeps the DC gain at one.
    bank = np.sinc(z) * window * (cutoff / orig)
    return bank, half


def sinc_resample(
    x: np.ndarray,
    orig: int,
    new: int,
    lowpass_filter_width: int = LOWPASS_FILTER_WIDTH,
    rolloff: float = ROLLOFF,
    beta: float = KAISER_BETA,
) -> np.ndarray:
    """Resample 1-D ``x`` from ``orig`` to ``new`` (integer rates, any common factor):
    float32, ``ceil(len(x) * new / orig)`` samples."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if orig <= 0 or new <= 0:
        raise ValueError(f"sample rates must be positive, got {orig} -> {new}")
    if orig == new:
        return x.copy()
    g = math.gcd(int(orig), int(new))
    orig, new = int(orig) // g, int(new) // g
    bank, half = _phase_filters(orig, new, int(lowpass_filter_width), float(rolloff), float(beta))
    padded = np.pad(x.astype(np.float64), (half, half + orig))
    # One window per input period k, starting at k*orig in the padded signal.
    windows = np.lib.stride_tricks.sliding_window_view(padded, bank.shape[1])[::orig]
    out = (windows @ bank.T).reshape(-1)  # row k, phase p -> output k*new + p
    n_out = math.ceil(new * len(x) / orig)
    return out[:n_out].astype(np.float32)


def change_speed(x: np.ndarray, speed: float, sample_rate: int = 16000) -> np.ndarray:
    """Play ``x`` ``speed`` times faster (pitch moves with it): about ``len(x) / speed``
    samples out; speed 1.0 returns a copy."""
    orig, new = speed_rates(speed, sample_rate)
    return sinc_resample(x, orig, new)
