"""`run all --dry-run`: per-run sizes, hours and the rate's source, and the totals."""

from __future__ import annotations

import json

import pytest

from benchmark.cost import COST_FILE_ENV
from benchmark.matrix import Matrix
from benchmark.run_all import dry_run_table
from tests.benchmark.test_readers import make_librisevoc
from tests.benchmark.test_training import TINY  # noqa: F401  (registers the tiny detector)

RECIPE = """\
description: tiny test recipe
train:
  model: {{name: {model}, kwargs: {{channels: 4, num_samples: 1600}}}}
  optim: {{epochs: {epochs}, batch_size: 8, lr: 3.0e-3, num_workers: 0}}
cost: {cost}
"""


@pytest.fixture
def matrix(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    for name, epochs, cost in (("measured", 4, "{utt_per_s: 1.0}"), ("fallback", 2, "{utt_per_s: 100.0}"),
                               ("nothing", 3, "{utt_per_s: null}")):
        (recipes / f"{name}.yaml").write_text(RECIPE.format(model=TINY, epochs=epochs, cost=cost))
    m = tmp_path / "matrix.yaml"
    m.write_text("seeds: [0]\ngroups:\n  - name: g\n    recipes: [measured, fallback, nothing]\n"
                 "    protocols: [inner-dataset_librisevoc, inner-dataset_19la]\n")
    return Matrix.load(m, recipe_dir=recipes)


def _row(table: str, recipe: str, protocol: str) -> list[str]:
    line = next(ln for ln in table.splitlines() if f"| {recipe} | {protocol} |" in ln)
    return [c.strip() for c in line.strip("|").split("|")]


def test_dry_run_prints_sizes_hours_and_rate_source(matrix, tmp_path, monkeypatch):
    cost_file = tmp_path / "rates.json"
    cost_file.write_text(json.dumps({"device_name": "Test GPU", "date": "2026-03-04T05:06:07+0000", "recipes": {
        "measured": {"status": "ok", "train_utt_per_s": 2.0, "train_first_epoch_utt_per_s": 1.0,
                     "score_utt_per_s": 10.0, "score_cached_utt_per_s": 20.0}}}))
    monkeypatch.setenv(COST_FILE_ENV, str(cost_file))
    roots = {"librisevoc": str(make_librisevoc(tmp_path / "data"))}
    table = dry_run_table(matrix.experiments(roots), roots, tmp_path / "out")
    header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    assert header == ["#", "recipe", "protocol", "seed", "status", "train utts", "utt-epochs", "eval utts", "sizes",
                      "est. h", "rate source", "run id"]

    from benchmark.protocols import resolve
    r = resolve(matrix.protocols["inner-dataset_librisevoc"], roots, seed=0)
    n, dev, test = len(r.train), len(r.dev), sum(len(t.items) for t in r.tests)
    row = _row(table, "measured", "inner-dataset_librisevoc")
    assert row[4] == "ready" and row[5] == f"{n:,}" and row[6] == f"{4 * n:,}" and row[7] == f"{test:,}"
    assert row[8] == "disk"  # data on disk wins over release sizes
    seconds = n / 1.0 + 3 * n / 2.0 + dev / 10.0 + 3 * dev / 20.0 + test / 10.0
    assert row[9] == f"{seconds / 3600:.2f}" and row[10] == "measured on Test GPU 2026-03-04"
    # The file does not know "fallback": its recipe's rate trains; no scoring rate -> a lower bound.
    row = _row(table, "fallback", "inner-dataset_librisevoc")
    assert row[9] == f">={2 * n / 100.0 / 3600:.2f}" and row[10] == "recipe"
    assert _row(table, "nothing", "inner-dataset_librisevoc")[9:11] == ["?", "unknown"]
    # Missing data: official ASVspoof 2019 LA sizes (train 25,380, eval 71,237) still give an estimate.
    row = _row(table, "measured", "inner-dataset_19la")
    assert row[4] == "needs asvspoof2019-la" and row[5] == "25,380" and row[7] == "71,237" and row[8] == "release"
    seconds = 25_380 / 1.0 + 3 * 25_380 / 2.0 + 24_844 / 10.0 + 3 * 24_844 / 20.0 + 71_237 / 10.0
    assert row[9] == f"{seconds / 3600:.2f}"

    footer = table.split("\n\n", 1)[1]
    assert footer.startswith("6 experiment(s). Cost of the unfinished ones:")
    assert "hours for the 4 with an estimate" in footer and "2 of them lack" in footer
    assert "- 2 of unknown cost" in footer
    assert f"Rates: {cost_file} (measured on Test GPU 2026-03-04)" in footer


def test_dry_run_without_measurements_says_so(matrix, tmp_path, monkeypatch):
    monkeypatch.delenv(COST_FILE_ENV, raising=False)
    monkeypatch.setattr("benchmark.cost.RESULTS_DIR", tmp_path / "no-results")
    table = dry_run_table(matrix.experiments({}), {}, tmp_path / "out")
    assert _row(table, "measured", "inner-dataset_19la")[10] == "recipe"
    # No LibriSeVoc on disk: FD-ADD's cut of the release's 13,201 ids x 7 folders, priced all the same.
    row = _row(table, "measured", "inner-dataset_librisevoc")
    assert row[5:9] == ["55,440", f"{4 * 55_440:,}", "18,487", "release"]
    seconds = 4 * 55_440 / 1.0  # the recipe's cost: has no scoring rate -> a lower bound
    assert row[9] == f">={seconds / 3600:.2f}"
    assert "Rates: no train_throughput measurement for this device" in table
    assert "Sizes: 'disk' = counted in the data on disk; 'release' = the datasets' official release sizes" in table


def test_a_done_run_is_left_out_of_the_totals(matrix, tmp_path, monkeypatch):
    monkeypatch.delenv(COST_FILE_ENV, raising=False)
    monkeypatch.setattr("benchmark.cost.RESULTS_DIR", tmp_path / "no-results")
    exps = [e for e in matrix.experiments({}) if e.recipe.name == "fallback"]
    done = next(e for e in exps if "19la" in e.protocol.name)
    (tmp_path / "out" / done.run_id).mkdir(parents=True)
    (tmp_path / "out" / done.run_id / "done.json").write_text("{}")
    table = dry_run_table(exps, {}, tmp_path / "out")
    assert "| done |" in table
    # Only the unfinished LibriSeVoc run counts (release sizes: 2 epochs x 55,440), not the done 19LA one.
    assert "- 110,880 utterance-epochs" in table and "hours for the 1 with an estimate" in table


def test_gradient_accumulation_keeps_utterances_and_hours(tmp_path, monkeypatch):
    monkeypatch.delenv(COST_FILE_ENV, raising=False)
    monkeypatch.setattr("benchmark.cost.RESULTS_DIR", tmp_path / "no-results")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    for name, accum in (("plain", 1), ("accum", 4)):
        (recipes / f"{name}.yaml").write_text(
            f"train:\n  model: {{name: {TINY}, kwargs: {{channels: 4}}}}\n"
            f"  optim: {{epochs: 3, batch_size: 8, grad_accum: {accum}, num_workers: 0}}\n"
            "cost: {utt_per_s: 50.0, score_utt_per_s: 200.0}\n")
    m = tmp_path / "matrix.yaml"
    m.write_text("seeds: [0]\ngroups:\n  - name: g\n    recipes: [plain, accum]\n"
                 "    protocols: [inner-dataset_wavefake]\n")
    table = dry_run_table(Matrix.load(m, recipe_dir=recipes).experiments({}), {}, tmp_path / "out")
    plain, accum = _row(table, "plain", "inner-dataset_wavefake"), _row(table, "accum", "inner-dataset_wavefake")
    assert plain[5:10] == accum[5:10] == ["64,000", "192,000", "24,800", "release", plain[9]]
    seconds = 3 * 64_000 / 50.0 + 3 * 16_000 / 200.0 + 24_800 / 200.0
    assert plain[9] == f"{seconds / 3600:.2f}"


def test_oversampling_reads_twice_the_larger_class_per_epoch(tmp_path, monkeypatch):
    monkeypatch.delenv(COST_FILE_ENV, raising=False)
    monkeypatch.setattr("benchmark.cost.RESULTS_DIR", tmp_path / "no-results")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "over.yaml").write_text(
        f"train:\n  model: {{name: {TINY}, kwargs: {{channels: 4}}}}\n"
        "  optim: {epochs: 2, batch_size: 8, sampling: oversample, num_workers: 0}\n"
        "cost: {utt_per_s: 50.0, score_utt_per_s: 200.0}\n")
    m = tmp_path / "matrix.yaml"
    m.write_text("seeds: [0]\ngroups:\n  - name: g\n    recipes: [over]\n"
                 "    protocols: [inner-dataset_wavefake, inner-dataset_decro-en]\n")
    table = dry_run_table(Matrix.load(m, recipe_dir=recipes).experiments({}), {}, tmp_path / "out")
    # FD-ADD's WaveFake train cut: 8,000 ids x (1 real + 7 fakes) -> an epoch is 2 x 56,000 fakes.
    row = _row(table, "over", "inner-dataset_wavefake")
    assert row[5:7] == ["64,000", f"{2 * 112_000:,}"]
    assert row[9] == f"{(2 * 112_000 / 50.0 + 2 * 16_000 / 200.0 + 24_800 / 200.0) / 3600:.2f}"
    # DECRO EN train: 5,128 bona fide, 17,413 spoof rows.
    assert _row(table, "over", "inner-dataset_decro-en")[6] == f"{2 * 2 * 17_413:,}"
