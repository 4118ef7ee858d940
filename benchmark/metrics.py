"""Countermeasure metrics with the ASVspoof conventions.

Bona fide is the positive class and a higher score means "more bona fide".

EER follows the ASVspoof 2021 evaluation package (``eval_metrics.py``
``compute_det_curve``/``compute_eer``; the ASVspoof5 ``calculate_modules.py``
is identical):

* all scores are sorted ascending; among equal scores bona fide trials come
  before spoof trials (the official code stable-sorts the concatenation
  ``[bona, spoof]``), so ties are counted *against* the system;
* point ``i`` (``0..N``) of the DET curve rejects the first ``i`` sorted
  trials: ``frr[i]`` = bona fide among them / #bona fide, ``far[i]`` = spoof
  not among them / #spoof; its threshold is the ``i``-th sorted score
  (point 0 uses the lowest score minus 0.001), so the decision is
  "bona fide iff score > threshold" (up to the tie order above);
* EER = mean(frr, far) at the FIRST index minimising ``|frr - far|``.

It is never folded: a detector whose scores are inverted gets EER 100 %.
One consequence of the tie rule worth knowing: a constant-score system also
gets EER 100 %, not 50 %.

min DCF follows ASVspoof5 ``compute_mindcf`` on the same DET points:
``min_i [C_miss (1 - π_spoof) frr_i + C_fa π_spoof far_i]`` divided by
``min(C_miss (1 - π_spoof), C_fa π_spoof)`` (the cost of the better of the
two trivial systems), with π_spoof = 0.05, C_miss = 1, C_fa = 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import roc_auc_score

P_SPOOF = 0.05
C_MISS = 1.0
C_FA = 10.0

#: How raw scores map onto the 0.5 probability threshold used for accuracy.
ScoreType = Literal["logit", "probability", "other"]
_ACCURACY_THRESHOLD: dict[str, float | None] = {
    # sigmoid(s) >= 0.5  <=>  s >= 0 for a bona-fide-minus-spoof logit difference
    "logit": 0.0,
    "probability": 0.5,
    # e.g. GMM log-likelihood ratios: no calibrated 0.5 point to speak of
    "other": None,
}


@dataclass(frozen=True)
class DetCurve:
    frr: NDArray[np.float64]
    far: NDArray[np.float64]
    thresholds: NDArray[np.float64]


def _split_arrays(bona: ArrayLike, spoof: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    b = np.asarray(bona, dtype=np.float64).ravel()
    s = np.asarray(spoof, dtype=np.float64).ravel()
    if b.size == 0 or s.size == 0:
        raise ValueError(f"need at least one bona fide and one spoof score (got {b.size} bona fide, {s.size} spoof)")
    if not (np.isfinite(b).all() and np.isfinite(s).all()):
        raise ValueError("scores contain NaN or inf; a sort-based EER would be meaningless")
    return b, s


def compute_det_curve(bona: ArrayLike, spoof: ArrayLike) -> DetCurve:
    """DET curve with N + 1 points, see the module docstring for the exact rule."""
    b, s = _split_arrays(bona, spoof)
    scores = np.concatenate([b, s])
    is_spoof = np.concatenate([np.zeros(b.size, dtype=np.int8), np.ones(s.size, dtype=np.int8)])
    # lexsort's last key is primary: by score, then bona fide before spoof on ties.
    order = np.lexsort((is_spoof, scores))
    spoof_sorted = is_spoof[order].astype(bool)

    bona_rejected = np.cumsum(~spoof_sorted)
    spoof_rejected = np.cumsum(spoof_sorted)
    frr = np.concatenate([[0.0], bona_rejected / b.size])
    far = np.concatenate([[1.0], (s.size - spoof_rejected) / s.size])
    sorted_scores = scores[order]
    thresholds = np.concatenate([[sorted_scores[0] - 0.001], sorted_scores])
    return DetCurve(frr=frr, far=far, thresholds=thresholds)


def compute_eer(bona: ArrayLike, spoof: ArrayLike) -> tuple[float, float]:
    """Return ``(eer, threshold)`` with EER as a FRACTION in [0, 1]."""
    det = compute_det_curve(bona, spoof)
    i = int(np.argmin(np.abs(det.frr - det.far)))
    return float((det.frr[i] + det.far[i]) / 2.0), float(det.thresholds[i])


def min_dcf(
    bona: ArrayLike,
    spoof: ArrayLike,
    p_spoof: float = P_SPOOF,
    c_miss: float = C_MISS,
    c_fa: float = C_FA,
) -> tuple[float, float]:
    """Return ``(normalised min DCF, threshold)`` (ASVspoof5 definition)."""
    det = compute_det_curve(bona, spoof)
    cost = c_miss * (1.0 - p_spoof) * det.frr + c_fa * p_spoof * det.far
    # argmin takes the first minimum, as the official strict-< loop does.
    i = int(np.argmin(cost))
    c_default = min(c_miss * (1.0 - p_spoof), c_fa * p_spoof)
    return float(cost[i] / c_default), float(det.thresholds[i])


def auc(bona: ArrayLike, spoof: ArrayLike) -> float:
    b, s = _split_arrays(bona, spoof)
    y = np.concatenate([np.ones(b.size), np.zeros(s.size)])
    return float(roc_auc_score(y, np.concatenate([b, s])))


def accuracy_at(bona: ArrayLike, spoof: ArrayLike, threshold: float) -> float:
    """Fraction correct when "score >= threshold" is called bona fide."""
    b, s = _split_arrays(bona, spoof)
    correct = np.count_nonzero(b >= threshold) + np.count_nonzero(s < threshold)
    return float(correct / (b.size + s.size))


def compute_metrics(scores: ArrayLike, labels: ArrayLike, score_type: ScoreType = "logit") -> dict[str, float | int | str | None]:
    """All metrics for one score set.

    ``labels``: 1/True = bona fide, 0/False = spoof.  ``score_type`` says how to
    apply the 0.5 probability threshold for ``accuracy``: ``"logit"`` (bona
    fide minus spoof logit, threshold 0), ``"probability"`` (P(bona fide),
    threshold 0.5) or ``"other"`` (uncalibrated, accuracy is None).
    ``eer`` is in PERCENT; ``threshold`` is the EER threshold in score units.
    """
    if score_type not in _ACCURACY_THRESHOLD:
        raise ValueError(f"score_type must be one of {sorted(_ACCURACY_THRESHOLD)}, got {score_type!r}")
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 1 (bona fide) or 0 (spoof)")
    is_bona = y.astype(bool)
    bona, spoof = s[is_bona], s[~is_bona]

    eer, eer_threshold = compute_eer(bona, spoof)
    dcf, dcf_threshold = min_dcf(bona, spoof)
    acc_threshold = _ACCURACY_THRESHOLD[score_type]
    return {
        "eer": 100.0 * eer,
        "auc": auc(bona, spoof),
        "min_dcf": dcf,
        "threshold": eer_threshold,
        "min_dcf_threshold": dcf_threshold,
        "accuracy": None if acc_threshold is None else accuracy_at(bona, spoof, acc_threshold),
        "accuracy_threshold": acc_threshold,
        "score_type": score_type,
        "n_bonafide": int(bona.size),
        "n_spoof": int(spoof.size),
    }
