"""Deterministic speech-like test signals for codec tests that run without ../shared."""

import numpy as np


def harmonic_glide(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Five harmonics of a pitch gliding around 120 Hz, plus a little noise, at ``rate``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 3 * t)
    x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / rate) / k for k in range(1, 6))
    return (0.2 * x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
