"""`benchmark.cost`: the dry run's rates (measured file, recipe, unknown) and the arithmetic."""

from __future__ import annotations

import json

import pytest

from benchmark.cost import (
    COST_FILE_ENV,
    CostFileError,
    Measurements,
    Rates,
    estimate,
    find_measurements,
    load_measurements,
    official_size,
    recipe_rates,
)
from benchmark.matrix import Recipe
from benchmark.protocols import SetSpec
from benchmark.training.config import ConfigError

DEVICE = "Test CPU, 2 cores"


def write_results(path, *, device=DEVICE, date="2026-01-02T03:04:05+0000", recipes=None):
    recipes = recipes if recipes is not None else {
        "plain": {"status": "ok", "train_utt_per_s": 10.0, "train_first_epoch_utt_per_s": 10.0,
                  "score_utt_per_s": 40.0},
        "frozen": {"status": "ok", "train_utt_per_s": 100.0, "train_first_epoch_utt_per_s": 4.0,
                   "score_utt_per_s": 5.0, "score_cached_utt_per_s": 200.0},
        "broken": {"status": "failed", "error": "RuntimeError: out of memory"},
    }
    path.write_text(json.dumps({"schema": "codecfake-bench/train-throughput/1", "device_name": device,
                                "date": date, "recipes": recipes}))
    return path


def test_plain_recipe_cost_is_epochs_over_the_rate_plus_scoring():
    rates = Rates(train=10.0, score=40.0, source="x")
    cost = estimate(rates, epochs=3, train_items=1000, dev_items=200, eval_items=4000)
    # 3 x 1000 / 10 training + 3 x 200 / 40 dev scoring + 4000 / 40 test scoring
    assert cost.seconds == pytest.approx(300.0 + 15.0 + 100.0)
    assert not cost.partial and cost.format() == f"{415.0 / 3600:.2f}"


def test_frozen_ssl_recipe_pays_the_first_epoch_once():
    rates = Rates(train=100.0, train_first=4.0, score=5.0, score_cached=200.0)
    cost = estimate(rates, epochs=10, train_items=1000, dev_items=400, eval_items=500)
    train = 1000 / 4.0 + 9 * 1000 / 100.0
    dev = 400 / 5.0 + 9 * 400 / 200.0
    assert cost.seconds == pytest.approx(train + dev + 500 / 5.0)


def test_unknown_parts_make_a_lower_bound_and_unknown_training_is_unknown():
    rates = Rates(train=10.0, score=None, source="recipe")
    cost = estimate(rates, epochs=2, train_items=100, dev_items=10, eval_items=10)
    assert cost.seconds == pytest.approx(20.0) and cost.partial and cost.format().startswith(">=")
    assert estimate(Rates(train=10.0, score=5.0), epochs=2, train_items=100, eval_items=None).partial
    assert estimate(rates, epochs=2, train_items=None).format() == "?"
    assert estimate(Rates(), epochs=2, train_items=100).format() == "?"


def test_measured_rates_come_before_the_recipe_and_unknown_stays_unknown(tmp_path):
    measured = Measurements.load(write_results(tmp_path / "train_throughput-test.json"))
    got = recipe_rates("frozen", {"utt_per_s": 1.0}, measured)
    assert (got.train, got.train_first, got.score, got.score_cached) == (100.0, 4.0, 5.0, 200.0)
    assert got.source == f"measured on {DEVICE} 2026-01-02"
    # A recipe the file lacks, or one that failed there, falls back to its cost: entry ...
    assert recipe_rates("other", {"utt_per_s": 7.0, "score_utt_per_s": 9.0}, measured) == \
        Rates(train=7.0, score=9.0, source="recipe")
    assert recipe_rates("broken", {"utt_per_s": 7.0}, measured).source == "recipe"
    assert recipe_rates("x", {"utt_per_s": 7.0, "measured_on": "A100 2026"}, None).source == "recipe (A100 2026)"
    # ... and without one the rate is unknown, not guessed.
    assert recipe_rates("broken", {"utt_per_s": None}, measured) == Rates(source="unknown")
    assert recipe_rates("plain", None, None) == Rates(source="unknown")


