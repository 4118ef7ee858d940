"""``python -m benchmark score``: score audio files with a detector.

Each file is decoded once; a file that cannot be used (missing, empty, corrupt,
NaN) is skipped and reported, never fatal.  Names in the output are the paths
as found: a file given directly keeps the path as typed, files under a folder
are the folder path joined with their relative path.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from benchmark.data import AUDIO_EXTENSIONS, DataError, eval_cut, scores_from_logits
from codecfake_build.audio import ALLOW_SILENCE, AudioError, load_audio

log = logging.getLogger("benchmark")


def collect_inputs(inputs: list[str]) -> list[Path]:
    paths: list[Path] = []
    for text in inputs:
        p = Path(text)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                raise DataError(f"{p}: no audio files found. Fix: pass a folder that contains audio files")
            paths += found
        elif p.exists() or p.suffix.lower() in AUDIO_EXTENSIONS:
            paths.append(p)  # a missing file is reported as skipped, like a corrupt one
        else:
            raise DataError(f"{p}: no such file or folder. Fix: check the path")
    if not paths:
        raise DataError("no inputs given. Fix: pass audio files or folders to score")
    return paths


def score_paths(model: nn.Module, paths: list[Path], device: str = "cpu", batch_size: int = 16,
                progress: bool = True) -> tuple[list[str], np.ndarray, list[dict[str, str]]]:
    n = getattr(model, "num_samples", None)
    crop = getattr(model, "crop", "tile")
    model.to(device).eval()
    names: list[str] = []
    scores: list[float] = []
    skipped: list[dict[str, str]] = []
    batch: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        if not batch:
            return
        longest = max(len(w) for _, w in batch)
        wave = torch.zeros(len(batch), longest)
        for row, (_, w) in enumerate(batch):
            wave[row, : len(w)] = torch.from_numpy(w)
        with torch.inference_mode():
            s = scores_from_logits(model(wave.to(device)).float()).cpu().numpy()
        names.extend(name for name, _ in batch)
        scores.extend(float(v) for v in s)
        batch.clear()

    for path in tqdm(paths, desc="scoring", unit="file", disable=not progress, dynamic_ncols=True):
        try:
            wave, _ = load_audio(path, target_sr=16000, check=ALLOW_SILENCE)
        except AudioError as err:
            skipped.append({"path": str(path), "reason": err.problem})
            log.warning("skipping %s", err)
            continue
        batch.append((str(path), eval_cut(wave, n, crop) if n else wave))
        if len(batch) == batch_size:
            flush()
    flush()
    return names, np.asarray(scores, dtype=np.float64), skipped
