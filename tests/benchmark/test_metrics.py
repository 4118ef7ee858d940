import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.metrics import (
    accuracy_at,
    bootstrap_eer_ci,
    confusion_at,
    mean_std,
    auc,
    compute_det_curve,
    compute_eer,
    compute_metrics,
    min_dcf,
)

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "eer_reference" / "asvspoof_reference.json"


def test_perfect_separation_gives_zero_eer_and_dcf():
    eer, thr = compute_eer([2.0, 3.0], [0.0, 1.0])
    assert eer == 0.0
    assert thr == 1.0  # highest spoof score: bona fide iff score > threshold
    assert min_dcf([2.0, 3.0], [0.0, 1.0])[0] == 0.0


def test_inverted_scores_give_100_percent_not_folded():
    bona, spoof = [0.0, 1.0], [2.0, 3.0]
    assert compute_eer(bona, spoof)[0] == 1.0
    m = compute_metrics(bona + spoof, [1, 1, 0, 0])
    assert m["eer"] == 100.0
    assert m["auc"] == 0.0
    # flipping the sign recovers a perfect system, so nothing was folded
    assert compute_metrics([-x for x in bona + spoof], [1, 1, 0, 0])["eer"] == 0.0


def test_hand_computed_eer_and_min_dcf():
    # sorted: 1s 2s 3b 4s 5b 6s 7b 9b
    # i:    0    1    2    3    4    5    6    7    8
    # frr:  0    0    0   1/4  1/4  2/4  2/4  3/4   1
    # far:  1   3/4  2/4  2/4  1/4  1/4   0    0    0
    # |frr-far| first hits 0 at i=4 -> EER 0.25, threshold = 4th sorted score = 4
    # cost = 0.95 frr + 0.5 far: .5 .375 .25 .4875 .3625 .6 .475 .7125 .95
    # min 0.25 at i=2 (threshold 2) -> normalised by min(0.95, 0.5): 0.5
    bona, spoof = [3, 5, 7, 9], [1, 2, 4, 6]
    assert compute_eer(bona, spoof) == (0.25, 4.0)
    dcf, dcf_thr = min_dcf(bona, spoof)
    assert dcf == pytest.approx(0.5, abs=1e-15)
    assert dcf_thr == 2.0


def test_eer_is_mean_at_first_argmin_when_curves_do_not_cross_exactly():
    # sorted 1s 2b 3s 4b 5s: |frr-far| = 1, 2/3, 1/6, 1/6, 2/3, 1 -> first min at i=2
    # frr=1/2, far=2/3 -> EER = 7/12
    eer, thr = compute_eer([2, 4], [1, 3, 5])
    assert eer == pytest.approx(7 / 12, abs=1e-15)
    assert thr == 2.0


def test_ties_count_against_the_system():
    # the official stable sort puts tied bona fide before tied spoof:
    # sorted 1s 2b 2s 3b -> i=2: frr 1/2, far 1/2
    assert compute_eer([2.0, 3.0], [1.0, 2.0]) == (0.5, 2.0)
    # hence a constant-score system scores 100 %, as in the official code
    assert compute_eer([0.0] * 3, [0.0] * 4)[0] == 1.0


def test_det_curve_shape_and_first_point():
    det = compute_det_curve([1.0, 2.0], [0.5])
    assert det.frr.shape == det.far.shape == det.thresholds.shape == (4,)
    assert (det.frr[0], det.far[0]) == (0.0, 1.0)
    assert det.thresholds[0] == pytest.approx(0.5 - 0.001)
    assert (det.frr[-1], det.far[-1]) == (1.0, 0.0)


@pytest.mark.parametrize("bad", [[np.nan, 1.0], [np.inf, 1.0]])
def test_non_finite_scores_rejected(bad):
    with pytest.raises(ValueError, match="NaN or inf"):
        compute_eer(bad, [0.0])


def test_empty_class_rejected():
    with pytest.raises(ValueError, match="at least one bona fide and one spoof"):
        compute_eer([], [0.0])


def test_auc_and_accuracy():
    bona, spoof = [0.9, 0.2, 3.0], [-1.0, 0.5]
    # pairs bona > spoof: 0.9>both, 0.2>-1 only, 3>both -> 5/6
    assert auc(bona, spoof) == pytest.approx(5 / 6)
    # score >= 0 is bona fide: all three bona right, spoof 0.5 wrong -> 4/5
    assert accuracy_at(bona, spoof, 0.0) == pytest.approx(0.8)
    # the threshold itself counts as bona fide
    assert accuracy_at([0.5], [0.4], 0.5) == 1.0


