"""The EER's bootstrap CI is configurable: ``n_bootstrap``/``bootstrap_seed`` in the API,
``--bootstrap N`` / ``--bootstrap-seed`` on ``python -m benchmark evaluate``, recorded in metrics.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.evaluate import evaluate_files, write_keys, write_scores
from benchmark.metrics import bootstrap_eer_ci, compute_metrics
from benchmark.models.base import Detector
from benchmark.runs import evaluate_model

CI_KEYS = {"eer_ci95", "n_bootstrap", "bootstrap_seed"}


def _trials(n: int = 120, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping classes (true EER about 16 %), so resamples do move the EER."""
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(1, 1, n), rng.normal(-1, 1, n)]
    return scores, np.r_[np.ones(n, int), np.zeros(n, int)]


def test_compute_metrics_records_resamples_and_seed():
    scores, labels = _trials()
    off = compute_metrics(scores, labels, n_bootstrap=0, seed=5)
    assert not CI_KEYS & off.keys()
    m = compute_metrics(scores, labels, n_bootstrap=200, seed=5)
    assert m["n_bootstrap"] == 200 and m["bootstrap_seed"] == 5
    assert m["eer_ci95"][0] <= m["eer"] <= m["eer_ci95"][1]
    # the CI is exactly the percentile bootstrap of the two classes with that seed, in percent
    lo, hi = bootstrap_eer_ci(scores[labels == 1], scores[labels == 0], n_resamples=200, seed=5)
    assert m["eer_ci95"] == [100 * lo, 100 * hi]
    assert compute_metrics(scores, labels, n_bootstrap=200, seed=5) == m
    # another seed draws other resamples (EERs are discrete, so two seeds may still agree by chance)
    assert len({tuple(compute_metrics(scores, labels, n_bootstrap=200, seed=s)["eer_ci95"]) for s in range(5)}) > 1
    assert {k: v for k, v in m.items() if k not in CI_KEYS} == off


@pytest.mark.parametrize("bad", [-1, 2.5, True, "100"])
def test_bad_resample_count_is_one_line(bad):
    scores, labels = _trials(10)
    with pytest.raises(ValueError, match="n_bootstrap must be a whole number >= 0") as err:
        compute_metrics(scores, labels, n_bootstrap=bad)
    assert "\n" not in str(err.value)


def _files(tmp_path):
    scores, labels = _trials()
    names = [f"u{i:03d}" for i in range(scores.size)]
    write_scores(tmp_path / "scores.tsv", names, scores)
    write_keys(tmp_path / "keys.tsv", names, labels == 1)
    return tmp_path / "scores.tsv", tmp_path / "keys.tsv"


def test_evaluate_files_writes_the_ci_settings(tmp_path):
    s, k = _files(tmp_path)
    off = evaluate_files(s, k, tmp_path / "off.json")
    assert not CI_KEYS & json.loads((tmp_path / "off.json").read_text()).keys() and not CI_KEYS & off.keys()
    on = evaluate_files(s, k, tmp_path / "on.json", n_bootstrap=150, bootstrap_seed=9)
    assert json.loads((tmp_path / "on.json").read_text()) == on
    assert on["n_bootstrap"] == 150 and on["bootstrap_seed"] == 9
    assert evaluate_files(s, k, None, n_bootstrap=150, bootstrap_seed=9) == on


def test_evaluate_cli_bootstrap_flags(tmp_path, capsys):
    s, k = _files(tmp_path)
    base = ["evaluate", "--scores", str(s), "--keys", str(k), "--out"]
    assert main(base + [str(tmp_path / "off.json"), "--bootstrap", "0"]) == 0
    assert not CI_KEYS & json.loads((tmp_path / "off.json").read_text()).keys()
    assert "CI" not in capsys.readouterr().out
    assert main(base + [str(tmp_path / "a.json"), "--bootstrap", "200", "--bootstrap-seed", "3"]) == 0
    assert "200 bootstrap resamples, seed 3" in capsys.readouterr().out
    a = json.loads((tmp_path / "a.json").read_text())
    assert a == evaluate_files(s, k, None, n_bootstrap=200, bootstrap_seed=3)  # same seed, same CI
    assert main(base + [str(tmp_path / "d.json")]) == 0  # default: 1000 resamples, seed 0, as run all
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["n_bootstrap"] == 1000 and d["bootstrap_seed"] == 0


def test_evaluate_cli_rejects_a_negative_count(tmp_path, capsys):
    s, k = _files(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--scores", str(s), "--keys", str(k), "--out", str(tmp_path / "m.json"), "--bootstrap", "-5"])
    assert exit_.value.code == 2 and "--bootstrap: expected a whole number >= 0, got '-5'" in capsys.readouterr().err


class _Loudness(Detector):
    """Scores a clip by its mean sample: bona fide clips are offset upwards."""

    num_samples = None

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, wave):
        m = wave.mean(dim=1)
        return torch.stack([-m, m], dim=1) + 0 * self.dummy


class _Clips:
    """In-memory labelled clips (dataset labels: bonafide=0) with two spoof systems."""

    sample_rate = 16000

    def __init__(self, n: int = 24):
        rng = np.random.default_rng(0)
        systems = ["bonafide" if i % 3 == 0 else ("A01" if i % 3 == 1 else "A02") for i in range(n)]
        self.rows = [((rng.normal(0.05 if s == "bonafide" else 0.0, 0.2, 1600)).astype(np.float32),
                      0 if s == "bonafide" else 1, s) for s in systems]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        wave, label, system = self.rows[i]
        return wave, label, {"filename": f"c{i:02d}.wav", "system": system}

    def meta(self, i):
        return self[i][2]

    @property
    def labels(self):
        return np.array([r[1] for r in self.rows])

    @property
    def filenames(self):
        return [f"c{i:02d}.wav" for i in range(len(self.rows))]

    def durations(self):
        return np.full(len(self.rows), 0.1)


def test_evaluate_model_passes_the_settings_to_every_condition(tmp_path):
    model, source = _Loudness().eval(), _Clips()
    off = evaluate_model(model, source, tmp_path / "off", n_bootstrap=0, progress=False)
    assert not CI_KEYS & off.metrics.keys() and all(not CI_KEYS & m.keys() for m in off.by_condition.values())
    on = evaluate_model(model, source, tmp_path / "on", n_bootstrap=50, bootstrap_seed=4, progress=False)
    assert set(on.by_condition) == {"A01", "A02"}
    for m in [on.metrics, *on.by_condition.values()]:
        assert m["n_bootstrap"] == 50 and m["bootstrap_seed"] == 4 and len(m["eer_ci95"]) == 2
    again = evaluate_model(model, source, tmp_path / "again", n_bootstrap=50, bootstrap_seed=4, progress=False)
    assert again.metrics == on.metrics and again.by_condition == on.by_condition
    assert json.loads((tmp_path / "on" / "metrics.json").read_text()) == on.metrics
