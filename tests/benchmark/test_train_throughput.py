"""benchmarks/train_throughput.py on tiny models: rows, JSON, selection, frozen-SSL timing."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import train_throughput as tt
from tests.benchmark.test_training import OWN, TINY  # noqa: F401  (registers the tiny detectors)

RECIPE = """\
train:
  model: {{name: {model}, kwargs: {kwargs}}}
  optim: {{epochs: 2, batch_size: {batch}, lr: 1.0e-3, num_workers: 0, sam: {sam}, class_weights: [2.0, 1.0]}}
"""


@pytest.fixture
def recipe_dir(tmp_path):
    d = tmp_path / "recipes"
    d.mkdir()
    (d / "tiny.yaml").write_text(RECIPE.format(model=TINY, kwargs="{channels: 4, num_samples: 1600}", batch=4,
                                               sam="none"))
    (d / "tiny-sam.yaml").write_text(RECIPE.format(model=TINY, kwargs="{channels: 4}", batch=16, sam="asam"))
    (d / "own.yaml").write_text(RECIPE.format(model=OWN, kwargs="{channels: 4}", batch=4, sam="none"))
    return d


def test_every_selected_recipe_gets_rates_and_the_json_names_the_device(recipe_dir, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = tt.main(["--device", "cpu", "--recipe-dir", str(recipe_dir), "--steps", "2", "--max-batch", "8",
                  "--json", str(out), "--note", "test"])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["schema"] == tt.SCHEMA and result["device"] == "cpu" and result["device_name"]
    assert result["torch"] == torch.__version__ and result["note"] == "test" and "commit" in result
    assert len(result["loadavg_before"]) == 3 and result["date"]
    assert "aasist" in result["models_without_recipe"] and TINY not in result["models_without_recipe"]
    rows = result["recipes"]
    assert set(rows) == {"tiny", "tiny-sam", "own"}
    for row in rows.values():
        assert row["status"] == "ok" and row["train_utt_per_s"] > 0 and row["score_utt_per_s"] > 0
        assert len(row["train_step_seconds"]) == 2 and not row["frozen_ssl_cached"]
        assert row["train_first_epoch_utt_per_s"] == row["train_utt_per_s"]
    assert (rows["tiny"]["batch"], rows["tiny"]["recipe_batch"], rows["tiny"]["num_samples"]) == (4, 4, 1600)
    assert (rows["tiny-sam"]["batch"], rows["tiny-sam"]["recipe_batch"]) == (8, 16)  # capped, both recorded
    assert rows["tiny-sam"]["sam"] == "asam" and rows["tiny-sam"]["num_samples"] == 2000
    # The own-loss model trained on extras from its own train_transform, with systems filled in.
    assert rows["own"]["kwargs_measured"]["systems"] == list(tt.SYSTEMS)
    printed = capsys.readouterr().out
    assert "| tiny-sam | " in printed and f"-> {out}" in printed


def test_selection_by_model_and_pattern(recipe_dir):
    from benchmark.matrix import load_recipes

    recipes = load_recipes(recipe_dir)
    assert [r.name for r in tt.select_recipes(recipes, None, TINY)] == ["tiny-sam", "tiny"]
    assert [r.name for r in tt.select_recipes(recipes, "own,tiny", None)] == ["own", "tiny"]
    with pytest.raises(Exception, match="no-such-model"):
        tt.select_recipes(recipes, None, "no-such-model")


def test_a_recipe_that_fails_is_recorded_and_the_rest_run(recipe_dir, tmp_path):
    (recipe_dir / "bad.yaml").write_text(RECIPE.format(model=TINY, kwargs="{channels: 4, num_samples: 8}", batch=2,
                                                       sam="none"))
    out = tmp_path / "r.json"
    assert tt.main(["--device", "cpu", "--recipe-dir", str(recipe_dir), "--recipes", "bad,tiny", "--steps", "1",
                    "--json", str(out)]) == 1
    rows = json.loads(out.read_text())["recipes"]
    assert rows["bad"]["status"] == "failed" and rows["bad"]["error"]
    assert rows["tiny"]["status"] == "ok"


def test_frozen_ssl_recipe_times_the_first_and_the_cached_epochs(tmp_path, monkeypatch):
    """A tiny wav2vec 2.0 stands in for XLS-R: epoch 1 computes and caches, later epochs read."""
    from transformers import Wav2Vec2Config

    tiny = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                          conv_dim=(8,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                          do_stable_layer_norm=True, feat_extract_norm="layer")
    import benchmark.frontends.ssl as ssl_mod

    # The front-end's random_init builds from ssl_config: the tiny config stands in for XLS-R's.
    monkeypatch.setattr(ssl_mod, "ssl_config", lambda model_id, local_files_only=None: tiny)
    # No checkpoint may be read: random_weights() must build every SSL model from its config.
    monkeypatch.setattr(ssl_mod, "_cache_first", lambda *a, **k: pytest.fail("a checkpoint was looked up"))
    d = tmp_path / "recipes"
    d.mkdir()
    (d / "frozen.yaml").write_text(RECIPE.format(model="w2v2-lcnn", kwargs="{feature_cache: true, ssl_layer: 1}",
                                                 batch=4, sam="none"))
    out = tmp_path / "r.json"
    assert tt.main(["--device", "cpu", "--recipe-dir", str(d), "--steps", "1", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["recipes"]["frozen"]
    assert row["status"] == "ok" and row["frozen_ssl_cached"] and row["batch"] == 2  # the SSL cap on CPU
    assert row["kwargs_measured"]["feature_cache"] != True  # noqa: E712  (a scratch folder, not the user's cache)
    assert "frozen, random weights" in row["ssl_frontend"][0]
    for key in ("train_utt_per_s", "train_first_epoch_utt_per_s", "score_utt_per_s", "score_cached_utt_per_s"):
        assert row[key] > 0
