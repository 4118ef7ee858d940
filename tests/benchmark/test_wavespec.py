"""WaveSpec on tiny random SSL configs: multi-layer SSL output, shapes, frame alignment
between CQT and SSL frames at every scale, the own loss, ablations trained one epoch
through benchmark.training.train, and one-line configuration errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.frontends.ssl import SSLFrontend
from benchmark.models import create_model
from benchmark.models._wavespec_cmff import CQTAlign
from benchmark.models._wavespec_unet import CQTUNet
from benchmark.models.wavespec import ssl_frame_shift
from benchmark.training import TrainConfig, train
from tests.benchmark.test_data import write_built_dataset
from tests.benchmark.test_ssl_frontend import make_tiny

N = 64600
RECIPES = Path(__file__).resolve().parents[2] / "configs" / "recipes"
#: Small everything: the tiny SSL has hidden_states[0..2].
TINY = dict(ssl_layers=[0, 1, 2], unet_widths=[4, 8, 8], fusion_dim=8, resnet_widths=[8, 8, 8, 8],
            resnet_blocks=[1, 1, 1, 1], cqt_n_bins=24, cqt_fmin=261.63)


@pytest.fixture(scope="module")
def tiny_ssl(tmp_path_factory) -> Path:
    return make_tiny("wav2vec2", tmp_path_factory.mktemp("ssl") / "w2v2")


def tiny_model(ssl: Path, **kw):
    torch.manual_seed(0)
    return create_model("wavespec", ssl_model=str(ssl), **{**TINY, **kw})


# --- multi-layer SSL front-end ----------------------------------------------------------------------


def test_multi_layer_ssl_equals_single_layer_per_layer(tiny_ssl, tmp_path):
    wave = torch.randn(2, N)
    multi = SSLFrontend(tiny_ssl, layers=[2, 0, 1])
    assert multi.layer == 2 and multi.layers == (2, 0, 1)
    out = multi(wave)
    assert out.shape == (2, 3, 32, 201) and not out.requires_grad
    for i, layer in enumerate((2, 0, 1)):
        torch.testing.assert_close(out[:, i], SSLFrontend(tiny_ssl, layer=layer)(wave), atol=1e-5, rtol=1e-5)
    # Cached: the stack is stored whole, under a key that differs from every single-layer key.
    cached = SSLFrontend(tiny_ssl, layers=[2, 0, 1], cache_dir=tmp_path)
    first = cached(wave)
    assert cached.cache.misses == 2 and torch.equal(SSLFrontend(tiny_ssl, layers=[2, 0, 1], cache_dir=tmp_path)(wave),
                                                     first)
    single = SSLFrontend(tiny_ssl, layer=2, cache_dir=tmp_path).cache
    assert single.key(wave[0]) != cached.cache.key(wave[0])
    assert SSLFrontend(tiny_ssl, layers=[2], cache_dir=tmp_path).cache.key(wave[0]) != single.key(wave[0])


def test_multi_layer_ssl_finetuned_and_bad_layers(tiny_ssl):
    fe = SSLFrontend(tiny_ssl, layers=[1, 2], finetune=True)
    fe(torch.randn(2, 8000)).square().mean().backward()
    assert fe.ssl.encoder.layers[1].attention.k_proj.weight.grad is not None
    with pytest.raises(ValueError, match=r"layer 3 out of range.*Fix:"):
        SSLFrontend(tiny_ssl, layers=[1, 3])
    with pytest.raises(ValueError, match="layers is empty"):
        SSLFrontend(tiny_ssl, layers=[])


# --- shapes and frame alignment --------------------------------------------------------------------


def test_shapes_embedding_and_logits(tiny_ssl):
    model = tiny_model(tiny_ssl).eval()
    wave = torch.randn(2, N)
    assert model.frames(N) == model.ssl.num_frames(N) == model.cqt.frames_for(N) == 201
    assert model.cqt_image(wave, 201).shape == (2, 2, 24, 201)
    maps = model.scale_maps(wave)
    assert [m.shape for m in maps] == [(2, 8, 201)] * 3
    assert model.embed(wave).shape == (2, 8) and model(wave).shape == (2, 2)
    assert model.num_samples == N and model.own_loss
    # Frozen XLS-R stays out of parameters; backend_params counts everything trainable.
    assert not any(n.startswith("ssl.") for n, _ in model.named_parameters())
    assert model.backend_params() == sum(p.numel() for p in model.parameters())


def test_frozen_ssl_features_come_from_the_cache(tiny_ssl, tmp_path):
    model = tiny_model(tiny_ssl, feature_cache=str(tmp_path)).eval()
    wave = torch.randn(2, 8000)
    with torch.no_grad():
        first = model(wave)
        again = model(wave)
    cache = model.ssl.cache
    assert cache.misses == 2 and cache.hits == 2 and torch.equal(first, again)


def test_cqt_frame_j_is_centred_on_ssl_frame_j(tiny_ssl):
    """SSL frame j sees samples [320 j, 320 j + 400); a click at its centre must peak in CQT frame j."""
    model = tiny_model(tiny_ssl)
    shift, stride = ssl_frame_shift(tuple(model.ssl._conv))
    assert (shift, stride) == (200, 320)
    for j in (3, 100, 197):
        wave = torch.zeros(1, N)
        wave[0, shift + stride * j] = 1.0
        img = model.cqt_image(wave, model.frames(N))
        top = img[0, 0, -1]  # log-magnitude of the highest (shortest-kernel) bin over time
        assert int(top.argmax()) == j


def test_every_scale_maps_back_onto_the_input_frame_grid():
    """U-Net pooling (2x2 average per level) then CMFF's upsampling: a time ramp comes back as
    itself, i.e. the map of scale s at output frame j describes input frame j."""
    frames = 201
    ramp = torch.arange(frames, dtype=torch.float32)
    for scale in (1, 2, 3):
        stride = CQTUNet.time_stride(scale)
        x = ramp.view(1, 1, 1, frames)
        for _ in range(scale - 1):
            x = torch.nn.functional.avg_pool2d(x, (1, 2))
        align = CQTAlign(width=1, bins=1, dim=1, stride=stride).eval()
        torch.nn.init.ones_(align.proj[0].weight)  # identity projection (BN at its initial stats)
        with torch.no_grad():
            out = align(x, frames)[0, 0] * (1 + align.proj[1].eps) ** 0.5
        assert out.shape == (frames,)
        inner = slice(stride, frames - 2 * stride)  # the ends are clamped / edge-padded
        torch.testing.assert_close(out[inner], ramp[inner], atol=1e-4, rtol=0)


def test_unet_scales_shapes_and_no_unused_parameters():
    x = torch.randn(2, 2, 84, 201)
    for taps, scales in (("decoder", (1, 2, 3)), ("encoder", (1, 2, 3)), ("decoder", (3,)), ("encoder", (1,))):
        unet = CQTUNet(2, (4, 8, 16), taps, scales)
        out = unet(x)
        shapes = {1: (2, 4, 84, 201), 2: (2, 8, 42, 100), 3: (2, 16, 21, 50)}
        assert {s: tuple(o.shape) for s, o in out.items()} == {s: shapes[s] for s in scales}
        sum(o.sum() for o in out.values()).backward()
        assert all(p.grad is not None for p in unet.parameters()), (taps, scales)


# --- loss and ablations ------------------------------------------------------------------------------


def test_own_loss_is_ce_plus_weighted_scl(tiny_ssl):
    model = tiny_model(tiny_ssl, w_scl=0.5)
    wave, target = torch.randn(4, 8000), torch.tensor([1, 0, 1, 0])
    torch.manual_seed(1)
    loss, parts = model(wave, target=target)
    assert set(parts) == {"ce", "scl"} and not parts["ce"].requires_grad
    torch.testing.assert_close(loss.detach(), parts["ce"] + 0.5 * parts["scl"])
    loss.backward()
    assert model.scl.center.grad is not None and model.scl.center.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())  # DDP needs no find_unused
    assert not model.ddp_find_unused and tiny_model(tiny_ssl, ssl_finetune=True).ddp_find_unused
    no_scl = tiny_model(tiny_ssl, w_scl=0.0)
    loss, parts = no_scl(wave, target=target)
    assert set(parts) == {"ce"} and no_scl.scl is None


ABLATIONS = sorted(p.stem for p in RECIPES.glob("wavespec*.yaml"))


def test_recipes_exist():
    assert {"wavespec", "wavespec-wave-only", "wavespec-cqt-only", "wavespec-single-scale", "wavespec-no-scl",
            "wavespec-mag-only"} <= set(ABLATIONS)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return write_built_dataset(tmp_path_factory.mktemp("built"), {"train": 8, "validation": 4})


@pytest.mark.parametrize("recipe", ABLATIONS)
def test_recipe_builds_and_trains_one_epoch(recipe, tiny_ssl, built, tmp_path):
    raw = yaml.safe_load((RECIPES / f"{recipe}.yaml").read_text())["train"]
    kwargs = {**raw["model"].get("kwargs", {}), **TINY, "ssl_model": str(tiny_ssl), "num_samples": 4000,
              "feature_cache": False}
    optim = {**raw["optim"], "epochs": 1, "batch_size": 4, "num_workers": 0}
    if recipe == "wavespec":  # the main recipe's run also covers the alternative fusion and SAM (two forwards)
        kwargs["cmff"] = "xattn"
        optim["sam"] = "sam"
    cfg = TrainConfig.from_dict({"data": {"dataset": str(built), "cache_dir": str(tmp_path / "hf")},
                                 "model": {"name": "wavespec", "kwargs": kwargs}, "optim": optim,
                                 "seed": 3, "device": "cpu", "out_dir": str(tmp_path / "run")})
    summary = train(cfg, progress=False)
    assert summary["model_kwargs"] == kwargs
    (row,) = list(csv.DictReader((tmp_path / "run/train_log.csv").open()))
    parts = {"train_ce"} | (set() if kwargs.get("w_scl", 0.5) == 0 else {"train_scl"})
    assert parts <= set(row) and all(float(row[p]) >= 0 for p in parts)
    assert 0.0 <= float(row["dev_eer"]) <= 1.0
    if recipe == "wavespec":  # the trained checkpoint reloads and dumps embeddings for the t-SNE plots
        import numpy as np

        from benchmark.data import BuiltDataset
        from benchmark.embeddings import dump_embeddings
        from benchmark.models import load_weights

        model = load_weights(create_model("wavespec", **kwargs), tmp_path / "run/checkpoints/best.pt")
        dev = BuiltDataset(str(built), "validation", cache_dir=str(tmp_path / "hf"))
        with np.load(dump_embeddings(model, dev, tmp_path / "emb.npz", batch_size=4)) as npz:
            assert npz["embeddings"].shape == (4, 8) and set(npz["labels"]) == {"bonafide", "spoof"}


def test_default_config_builds_offline_with_xlsr_shape(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # XLS-R's known shape: no weights needed until the first forward
    model = create_model("wavespec")
    assert model.ssl.layers == (8, 16, 24) and model.ssl.num_features == 1024 and model.frames(N) == 201
    assert model.cqt.channels == 2 and model.unet.widths == (64, 128, 256) and model.scl.margin == 0.3
    assert model.config.w_scl == 0.5 and model.classifier.conv1.in_channels == 3


# --- configuration errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("kw, fragment", [
    ({"branches": "audio"}, "branches must be one of both, wave, cqt"),
    ({"scales": [3, 1]}, "scales must be an increasing subset of [1, 2, 3]"),
    ({"scales": [4]}, "scales must be an increasing subset"),
    ({"ssl_layers": [8, 16]}, "ssl_layers needs one layer per scale"),
    ({"cqt_hop_length": 160}, "cqt_hop_length 160 must equal the SSL frame stride 320"),
    ({"cmff": "concat"}, "cmff must be 'mscam' or 'xattn'"),
    ({"cmff": "xattn", "fusion_dim": 6, "xattn_heads": 4}, "not divisible by xattn_heads"),
    ({"unet_taps": "middle"}, "unet_taps must be 'decoder' or 'encoder'"),
    ({"w_scl": -1.0}, "w_scl must be >= 0"),
    ({"colour": 1}, "Valid options:"),
])
def test_bad_config_is_one_line(tiny_ssl, kw, fragment):
    with pytest.raises((ValueError, TypeError)) as err:
        tiny_model(tiny_ssl, **kw)
    assert fragment in str(err.value) and "\n" not in str(err.value)
