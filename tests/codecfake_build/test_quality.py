"""Quality measures on inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codecfake_build.quality import fake_quality, is_clipped, log_mel, logmel_distance, si_snr_db

SR = 16000


def speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 10)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (0.2 * x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_identical_signal_distance_zero_and_si_snr_large():
    x = speechlike()
    assert logmel_distance(x, x) == 0.0
    assert si_snr_db(x, x.copy()) > 100


def test_si_snr_is_scale_invariant_and_distance_is_not():
    x = speechlike()
    rng = np.random.default_rng(1)
    y = x + 0.05 * rng.standard_normal(len(x)).astype(np.float32)
    base = si_snr_db(x, y)
    for gain in (0.1, 0.5, 3.0):
        assert si_snr_db(x, gain * y) == pytest.approx(base, abs=1e-6)
    # A pure gain of 0.5 shifts every log10 mel value by log10(2) (above the floor).
    assert logmel_distance(x, 0.5 * x) == pytest.approx(math.log10(2), abs=0.02)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0, 30.0])
def test_white_noise_at_known_snr(snr_db):
    x = speechlike(2.0).astype(np.float64)
    x -= x.mean()
    noise = np.random.default_rng(2).standard_normal(len(x))
    noise -= noise.mean()
    noise -= (noise @ x) / (x @ x) * x  # exactly orthogonal, so the projection keeps x whole
    noise *= np.sqrt((x @ x) / (noise @ noise) / 10 ** (snr_db / 10))
    assert si_snr_db(x, x + noise) == pytest.approx(snr_db, abs=1e-6)
    # Ordinary (not orthogonalised) noise lands close to the target too.
    raw = np.random.default_rng(3).standard_normal(len(x))
    raw *= np.sqrt((x @ x) / (raw @ raw) / 10 ** (snr_db / 10))
    assert si_snr_db(x, x + raw) == pytest.approx(snr_db, abs=0.3)


def test_more_noise_means_larger_distance():
    x = speechlike()
    rng = np.random.default_rng(4)
    d = [logmel_distance(x, x + a * rng.standard_normal(len(x)).astype(np.float32)) for a in (0.001, 0.01, 0.1)]
    assert 0 < d[0] < d[1] < d[2]


def test_degenerate_inputs():
    x = speechlike(0.2)
    assert math.isnan(si_snr_db(x, np.zeros_like(x)))
    assert math.isnan(si_snr_db(np.zeros_like(x), x))
    with pytest.raises(ValueError, match="equal lengths"):
        si_snr_db(x, x[:-1])
    with pytest.raises(ValueError, match="equal lengths"):
        logmel_distance(x, x[:-1])
    # Shorter than one STFT window (zero-padded, never an error).
    short = x[:100]
    assert log_mel(short).shape == (1, 80)
    q = fake_quality(short, 0.9 * short)
    assert np.isfinite(q["logmel_distance"]) and q["si_snr_db"] > 100


def test_log_mel_shape_and_long_input_in_blocks():
    x = np.tile(speechlike(1.0), 40)  # 40 s: several STFT blocks
    m = log_mel(x)
    assert m.shape == (1 + len(x) // 256, 80)
    # The block boundary changes nothing: frames compare equal to a one-block computation.
    assert np.allclose(m[2040:2058], log_mel(x[:2060 * 256])[2040:2058])


def test_clipping_flag():
    x = speechlike()
    assert not is_clipped(x)
    peak = x.copy()
    peak[100] = 1.0  # one full-scale sample is a peak, not clipping
    assert not is_clipped(peak)
    hard = np.clip(4 * x, -1.0, 1.0)
    assert is_clipped(hard)
    assert is_clipped(np.array([0.0, 1.2, 0.0], np.float32))  # over full scale (float file)
    assert not is_clipped(np.zeros(0, np.float32))
