"""`run all` dumps the embeddings of models that have an embedding space and the
leaderboard draws their t-SNE maps (WaveSpec's Fig. 3 style)."""

from __future__ import annotations

import json

import numpy as np
import torch

from benchmark.matrix import Matrix
from benchmark.models import MODELS
from benchmark.run_all import run_all
from tests.benchmark.test_readers import make_librisevoc
from tests.benchmark.test_training import TinyDetector

EMBEDDING = "tiny-embedding-test"


@MODELS.register(EMBEDDING)
class TinyEmbeddingDetector(TinyDetector):
    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.log1p(self.conv(wave.unsqueeze(1)).abs().mean(dim=-1))


class HeadOnEmbedding(TinyEmbeddingDetector):
    """The usual layout: forward = head(embed(wave)), so one pass gives both."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embed_calls = 0

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        self.embed_calls += 1
        return super().embed(wave)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.embed(wave)))


def test_one_forward_gives_scores_and_embeddings():
    from benchmark.training.scoring import forward_with_embedding

    torch.manual_seed(0)
    wave = torch.randn(3, 1600)
    model = HeadOnEmbedding(channels=4).eval()
    logits, emb = forward_with_embedding(model, wave)
    assert model.embed_calls == 1  # caught inside forward, not recomputed
    assert "embed" not in vars(model)  # the catching wrapper is gone again
    torch.testing.assert_close(logits, model(wave))
    torch.testing.assert_close(emb, model.embed(wave))
    # A forward that never calls embed() gets one separate embed() call instead.
    other = TinyEmbeddingDetector(channels=4).eval()
    logits, emb = forward_with_embedding(other, wave)
    torch.testing.assert_close(logits, other(wave))
    torch.testing.assert_close(emb, other.embed(wave))


def test_scoring_pass_writes_the_same_embeddings_as_a_separate_dump(tmp_path):
    from benchmark.embeddings import dump_embeddings
    from benchmark.protocols import load_protocol, resolve
    from benchmark.runs import evaluate_model

    roots = {"librisevoc": str(make_librisevoc(tmp_path / "data"))}
    source = resolve(load_protocol("inner-dataset_librisevoc"), roots).tests[0].source()
    model = HeadOnEmbedding(channels=4, num_samples=1600).eval()
    ev = evaluate_model(model, source, tmp_path / "eval", progress=False, n_bootstrap=0,
                        embeddings_npz=tmp_path / "eval" / "embeddings.npz", data_name="mini")
    assert model.embed_calls == -(-len(source.filenames) // 16)  # once per scoring batch, no second pass
    alone = dump_embeddings(model, source, tmp_path / "alone.npz", data_name="mini")
    with np.load(ev.embeddings_path) as a, np.load(alone) as b:
        assert set(a.files) == set(b.files)
        for key in a.files:
            if a[key].dtype.kind == "f":
                np.testing.assert_allclose(a[key], b[key], atol=1e-6)
            else:
                assert (a[key] == b[key]).all()


def test_run_all_records_embeddings_and_the_leaderboard_maps_them(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "emb.yaml").write_text(
        "description: tiny model with embed()\n"
        f"train:\n  model: {{name: {EMBEDDING}, kwargs: {{channels: 4, num_samples: 1600}}}}\n"
        "  optim: {epochs: 1, batch_size: 8, lr: 3.0e-3, num_workers: 0}\n  device: cpu\n  tensorboard: false\n")
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text("seeds: [0]\ngroups:\n  - {name: g, recipes: [emb], protocols: [inner-dataset_librisevoc]}\n")
    roots = {"librisevoc": str(make_librisevoc(tmp_path / "data"))}
    out = tmp_path / "out"
    result = run_all(Matrix.load(matrix, recipe_dir=recipes), roots, out, progress=False, say=lambda _: None)
    assert len(result.finished) == 1 and not result.failed
    base = out / result.finished[0]
    pooled = json.loads((base / "runs" / "LibriSeVoc.json").read_text())
    npz = (base / "runs" / pooled["artifacts"]["embeddings"]).resolve()
    assert npz == (base / "eval/LibriSeVoc/embeddings.npz").resolve()
    with np.load(npz, allow_pickle=False) as data:
        assert data["embeddings"].shape[1] == 4 and len(data["embeddings"]) == len(data["labels"])
        assert {"bonafide", "spoof"} <= set(data["labels"].tolist())
    per_condition = json.loads(next((base / "runs").glob("LibriSeVoc__*.json")).read_text())
    assert "embeddings" not in per_condition["artifacts"]  # one map per test set, not per attack
    maps = list((out / "leaderboard" / "plots").glob("embeddings-*.png"))
    assert len(maps) == 1 and maps[0].stat().st_size > 10_000


def test_the_seed_models_run_all_end_to_end_on_a_protocol(tmp_path):
    """FD-ADD and WaveSpec (tiny widths, tiny random SSL) through `run all` on the LibriSeVoc miniature:
    trained with their own losses, FD-ADD's synthesizer classes filled from the protocol's training
    vocoders, evaluated per vocoder, with t-SNE maps in the leaderboard."""
    from tests.benchmark.test_ssl_frontend import make_tiny

    ssl = make_tiny("wav2vec2", tmp_path / "ssl")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    optim = "{epochs: 1, batch_size: 4, lr: 1.0e-3, num_workers: 0, sampling: oversample}"
    (recipes / "fd-add-tiny.yaml").write_text(
        "description: tiny FD-ADD\ntrain:\n  model: {name: fd-add, kwargs: {widths: [4, 8, 8, 16], "
        "wav2clip_init: false, transform_options: {compression: false}}}\n"
        f"  optim: {optim}\n  device: cpu\n  tensorboard: false\n")
    (recipes / "wavespec-tiny.yaml").write_text(
        f"description: tiny WaveSpec\ntrain:\n  model: {{name: wavespec, kwargs: {{ssl_model: '{ssl}', "
        "ssl_layers: [0, 1, 2], unet_widths: [4, 8, 8], fusion_dim: 8, resnet_widths: [8, 8, 8, 8], "
        "resnet_blocks: [1, 1, 1, 1], cqt_n_bins: 24, cqt_fmin: 261.63}}\n"
        f"  optim: {optim}\n  device: cpu\n  tensorboard: false\n")
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text("seeds: [0]\ngroups:\n  - {name: g, recipes: ['*-tiny'], protocols: [inner-dataset_librisevoc]}\n")
    roots = {"librisevoc": str(make_librisevoc(tmp_path / "data"))}
    out = tmp_path / "out"
    result = run_all(Matrix.load(matrix, recipe_dir=recipes), roots, out, progress=False, say=lambda _: None)
    assert len(result.finished) == 2 and not result.failed
    for run_id in result.finished:
        base = out / run_id
        summary = json.loads((base / "train" / "train_summary.json").read_text())
        pooled = json.loads((base / "runs" / "LibriSeVoc.json").read_text())
        assert 0 <= pooled["metrics"]["eer"] <= 100 and "embeddings" in pooled["artifacts"]
        log = (base / "train" / "train_log.csv").read_text().splitlines()[0]
        if run_id.startswith("fd-add"):
            assert summary["model_kwargs"]["systems"] == sorted(summary["model_kwargs"]["systems"])
            assert len(summary["model_kwargs"]["systems"]) >= 2 and "train_adv" in log
        else:
            assert "train_scl" in log
    assert len(list((out / "leaderboard" / "plots").glob("embeddings-*.png"))) == 2
