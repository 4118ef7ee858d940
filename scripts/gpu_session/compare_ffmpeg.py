"""Do two ffmpeg binaries re-synthesise the same samples through the project's ffmpeg codecs?
Usage: compare_ffmpeg.py CANDIDATE REFERENCE   (exit 1 if any codec differs)."""

from __future__ import annotations

import os
import sys

import numpy as np

from codecfake_build.codecs import create_codec

CODECS = ("mp3@32kbps", "aac@32kbps", "opus@16kbps")


def _speech_like(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 40 * np.sin(2 * np.pi * 3 * t)
    x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 6))
    return (0.2 * x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def main(candidate: str, reference: str) -> int:
    clips = [_speech_like(1.3, 1), _speech_like(0.7, 2)]
    out = {}
    for binary in (candidate, reference):
        os.environ["CODECFAKE_FFMPEG"] = binary
        out[binary] = {c: create_codec(c).resynthesize(clips, 16000) for c in CODECS}
    worst = 0.0
    for c in CODECS:
        diff = max(float(np.abs(a - b).max()) for a, b in zip(out[candidate][c], out[reference][c]))
        worst = max(worst, diff)
        print(f"{c:<12} max|diff| {diff:.3g}")
    return 0 if worst == 0.0 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
