"""audioclip: AudioCLIP's ESResNeXt-fbsp audio encoder + FD-ADD's linear head (small configs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.models import create_model
from benchmark.models._audioclip_net import ESResNeXtConfig, ESResNeXtFBSP
from benchmark.models.audioclip import (
    AudioCLIPWeightsError,
    audioclip_audio_state,
    find_audioclip_checkpoint,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "audioclip_reference"
# The fixture's trunk (see its README): widths / 8, depths [2, 1, 1, 1], 4 groups x 16, 16-d embedding.
SMALL = dict(widths=(8, 16, 32, 64), layers=(2, 1, 1, 1), groups=4, width_per_group=16, embed_dim=16)


def _official_checkpoint(path, seed=0):
    """A file laid out as the released AudioCLIP-*.pt: a flat state dict of the whole AudioCLIP
    module: ``audio.*`` (the encoder, with the empty ``audio.fbsp.bias``), CLIP's ``visual.*`` /
    ``transformer.*`` and the logit scales."""
    torch.manual_seed(seed)
    encoder = ESResNeXtFBSP(ESResNeXtConfig(**SMALL))
    with torch.no_grad():
        encoder.fbsp.m.uniform_(0.1, 0.5)
        encoder.bn1.running_var.uniform_(0.5, 2.0)
    state = {f"audio.{k}": v.clone() for k, v in encoder.state_dict().items()}
    state["audio.fbsp.bias"] = torch.empty(0)
    state["visual.conv1.weight"] = torch.randn(4, 3, 3, 3)
    state["transformer.resblocks.0.attn.in_proj_weight"] = torch.randn(6, 2)
    state["logit_scale"] = state["logit_scale_ai"] = state["logit_scale_at"] = torch.tensor(4.6)
    torch.save(state, path)
    return state


def test_encoder_matches_official_esresnext_fbsp(tmp_path):
    from safetensors.torch import load_file

    # The fixture's state dict (official key names, "audio." prefix) re-saved as the release's .pt.
    ckpt = tmp_path / "AudioCLIP-Full-Training.pt"
    torch.save(load_file(str(FIXTURE / "esresnext_fbsp_small.safetensors")), ckpt)
    state = audioclip_audio_state(ckpt)
    net = ESResNeXtFBSP(ESResNeXtConfig(**SMALL)).eval()
    net.load_state_dict(state, strict=True)
    io = np.load(FIXTURE / "io.npz")
    with torch.no_grad():
        out = net(torch.from_numpy(io["wave"]))
    assert out.shape == (2, 16)
    # Row 0 is a [-1, 1] waveform (FD-ADD's input), row 1 the int16 scale AudioCLIP expects.
    assert np.abs(out.numpy() - io["embedding"]).max() < 1e-4


def test_full_size_shapes_and_key_names():
    with torch.device("meta"):
        model = create_model("audioclip")
    names = {k: tuple(v.shape) for k, v in model.audio.state_dict().items()}
    # AudioCLIP's audio tower: ResNeXt-50 32x4d trunk, 1025-bin fbsp, 1024-d embedding.
    assert names["fbsp.m"] == (1025,) and names["window"] == (1654,)
    assert names["conv1.weight"] == (64, 3, 7, 7)
    assert names["layer1.0.conv2.weight"] == (128, 4, 3, 3)
    assert names["layer4.2.conv3.weight"] == (2048, 1024, 1, 1)
    assert names["att1.conv_point.weight"] == (256, 64, 1, 1)
    assert names["att5.conv_depth.weight"] == (2048, 1, 3, 5)
    assert names["fc.weight"] == (1024, 2048)
    assert tuple(model.proj.weight.shape) == (1, 1024)
    assert model.num_samples == 48000 and model.crop == "middle"


def test_detector_loads_audio_keys_and_scores(tmp_path):
    ckpt = tmp_path / "AudioCLIP-Full-Training.pt"
    official = _official_checkpoint(ckpt)
    state = audioclip_audio_state(ckpt)
    assert "fbsp.bias" not in state and not any(k.startswith(("visual.", "transformer.", "logit")) for k in state)
    model = create_model("audioclip", checkpoint=str(ckpt), **SMALL).eval()
    assert torch.equal(model.audio.fbsp.m, official["audio.fbsp.m"])
    assert torch.equal(model.audio.layer1[1].conv2.weight, official["audio.layer1.1.conv2.weight"])
    assert torch.equal(model.audio.bn1.running_var, official["audio.bn1.running_var"])
    wave = torch.randn(3, 8000) * 0.1
    with torch.no_grad():
        logits = model(wave)
        emb = model.embed(wave)
        assert logits.shape == (3, 2) and torch.all(logits[:, 0] == 0)
        assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)  # AudioCLIP's L2 norm
        assert torch.allclose(model.score(wave), model.proj(emb)[:, 0], atol=1e-6)
        assert torch.allclose(model(wave[:1]), logits[:1], atol=1e-4)  # eval: no batch dependence
    # Cross-entropy on (0, z) is FD-ADD's BCE-with-logits on z.
    target = torch.tensor([1, 0, 1])
    ce = torch.nn.functional.cross_entropy(logits, target)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 1], target.float())
    assert ce.item() == pytest.approx(bce.item(), rel=1e-5)


def test_weight_lookup_and_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("CODECFAKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODECFAKE_OFFLINE", "1")
    with pytest.raises(AudioCLIPWeightsError, match=r"AudioCLIP-Full-Training\.pt.*offline.*Fix: download "
                                                    r"https://github.com/AndreyGuzhov/AudioCLIP/releases/") as err:
        create_model("audioclip", **SMALL)
    assert "\n" not in str(err.value)
    with pytest.raises(AudioCLIPWeightsError, match=r"nope\.pt: AudioCLIP checkpoint not found\. Fix"):
        find_audioclip_checkpoint(tmp_path / "nope.pt")
    cached = tmp_path / "cache" / "audioclip" / "AudioCLIP-Partial-Training.pt"
    cached.parent.mkdir(parents=True)
    _official_checkpoint(cached)
    assert find_audioclip_checkpoint(release="partial") == cached
    create_model("audioclip", release="partial", **SMALL)  # found in the cache
    bad = tmp_path / "other.pt"
    torch.save({"encoder.conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(AudioCLIPWeightsError, match=r"other\.pt: no audio\.fbsp"):
        audioclip_audio_state(bad)
    with pytest.raises(AudioCLIPWeightsError, match=r"audio encoder does not fit") as err:
        create_model("audioclip", checkpoint=str(cached), **{**SMALL, "embed_dim": 32})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="release='mini' is not one of"):
        create_model("audioclip", release="mini", pretrained=False)


def test_fbsp_gradients_are_max_normalised():
    net = ESResNeXtFBSP(ESResNeXtConfig(**SMALL))
    net(torch.randn(2, 4000)).pow(2).sum().backward()
    for p in (net.fbsp.m, net.fbsp.fb, net.fbsp.fc):
        assert p.grad.abs().max().item() == pytest.approx(1.0, rel=1e-4)


def test_audioclip_trains_end_to_end(tmp_path, monkeypatch):
    import csv

    from benchmark.models.audioclip import AudioCLIPDetector
    from benchmark.training import TrainConfig, train
    from tests.benchmark.test_data import write_built_dataset

    monkeypatch.setattr(AudioCLIPDetector, "num_samples", 8000)
    built = write_built_dataset(tmp_path / "built", {"train": 8, "validation": 4})
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.items()}
    cfg = TrainConfig.from_dict({
        "data": {"dataset": str(built), "cache_dir": str(tmp_path / "hf")},
        "model": {"name": "audioclip", "kwargs": {"pretrained": False, **kwargs}},
        "optim": {"epochs": 1, "batch_size": 4, "lr": 1e-4, "weight_decay": 1e-4, "num_workers": 0},
        "seed": 0, "device": "cpu", "out_dir": str(tmp_path / "run")})
    train(cfg, progress=False)
    rows = list(csv.DictReader((tmp_path / "run/train_log.csv").open()))
    assert len(rows) == 1 and np.isfinite(float(rows[0]["train_loss"]))
