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

The 95 % confidence interval of the EER is a percentile bootstrap that
resamples bona fide and spoof trials separately (scipy.stats.bootstrap with
independent samples), so every resample keeps the class balance of the test
set; a seed makes it reproducible.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import roc_auc_score

P_SPOOF = 0.05
C_MISS = 1.0
C_FA = 10.0

#: How raw scores map onto the 0.5 probability threshold used for accuracy.
log = logging.getLogger("benchmark")

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


def confusion_at(bona: ArrayLike, spoof: ArrayLike, threshold: float) -> dict[str, int]:
    """Counts when "score >= threshold" is called bona fide (the positive class):
    tp = bona fide accepted, fn = bona fide rejected, fp = spoof accepted, tn = spoof rejected."""
    b, s = _split_arrays(bona, spoof)
    tp, fp = int(np.count_nonzero(b >= threshold)), int(np.count_nonzero(s >= threshold))
    return {"tp": tp, "fn": int(b.size) - tp, "fp": fp, "tn": int(s.size) - fp}


def bootstrap_eer_ci(bona: ArrayLike, spoof: ArrayLike, n_resamples: int = 1000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the EER (fractions), resampling each class on its own."""
    from scipy.stats import bootstrap

    b, s = _split_arrays(bona, spoof)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    res = bootstrap((b, s), lambda x, y: compute_eer(x, y)[0], n_resamples=n_resamples, confidence_level=level,
                    method="percentile", vectorized=False, paired=False, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_std(values: ArrayLike) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for one value) over seeds."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("no values to aggregate")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def compute_metrics(scores: ArrayLike, labels: ArrayLike, score_type: ScoreType = "logit",
                    n_bootstrap: int = 0, seed: int = 0) -> dict[str, Any]:
    """All metrics for one score set.

    ``labels``: 1/True = bona fide, 0/False = spoof.  ``score_type`` says how to
    apply the 0.5 probability threshold for ``accuracy``: ``"logit"`` (bona
    fide minus spoof logit, threshold 0), ``"probability"`` (P(bona fide),
    threshold 0.5) or ``"other"`` (uncalibrated, accuracy is None).
    ``eer`` is in PERCENT; ``threshold`` is the EER threshold in score units.
    ``confusion`` counts decisions at the 0.5 probability point (absent for "other").
    With ``n_bootstrap`` > 0, ``eer_ci95`` is the bootstrap 95 % CI of the EER in percent from
    that many resamples drawn with ``seed`` (both recorded as ``n_bootstrap`` and
    ``bootstrap_seed``); with 0 none of these three keys is present.  ``warnings`` (present only
    when there is one) says when the numbers cannot be read as usual, e.g. constant scores.
    """
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be a whole number >= 0 (0 = no confidence interval), got {n_bootstrap!r}")
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
    out: dict[str, Any] = {
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
        "confusion": None if acc_threshold is None else confusion_at(bona, spoof, acc_threshold),
    }
    if s.size and np.all(s == s[0]):
        # Not an error (a collapsed model is a result), but the EER of a constant score only reflects
        # the official package's tie order, so the number must not be read as a ranking.
        note = (f"every score equals {s[0]:g}: the scores rank nothing (AUC 0.5); the EER "
                f"({100.0 * eer:g} %) only reflects how the ASVspoof package orders ties")
        out["warnings"] = [note]
        log.warning("%s", note)
    if n_bootstrap > 0:
        lo, hi = bootstrap_eer_ci(bona, spoof, n_resamples=n_bootstrap, seed=seed)
        out["eer_ci95"] = [100.0 * lo, 100.0 * hi]
        out["n_bootstrap"] = int(n_bootstrap)
        out["bootstrap_seed"] = int(seed)
    return out
