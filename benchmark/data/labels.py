"""The one place where dataset labels meet model outputs.

Datasets (``codecfake_build.schema``) store ``bonafide=0, spoof=1``, but every
detector follows the AASIST convention of logit index 1 = bona fide.  Mixing
the two silently inverts EERs, so all conversions go through this module.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from codecfake_build.schema import BONAFIDE, LABELS, SPOOF

#: Model logit / cross-entropy target indices.
TARGET_SPOOF, TARGET_BONAFIDE = 0, 1
#: Target of an unlabelled item (FileList); never fed to the loss.
NO_TARGET = -1

_KEY_ALIASES = {
    "bonafide": BONAFIDE, "bona-fide": BONAFIDE, "bona_fide": BONAFIDE, "genuine": BONAFIDE, "real": BONAFIDE,
    "spoof": SPOOF, "fake": SPOOF, "deepfake": SPOOF,
}


def label_to_target(label: int | None) -> int:
    """Dataset label (bonafide=0, spoof=1) -> model target index (bona fide=1)."""
    if label is None:
        return NO_TARGET
    if label == BONAFIDE:
        return TARGET_BONAFIDE
    if label == SPOOF:
        return TARGET_SPOOF
    raise ValueError(f"unknown dataset label {label!r}; expected {BONAFIDE} (bonafide) or {SPOOF} (spoof)")


def labels_to_targets(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if not np.isin(labels, (BONAFIDE, SPOOF)).all():
        raise ValueError(f"dataset labels must be {BONAFIDE} (bonafide) or {SPOOF} (spoof)")
    return np.where(labels == BONAFIDE, TARGET_BONAFIDE, TARGET_SPOOF).astype(np.int64)


def key_to_label(key: str) -> int | None:
    """Protocol key word ('bonafide', 'spoof', 'bona-fide', ...) -> dataset label, None if not a key."""
    return _KEY_ALIASES.get(key.strip().lower())


def scores_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Detection score: bona-fide logit minus spoof logit (higher = more bona fide)."""
    return logits[:, TARGET_BONAFIDE] - logits[:, TARGET_SPOOF]


def split_scores(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bona-fide scores, spoof scores), the argument order of ``compute_eer``."""
    scores, targets = np.asarray(scores), np.asarray(targets)
    return scores[targets == TARGET_BONAFIDE], scores[targets == TARGET_SPOOF]


def class_counts(labels: np.ndarray | Sequence[int]) -> dict[str, int]:
    """Rows per class, keyed by class name ('bonafide', 'spoof')."""
    labels = np.asarray(labels)
    return {name: int(np.sum(labels == i)) for i, name in enumerate(LABELS)}


def class_weight_tensor(counts: dict[str, int], weights: Sequence[float] | str | None) -> torch.Tensor | None:
    """Cross-entropy weights in model-target order.

    ``weights`` is ``[bonafide_w, spoof_w]`` (human order, as written in configs),
    ``"balanced"`` (n_total / (2 * n_class), scikit-learn's rule) or None.
    """
    if weights is None:
        return None
    if isinstance(weights, str):
        if weights != "balanced":
            raise ValueError(f"class_weights '{weights}' is not supported; use 'balanced' or [bonafide_w, spoof_w]")
        missing = [k for k in LABELS if counts.get(k, 0) == 0]
        if missing:
            raise ValueError(f"cannot balance class weights: no {' or '.join(missing)} rows in the training data")
        total = sum(counts[k] for k in LABELS)
        bona_w, spoof_w = (total / (2 * counts[k]) for k in LABELS)
    else:
        if len(weights) != 2:
            raise ValueError(f"class_weights must be [bonafide_w, spoof_w], got {list(weights)}")
        bona_w, spoof_w = (float(w) for w in weights)
    out = torch.empty(2, dtype=torch.float32)
    out[TARGET_BONAFIDE], out[TARGET_SPOOF] = bona_w, spoof_w
    return out


def class_weights_by_name(weights: torch.Tensor) -> dict[str, float]:
    """Inverse of ``class_weight_tensor`` for reports: {'bonafide': w, 'spoof': w}
    (rounded to float32 precision so 0.9 reads 0.9, not 0.8999999761581421)."""
    return {name: float(f"{float(weights[i]):.7g}") for name, i in (("bonafide", TARGET_BONAFIDE), ("spoof", TARGET_SPOOF))}


def system_class(target: int, system: str, systems: Sequence[str], owner: str) -> int:
    """An item's class for a head over the training systems (``Detector.uses_systems``:
    FD-ADD's synthesizer head, RawNet2-Voc's vocoder head): 0 for bona fide, 1 + the index
    of its system for spoof.  A spoof system the model was not built with is one line."""
    if int(target) == TARGET_BONAFIDE:
        return 0
    try:
        return 1 + list(systems).index(system)
    except ValueError:
        raise ValueError(f"{owner}: spoof system '{system}' is not among the model's systems {list(systems)}. "
                         "Fix: drop model.kwargs.systems so training fills it, or build the model with systems= "
                         "covering the training set") from None