def test_newest_file_of_this_device_wins_and_the_env_variable_overrides_it(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_results(results / "train_throughput-old.json", date="2025-05-05T00:00:00+0000")
    write_results(results / "train_throughput-new.json", date="2026-06-06T00:00:00+0000")
    write_results(results / "train_throughput-gpu.json", device="NVIDIA H100", date="2027-01-01T00:00:00+0000")
    (results / "train_throughput-torn.json").write_text("{not json")
    assert find_measurements(DEVICE, results).path.name == "train_throughput-new.json"
    assert find_measurements("NVIDIA H100", results).device == "NVIDIA H100"
    assert find_measurements("Other GPU", results) is None
    assert load_measurements({}, results, device=DEVICE).date.startswith("2026-06-06")
    chosen = load_measurements({COST_FILE_ENV: str(results / "train_throughput-old.json")}, results, device=DEVICE)
    assert chosen.date.startswith("2025-05-05")
    assert load_measurements({}, tmp_path / "nothing-here", device=DEVICE) is None


def test_a_bad_cost_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(CostFileError, match=r"missing\.json: throughput file not found\. Fix:"):
        load_measurements({COST_FILE_ENV: str(tmp_path / "missing.json")})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(CostFileError, match="bad.json: not a train_throughput results file"):
        Measurements.load(bad)


def test_official_sizes_follow_the_selection():
    assert official_size(SetSpec(dataset="asvspoof2019-la", splits=["train"])) == 25_380
    assert official_size(SetSpec(dataset="asvspoof2019-la", splits=["eval"])) == 71_237
    assert official_size(SetSpec(dataset="in-the-wild")) == 31_779
    # Filters and several splits now follow the release's own counts.
    assert official_size(SetSpec(dataset="asvspoof2019-la", splits=["train"], labels=["spoof"])) == 22_800
    assert official_size(SetSpec(dataset="asvspoof2019-la", splits=["train", "dev"])) == 25_380 + 24_844
    assert official_size(SetSpec(dataset="codecfake", splits=["C7"])) == 145_505
    # What no release publishes stays unknown: WaveFake's TTS folder, a filter on an unrecorded field.
    assert official_size(SetSpec(dataset="wavefake")) is None
    assert official_size(SetSpec(dataset="asvspoof2019-la", splits=["eval"], attacks=["A17"])) is None


def test_gradient_accumulation_leaves_utterances_per_epoch_unchanged():
    # grad_accum sums micro-batch gradients before a step: an epoch still reads every utterance once.
    rates = Rates(train=10.0, score=40.0)
    one = estimate(rates, epochs=3, train_items=1_000, dev_items=100, eval_items=400)
    assert one.seconds == pytest.approx(3 * 1_000 / 10.0 + 3 * 100 / 40.0 + 400 / 40.0)
    assert "grad_accum" in estimate.__doc__ and "not how many" in estimate.__doc__


def test_recipe_cost_entries_are_validated(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  model: {name: lcnn}\ncost: {utt_per_s: 12.5, first_epoch_utt_per_s: 2, "
                    "score_utt_per_s: null, measured_on: 'A100 2026-01-01'}\n")
    recipe = Recipe.from_yaml(path)
    assert recipe.utt_per_s == 12.5 and recipe.cost["first_epoch_utt_per_s"] == 2
    path.write_text("train:\n  model: {name: lcnn}\ncost: {utt_per_sec: 3}\n")
    with pytest.raises(ConfigError, match="unknown key 'cost.utt_per_sec'"):
        Recipe.from_yaml(path)
    path.write_text("train:\n  model: {name: lcnn}\ncost: {utt_per_s: -1}\n")
    with pytest.raises(ConfigError, match="cost.utt_per_s must be a positive number or null"):
        Recipe.from_yaml(path)
    path.write_text("train:\n  model: {name: lcnn}\n")
    assert Recipe.from_yaml(path).cost == {}
