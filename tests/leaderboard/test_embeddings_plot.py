"""Embeddings: ``benchmark.embeddings.dump_embeddings`` / ``benchmark embed`` with a tiny model that
has ``embed()``, and the t-SNE PNG of ``leaderboard.embeddings_plot`` / ``leaderboard embeddings``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.data.readers.base import DatasetItem, ItemSource
from benchmark.embeddings import dump_embeddings, model_kwargs_for
from codecfake_build.schema import BONAFIDE, SPOOF
from leaderboard.embeddings_plot import EmbeddingsError, classes_of, load_embeddings, plot_embeddings, subsample

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class TinyEmbedder(nn.Module):
    """Whole clips (num_samples None: the loader buckets by length and reorders), 4-dim embeddings."""

    num_samples = None
    crop = "tile"

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        # sums and peaks: unchanged by the zero padding of mixed-length batches
        feats = torch.stack([wave.square().sum(dim=1), wave.abs().amax(dim=1), wave[:, :50].sum(dim=1)], dim=1)
        return self.proj(feats)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.embed(wave)[:, :2]


def synthetic_source() -> ItemSource:
    items = []
    for i in range(9):
        attack = ["bonafide", "A01", "A02"][i % 3]
        n = 800 + 400 * (i % 4)  # mixed lengths
        wave = (0.1 * (1 + i % 3) * np.sin(np.arange(n) * (0.05 + 0.01 * i))).astype(np.float32)
        items.append(DatasetItem(utt_id=f"utt{i}", label=BONAFIDE if attack == "bonafide" else SPOOF, path=None,
                                 attack=attack, duration=n / 16000, audio=lambda w=wave: (w, 16000)))
    return ItemSource(items, name="synthetic")


def write_npz(path, n_per_class=30, dim=8, seed=0, **extra):
    rng = np.random.default_rng(seed)
    conds = ["bonafide", "A01", "A02", "A03"]
    emb = np.concatenate([rng.normal(3 * i, 1.0, (n_per_class, dim)) for i in range(len(conds))]).astype(np.float32)
    conditions = np.repeat(conds, n_per_class)
    labels = np.where(conditions == "bonafide", "bonafide", "spoof")
    np.savez(path, **{"embeddings": emb, "labels": labels, "conditions": conditions,
                      "filenames": np.asarray([f"u{i}" for i in range(len(emb))]), "model": np.asarray("tiny"),
                      "data": np.asarray("synthetic"), **extra})
    return path


def test_dump_embeddings_in_source_order(tmp_path):
    torch.manual_seed(0)
    model, source = TinyEmbedder(), synthetic_source()
    out = dump_embeddings(model, source, tmp_path / "emb.npz", batch_size=4)
    data = load_embeddings(out)
    assert data["embeddings"].shape == (9, 4) and data["embeddings"].dtype == np.float32
    assert data["filenames"].tolist() == source.filenames
    assert data["labels"].tolist() == ["bonafide", "spoof", "spoof"] * 3
    assert data["conditions"].tolist() == ["bonafide", "A01", "A02"] * 3
    assert (str(data["model"]), str(data["data"])) == ("TinyEmbedder", "synthetic")
    # each row is that file's own embedding, whatever order the length buckets ran in
    with torch.no_grad():
        expected = model.embed(torch.from_numpy(source[4].wave)[None])[0].numpy()
    np.testing.assert_allclose(data["embeddings"][4], expected, atol=1e-6)
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_dump_refuses_a_model_without_embed(tmp_path):
    with pytest.raises(ValueError, match="model Linear has no embed\\(wave\\) method.*Fix:"):
        dump_embeddings(nn.Linear(2, 2), synthetic_source(), tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_model_kwargs_come_from_the_run_summary(tmp_path):
    ckpt = tmp_path / "run" / "checkpoints" / "best.pt"
    ckpt.parent.mkdir(parents=True)
    (tmp_path / "run" / "train_summary.json").write_text(json.dumps({"model": "fd-add", "model_kwargs": {"systems": ["a"]}}))
    assert model_kwargs_for(ckpt, "fd-add") == {"systems": ["a"]}
    assert model_kwargs_for(ckpt, "wavespec") == {}


def test_plot_writes_a_png(tmp_path):
    npz = write_npz(tmp_path / "emb.npz")
    png = plot_embeddings(npz, tmp_path / "plots" / "tsne.png", max_per_class=20, seed=0)
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_subsample_caps_each_class_reproducibly():
    classes = np.repeat(["bonafide", "A01", "A02"], [50, 5, 30])
    keep = subsample(classes, 20, seed=1)
    assert {c: int((classes[keep] == c).sum()) for c in ("bonafide", "A01", "A02")} == {"bonafide": 20, "A01": 5, "A02": 20}
    assert keep.tolist() == subsample(classes, 20, seed=1).tolist() and keep.tolist() == sorted(keep.tolist())
    assert len(subsample(classes, None, seed=1)) == 85


def test_classes_fall_back_to_labels(tmp_path):
    assert classes_of({"embeddings": np.zeros((2, 3)), "labels": np.asarray(["bonafide", "spoof"])}).tolist() == \
        ["bonafide", "spoof"]


def test_npz_without_embeddings_is_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, labels=np.asarray(["bonafide"]))
    with pytest.raises(EmbeddingsError, match=r"bad.npz: no 'embeddings' array \(has: labels\)\. Fix: "):
        plot_embeddings(bad, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_umap_without_the_package_is_one_line(tmp_path):
    import importlib.util

    if importlib.util.find_spec("umap") is not None:
        pytest.skip("umap-learn is installed")
    with pytest.raises(EmbeddingsError, match="umap-learn"):
        plot_embeddings(write_npz(tmp_path / "e.npz", n_per_class=5), tmp_path / "u.png", method="umap")


def test_leaderboard_cli(tmp_path, capsys):
    from leaderboard.cli import main

    npz = write_npz(tmp_path / "emb.npz", n_per_class=10)
    assert main(["embeddings", "--npz", str(npz), "--out", str(tmp_path / "e.png")]) == 0
    assert (tmp_path / "e.png").read_bytes().startswith(PNG_MAGIC)
    np.savez(tmp_path / "bad.npz", other=np.zeros(3))
    assert main(["embeddings", "--npz", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "b.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no 'embeddings' array" in err and len(err.splitlines()) == 1


def test_benchmark_embed_cli(tmp_path, monkeypatch, capsys):
    """``benchmark embed`` on an ASVspoof 2019 LA miniature, then the plot from its npz."""
    from benchmark.cli import main
    from tests.benchmark.test_readers import make_asvspoof2019

    root = make_asvspoof2019(tmp_path / "la")
    monkeypatch.setattr("benchmark.models.create_model", lambda name, **kw: TinyEmbedder())
    out = tmp_path / "emb.npz"
    assert main(["embed", "--model", "tiny-embedder", "--data", f"asvspoof2019-la={root}", "--split", "train",
                 "--out", str(out), "--device", "cpu"]) == 0
    data = load_embeddings(out)
    assert data["filenames"].tolist() == ["LA_T_1000001", "LA_T_1138215", "LA_T_1271820"]
    assert data["conditions"].tolist() == ["A02", "bonafide", "A01"]
    assert str(data["data"]) == "asvspoof2019-la:train"
    assert main(["embed", "--model", "tiny-embedder", "--data", f"asvspoof2019-la={root}", "--split", "nope",
                 "--out", str(out)]) == 2
    assert "no items in split 'nope'" in capsys.readouterr().err