def test_compute_metrics_keys_units_and_score_types():
    scores = [3, 5, 7, 9, 1, 2, 4, 6]
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    m = compute_metrics(scores, labels)
    assert m["eer"] == 25.0  # percent
    assert m["threshold"] == 4.0
    assert m["min_dcf"] == pytest.approx(0.5)
    assert (m["n_bonafide"], m["n_spoof"]) == (4, 4)
    assert m["accuracy"] == 0.5 and m["accuracy_threshold"] == 0.0  # all "bona fide"
    # probabilities in [0, 1]: threshold 0.5
    p = compute_metrics([0.9, 0.6, 0.4, 0.1], [1, 0, 1, 0], score_type="probability")
    assert p["accuracy"] == 0.5 and p["accuracy_threshold"] == 0.5
    assert compute_metrics(scores, labels, score_type="other")["accuracy"] is None
    with pytest.raises(ValueError, match="score_type"):
        compute_metrics(scores, labels, score_type="llr")


def test_compute_metrics_rejects_bad_labels():
    with pytest.raises(ValueError, match="1 \\(bona fide\\) or 0"):
        compute_metrics([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="2 scores but 3 labels"):
        compute_metrics([0.1, 0.2], [1, 0, 1])


def test_compute_metrics_accepts_boolean_labels():
    assert compute_metrics([1.0, 0.0], np.array([True, False]))["eer"] == 0.0


def _reference_cases():
    return json.loads(REFERENCE.read_text())


@pytest.mark.parametrize("name", sorted(_reference_cases()))
def test_parity_with_official_asvspoof_code(name):
    case = _reference_cases()[name]
    eer, thr = compute_eer(case["bonafide"], case["spoof"])
    assert eer == case["eer"]
    assert thr == case["eer_threshold"]
    dcf, dcf_thr = min_dcf(case["bonafide"], case["spoof"])
    assert dcf == pytest.approx(case["min_dcf"], rel=1e-12, abs=1e-12)
    assert dcf_thr == case["min_dcf_threshold"]


def test_input_order_does_not_matter():
    rng = np.random.default_rng(0)
    bona = np.round(rng.normal(1, 1, 200), 1)
    spoof = np.round(rng.normal(0, 1, 300), 1)
    base = compute_eer(bona, spoof), min_dcf(bona, spoof)
    shuffled = compute_eer(rng.permutation(bona), rng.permutation(spoof)), min_dcf(rng.permutation(bona), rng.permutation(spoof))
    assert base == shuffled


def test_confusion_at_half_probability_counts_bona_fide_as_positive():
    # logit differences: bona fide accepted iff score >= 0
    m = compute_metrics([2.0, 0.5, -1.0, -3.0, 0.0, 1.0], [1, 1, 1, 0, 0, 0])
    assert m["confusion"] == {"tp": 2, "fn": 1, "fp": 2, "tn": 1}
    assert confusion_at([0.9, 0.2], [0.6], 0.5) == {"tp": 1, "fn": 1, "fp": 1, "tn": 0}
    assert compute_metrics([1.0, 0.0], [1, 0], score_type="other")["confusion"] is None


def test_bootstrap_ci_brackets_the_eer_narrows_with_data_and_is_reproducible():
    rng = np.random.default_rng(1)
    small = rng.normal(1, 1, 100), rng.normal(-1, 1, 100)
    large = rng.normal(1, 1, 4000), rng.normal(-1, 1, 4000)
    lo_s, hi_s = bootstrap_eer_ci(*small, n_resamples=300, seed=3)
    lo_l, hi_l = bootstrap_eer_ci(*large, n_resamples=300, seed=3)
    assert lo_s <= compute_eer(*small)[0] <= hi_s
    assert lo_l <= compute_eer(*large)[0] <= hi_l
    # the true EER of N(1,1) vs N(-1,1) is Phi(-1) = 15.87 %
    assert lo_l < 0.1587 < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 3
    assert bootstrap_eer_ci(*small, n_resamples=300, seed=3) == (lo_s, hi_s)
    m = compute_metrics(np.r_[small], np.r_[np.ones(100), np.zeros(100)], n_bootstrap=200, seed=0)
    assert m["n_bootstrap"] == 200 and m["eer_ci95"][0] <= m["eer"] <= m["eer_ci95"][1]
    assert "eer_ci95" not in compute_metrics(np.r_[small], np.r_[np.ones(100), np.zeros(100)])


def test_mean_std_uses_sample_std_over_seeds():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([4.0]) == (4.0, 0.0)
    with pytest.raises(ValueError):
        mean_std([])


def test_constant_scores_are_reported_with_a_warning_not_as_a_ranking(caplog):
    with caplog.at_level("WARNING", logger="benchmark"):
        m = compute_metrics([0.3] * 6, [1, 1, 1, 0, 0, 0])
    assert m["auc"] == 0.5 and len(m["warnings"]) == 1
    assert "every score equals 0.3" in m["warnings"][0] and "rank nothing" in caplog.text
    assert "warnings" not in compute_metrics([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0])
