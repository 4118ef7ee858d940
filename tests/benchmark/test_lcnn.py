"""lcnn / lfcc-lcnn: Codecfake's LCNN layout, sizes, shapes and score polarity."""

from __future__ import annotations

import pytest
import torch

from benchmark.models import create_model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,count,flat", [
    # 32 channels x (505 frames // 16) x (80 mels // 16) = 4960, as in Codecfake's mel-LCNN checkpoint
    ("lcnn", 972_514, 4960),
    # 32 x (404 // 16) x (60 // 16) = 2400
    ("lfcc-lcnn", 562_914, 2400),
])
def test_parameter_count(name, count, flat):
    model = create_model(name)
    assert n_params(model) == count
    assert model.out[1].in_features == flat


def test_state_dict_uses_codecfake_names():
    sd = create_model("lcnn").state_dict()
    assert not any(k.startswith("frontend") for k in sd)  # mel filters are not weights
    assert {"conv1.0.weight", "conv2.2.running_mean", "conv3.3.running_var", "conv9.0.bias",
            "out.1.weight", "out.3.weight", "fc_mu.weight"} <= set(sd)
    assert tuple(sd["conv1.0.weight"].shape) == (64, 1, 5, 5) and tuple(sd["fc_mu.weight"].shape) == (2, 256)
    assert "conv2.2.weight" not in sd  # Codecfake's BatchNorms are affine=False


@pytest.mark.parametrize("name", ["lcnn", "lfcc-lcnn"])
def test_forward_and_score_polarity(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    wave = 0.1 * torch.randn(2, model.num_samples)
    with torch.no_grad():
        logits = model(wave)
        score = model.score(wave)
    assert logits.shape == (2, 2)
    torch.testing.assert_close(score, logits[:, 1] - logits[:, 0])


def test_trains():
    torch.manual_seed(0)
    model = create_model("lcnn").train()
    loss = torch.nn.functional.cross_entropy(model(0.1 * torch.randn(2, 64600)), torch.tensor([0, 1]))
    loss.backward()
    assert model.conv1[0].weight.grad.abs().sum() > 0 and model.fc_mu.weight.grad is not None


def test_log_mel_switch():
    assert create_model("lcnn").frontend.log and not create_model("lcnn", log_mel=False).frontend.log
