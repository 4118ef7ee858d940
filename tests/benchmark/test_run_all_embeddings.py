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
