"""`run all`: the matrix expands recipes x protocols x seeds, runs end to end on an
official-layout miniature, skips finished runs, reports missing data and failures."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from benchmark.matrix import Matrix, Recipe, run_id
from benchmark.run_all import dry_run_table, run_all
from benchmark.training.config import ConfigError
from tests.benchmark.test_readers import make_librisevoc
from tests.benchmark.test_training import TINY  # noqa: F401  (registers the tiny detector)

RECIPE = f"""\
description: tiny test recipe
train:
  model: {{name: {TINY}, kwargs: {{channels: 4, num_samples: 1600}}}}
  optim: {{epochs: 2, batch_size: 8, lr: 3.0e-3, num_workers: 0, class_weights: balanced}}
  device: cpu
  tensorboard: false
cost: {{utt_per_s: 100}}
"""


@pytest.fixture
def setup(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "tiny.yaml").write_text(RECIPE)
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text("seeds: [0]\ngroups:\n  - name: g\n    recipes: [tiny, later-*]\n"
                      "    protocols: [inner-dataset_librisevoc, inner-dataset_19la]\n")
    root = make_librisevoc(tmp_path / "data")
    return Matrix.load(matrix, recipe_dir=recipes), {"librisevoc": str(root)}, tmp_path / "out"


def test_matrix_expands_and_run_ids_follow_config_and_data(setup, tmp_path):
    matrix, roots, _ = setup
    assert any("later-*" in w for w in matrix.warnings)
    exps = matrix.experiments(roots)
    assert sorted(e.label for e in exps) == ["tiny/inner-dataset_19la/s0", "tiny/inner-dataset_librisevoc/s0"]
    e = next(x for x in exps if "librisevoc" in x.label)
    assert e.run_id.startswith("tiny__inner-dataset_librisevoc__s0-")
    assert run_id(e.recipe, e.protocol, 0, roots) == e.run_id
    assert run_id(e.recipe, e.protocol, 1, roots) != e.run_id
    assert run_id(e.recipe, e.protocol, 0, {"librisevoc": str(tmp_path)}) != e.run_id
    assert [x.label for x in matrix.experiments(roots, only="*19la*")] == ["tiny/inner-dataset_19la/s0"]


def test_recipe_and_matrix_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  model: {name: lcnn}\n  seed: 3\n")
    with pytest.raises(ConfigError, match="train.seed.*set by run all"):
        Recipe.from_yaml(bad)
    bad.write_text("train:\n  model: {name: lcnn}\n  optim: {epohcs: 3}\n")
    with pytest.raises(ConfigError, match="epohcs"):
        Recipe.from_yaml(bad)
    m = tmp_path / "m.yaml"
    m.write_text("groups:\n  - {name: g, recipes: [lcnn], protocols: [no-such-protocol]}\n")
    with pytest.raises(ConfigError, match="protocol 'no-such-protocol' does not exist"):
        Matrix.load(m)


def test_run_all_end_to_end_then_skips_and_reports_missing_data(setup):
    matrix, roots, out = setup
    lines: list[str] = []
    result = run_all(matrix, roots, out, progress=False, say=lines.append, n_bootstrap=50)
    assert len(result.finished) == 1 and not result.failed
    (missing_id, missing), = result.missing_data.items()
    assert "inner-dataset_19la" in missing_id and "asvspoof2019-la" in missing[0] and "http" in missing[0]
    base = out / result.finished[0]
    done = json.loads((base / "done.json").read_text())
    docs = [json.loads((base / r).read_text()) for r in done["runs"]]
    pooled = next(d for d in docs if d["test_data"] == "LibriSeVoc")
    assert pooled["protocol"] == "inner-dataset_librisevoc" and pooled["seed"] == 0 and pooled["model"] == "tiny"
    assert 0 <= pooled["metrics"]["eer"] <= 100 and "eer_ci95" in pooled["metrics"]
    assert {d["metrics"]["n_bootstrap"] for d in docs} == {50}
    per_vocoder = sorted(d["test_data"] for d in docs if d is not pooled)
    assert per_vocoder == [f"LibriSeVoc:{v}" for v in
                           ("diffwave", "melgan", "parallel_wave_gan", "wavegrad", "wavenet", "wavernn")]
    assert (base / "runs" / pooled["artifacts"]["scores"]).resolve() == (base / "eval/LibriSeVoc/scores.tsv").resolve()
    assert (base / "eval/LibriSeVoc/scores.tsv").is_file()
    board = out / "leaderboard"
    assert (board / "leaderboard.md").is_file()
    assert (board / "paper" / "fdadd-inner-dataset_librisevoc.tex").is_file()
    assert (board / "plots" / "heatmap-inner-dataset_librisevoc.png").is_file()

    again = run_all(matrix, roots, out, progress=False, say=lines.append)
    assert again.skipped_done == result.finished and not again.finished
    table = dry_run_table(matrix.experiments(roots), roots, out)
    assert "| done |" in table and "needs asvspoof2019-la" in table


def test_a_failing_experiment_is_counted_and_the_rest_go_on(setup):
    matrix, roots, out = setup

    def broken(exp, *a, **k):
        raise RuntimeError("disk full")

    result = run_all(matrix, roots, out, progress=False, say=lambda s: None, runner=broken)
    assert list(result.failed.values()) == ["RuntimeError: disk full"]
    assert not any(out.glob("*/done.json"))


def test_bootstrap_count_reaches_every_experiment(setup):
    matrix, roots, out = setup
    seen = []
    run_all(matrix, roots, out, progress=False, say=lambda s: None, n_bootstrap=0,
            runner=lambda exp, *a, **k: seen.append(k["n_bootstrap"]) or [])
    assert seen == [0]


def test_cli_bootstrap_flag(monkeypatch, tmp_path, capsys):
    import benchmark.run_all as run_all_module

    got = {}
    monkeypatch.setattr(run_all_module, "run_all", lambda *a, **k: got.update(k) or run_all_module.RunAllResult(0))
    # run_all is replaced, so a matching --only runs nothing (one matching nothing is an error now)
    assert main(["run", "all", "--out", str(tmp_path), "--only", "lcnn/inner-dataset_19la/s0", "--bootstrap", "0"]) == 0
    assert got["n_bootstrap"] == 0
    with pytest.raises(SystemExit):
        main(["run", "all", "--bootstrap", "-1"])
    assert "--bootstrap" in capsys.readouterr().err


def test_cli_dry_run_lists_the_full_matrix(capsys):
    assert main(["run", "all", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for recipe in ("aasist", "lcnn", "rawnet2", "rawgat-st", "resnet18-spec"):
        assert f"| {recipe} |" in out
    for protocol in ("codecfake-training_co-trained", "cross-method_21df", "inner-dataset_wavefake"):
        assert f"| {protocol} |" in out
    assert "experiment(s). Cost" in out


def test_group_seeds_replace_the_default_and_are_validated(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "tiny.yaml").write_text(RECIPE)
    m = tmp_path / "m.yaml"
    m.write_text("seeds: [0, 1]\ngroups:\n"
                 "  - {name: plain, recipes: [tiny], protocols: [inner-dataset_19la]}\n"
                 "  - {name: ten, recipes: [tiny], protocols: [inner-dataset_librisevoc], seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}\n")
    matrix = Matrix.load(m, recipe_dir=recipes)
    assert [g.seeds for g in matrix.groups] == [(0, 1), tuple(range(10))]
    labels = sorted(e.label for e in matrix.experiments({}))
    assert labels == sorted([f"tiny/inner-dataset_19la/s{s}" for s in (0, 1)] +
                            [f"tiny/inner-dataset_librisevoc/s{s}" for s in range(10)])
    # --only also matches a group's name
    assert len(matrix.experiments({}, only="ten")) == 10
    for seeds, problem in (("[]", "must be a non-empty list"), ("3", "must be a non-empty list"), ("[0, -1]", "seed -1 is not"),
                           ("[0, 1.5]", "seed 1.5 is not"), ("[0, true]", "seed True is not"),
                           ("[2, 2]", "seed 2 is listed twice")):
        m.write_text(f"groups:\n  - {{name: g, recipes: [tiny], protocols: [inner-dataset_19la], seeds: {seeds}}}\n")
        with pytest.raises(ConfigError, match=rf"groups\[0\]\.seeds: {problem}") as err:
            Matrix.load(m, recipe_dir=recipes)
        assert "\n" not in str(err.value) and "Fix:" in str(err.value)
    m.write_text("seeds: [a]\ngroups:\n  - {name: g, recipes: [tiny], protocols: [inner-dataset_19la]}\n")
    with pytest.raises(ConfigError, match=r"m\.yaml: seeds: seed 'a' is not"):
        Matrix.load(m, recipe_dir=recipes)
    m.write_text("groups:\n  - {name: g, recipes: [tiny], protocols: [inner-dataset_19la], seed: [1]}\n")
    with pytest.raises(ConfigError, match="unknown key 'seed'"):
        Matrix.load(m, recipe_dir=recipes)


def test_fdadd_group_lists_every_task_with_ten_seeds():
    matrix = Matrix.load()
    fdadd = next(g for g in matrix.groups if g.name == "fdadd")
    assert fdadd.seeds == tuple(range(10))
    exps = matrix.experiments({}, only="fdadd")
    protocols = {e.protocol.name for e in exps}
    assert protocols == {"inner-dataset_wavefake", "inner-dataset_librisevoc", "inner-dataset_decro-en",
                         "inner-dataset_decro-zh", "inner-dataset_21df", "cross-method_wavefake",
                         "cross-method_wavefake-melgan-large",
                         "cross-method_librisevoc", "cross-dataset_librisevoc", "cross-language_wavefake",
                         "cross-language_decro-en-to-zh", "cross-language_decro-zh-to-en"}
    recipes = {e.recipe.name for e in exps}
    assert {"lcnn", "rawnet2", "rawgat-st", "aasist", "w2v2-base-ft", "wavlm-base-ft", "rawnet2-voc",
            "wav2clip"} <= recipes
    assert {e.seed for e in exps if e.recipe.name == "wav2clip" and e.protocol.name == "inner-dataset_21df"} == \
        set(range(10))
    codecfake = next(g for g in matrix.groups if g.name == "codecfake")
    assert "wavespec*" in codecfake.recipes
