"""ResNet18 on the log power spectrogram: the ResNet baseline input of FD-ADD
(Zhang et al., "Robust AI-Synthesized Speech Detection Using Feature
Decomposition Learning and Synthesizer Feature Augmentation", IEEE TIFS 2025;
RedamancyAY/RobustSpeechDetection).

Our own implementation of a torchvision-style ResNet18 (BasicBlock [2, 2, 2, 2],
widths 64/128/256/512, 7x7 stride-2 stem on one channel, 3x3 max-pool, global
average pool, linear layer to 2 logits, index 1 = bona fide); module names
follow torchvision (``conv1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``,
``fc``) so weights converted from torchvision-style checkpoints load.

Input, as FD-ADD's ``ResNet.preprocess``: 48,000 samples (3 s), a power
spectrogram with torchaudio's defaults (n_fft 512, hop 187, periodic Hann
window, centred, reflect padding; 257 bins x 257 frames), ``log(x + 1e-7)``,
then each example standardised by its own mean and (unbiased) std + 1e-9.
torchaudio's ``Spectrogram`` defaults to power 2, so this is log |STFT|^2.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.frontends.base import power_stft
from benchmark.models.base import MODELS, Detector


class LogSpectrogram(nn.Module):
    """``(B, T)`` -> per-example standardised ``log(|STFT|^2 + 1e-7)``, ``(B, 1, 257, frames)``."""

    def __init__(self, n_fft: int = 512, hop_length: int = 187):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = torch.log(power_stft(wave, self.n_fft, self.hop_length, self.window, "reflect") + 1e-7)
        mean = x.mean(dim=(1, 2), keepdim=True)
        std = x.flatten(1).std(dim=1)[:, None, None]
        return ((x - mean) / (std + 1e-9)).unsqueeze(1)


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    return nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(out_ch)


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_ch, out_ch, 3, stride)
        self.conv2, self.bn2 = _conv_bn(out_ch, out_ch, 3, 1)
        self.relu = nn.ReLU(inplace=True)
        # A 1x1 projection only where the shortcut changes shape (torchvision's rule).
        self.downsample = nn.Sequential(*_conv_bn(in_ch, out_ch, 1, stride)) if (
            stride != 1 or in_ch != out_ch) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


@MODELS.register("resnet18-spec")
class ResNet18Spec(Detector):
    num_samples = 48000

    def __init__(self, widths: tuple = (64, 128, 256, 512), blocks: tuple = (2, 2, 2, 2),
                 n_fft: int = 512, hop_length: int = 187):
        super().__init__()
        self.frontend = LogSpectrogram(n_fft, hop_length)
        self.conv1, self.bn1 = _conv_bn(1, widths[0], 7, 2)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        in_ch = widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            layer = [BasicBlock(in_ch, width, stride)] + [BasicBlock(width, width) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            in_ch = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_ch, 2)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation: He (fan_out) for convolutions, unit BatchNorm.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.frontend(wave)))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(wave))
