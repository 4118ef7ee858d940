"""resnet18-spec: FD-ADD's ResNet18 baseline on the log power spectrogram."""

from __future__ import annotations

import librosa
import numpy as np
import torch

from benchmark.models import create_model


def _resnet18_params(in_channels: int, classes: int) -> int:
    """torchvision resnet18 by arithmetic: bias-free convs, BatchNorm (2 per channel), fc."""
    conv = lambda i, o, k: i * o * k * k  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    total = conv(in_channels, 64, 7) + bn(64)
    in_ch = 64
    for width in (64, 128, 256, 512):
        for block in range(2):
            total += conv(in_ch, width, 3) + bn(width) + conv(width, width, 3) + bn(width)
            if in_ch != width:  # first block of layers 2-4: 1x1 stride-2 projection
                total += conv(in_ch, width, 1) + bn(width)
            in_ch = width
    return total + 512 * classes + classes


def test_parameter_count():
    assert _resnet18_params(3, 1000) == 11_689_512  # torchvision's published resnet18 count
    model = create_model("resnet18-spec")
    assert sum(p.numel() for p in model.parameters()) == _resnet18_params(1, 2) == 11_171_266


def test_torchvision_key_names():
    keys = create_model("resnet18-spec").state_dict().keys()
    assert {"conv1.weight", "bn1.running_var", "layer1.1.conv2.weight", "layer2.0.downsample.0.weight",
            "layer4.0.downsample.1.bias", "fc.weight", "fc.bias"} <= set(keys)
    assert not any(k.startswith("frontend") for k in keys)  # the window is rebuilt, not stored


def test_log_spectrogram_matches_independent_librosa_computation():
    model = create_model("resnet18-spec")
    assert model.num_samples == 48000
    wave = 0.1 * np.random.default_rng(0).standard_normal((2, 48000)).astype(np.float32)
    ours = model.frontend(torch.from_numpy(wave))
    assert ours.shape == (2, 1, 257, 257)
    for i in range(2):
        spec = np.abs(librosa.stft(wave[i].astype(np.float64), n_fft=512, hop_length=187, window="hann",
                                   center=True, pad_mode="reflect")) ** 2
        x = np.log(spec + 1e-7)
        expected = (x - x.mean()) / (x.std(ddof=1) + 1e-9)
        assert np.abs(ours[i, 0].double().numpy() - expected).max() < 5e-4  # ~1e-4: float32 logs


def test_forward_train_step_and_score():
    torch.manual_seed(0)
    model = create_model("resnet18-spec").train()
    logits = model(0.1 * torch.randn(2, 48000))
    assert logits.shape == (2, 2)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert model.conv1.weight.grad.abs().sum() > 0
    wave = 0.1 * torch.randn(1, 48000)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model.score(wave), model(wave)[:, 1] - model(wave)[:, 0])
