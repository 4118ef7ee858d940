"""RawNet2 (Tak et al., "End-to-end anti-spoofing with RawNet2", ICASSP 2021),
the ASVspoof 2021 LA/DF baseline (asvspoof-challenge/2021, ``Baseline-RawNet2``).

Our own implementation.  Module and parameter names follow the official model,
so its released checkpoints load with ``load_weights``; outputs match the
official model on a seeded random model (tests/fixtures/rawnet2_reference).
With the official ``model_config_RawNet.yaml`` it has 17,621,410 parameters,
17.3 M of them in the 3-layer GRU and the 1024-wide head.

Conventions kept from the official code:

* index 1 = bona fide (its labels are ``bonafide`` = 1 and its score is output 1);
* the output is ``log_softmax`` of the logits, as the official ``LogSoftmax``.
  That changes neither cross-entropy training (log_softmax is idempotent) nor
  our score, logit 1 minus logit 0;
* the sinc filters are fixed (computed, not stored), and every residual block
  but the first stores a ``bn1`` that the forward never applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.frontends.sinc import SincFilterbank
from benchmark.models.base import MODELS, Detector, configure


@dataclass(frozen=True)
class RawNet2Config:
    sinc_filters: int = 20
    first_conv: int = 1024           # sinc kernel length (made odd: 1025)
    filts: tuple = ((20, 20), (20, 128), (128, 128))  # blocks 0-1, 2, 3-5
    gru_node: int = 1024
    nb_gru_layer: int = 3
    nb_fc_node: int = 1024


class ResidualBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, first: bool = False):
        super().__init__()
        if not first:
            self.bn1 = nn.BatchNorm1d(in_ch)  # stored for the checkpoint; never applied
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm1d(out_ch)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel_size=3, padding=1)
        if in_ch != out_ch:
            self.conv_downsample = nn.Conv1d(in_ch, out_ch, kernel_size=1)
        self.mp = nn.MaxPool1d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.leaky_relu(self.bn2(self.conv1(x)), 0.3))
        identity = self.conv_downsample(x) if hasattr(self, "conv_downsample") else x
        return self.mp(out + identity)


@MODELS.register("rawnet2")
class RawNet2(Detector):
    """``create_model("rawnet2", **overrides)`` accepts any ``RawNet2Config`` field."""

    config = RawNet2Config()
    num_samples = 64600

    def __init__(self, **overrides):
        super().__init__()
        cfg = self.config = configure(self, overrides)
        small, wide, deep = cfg.filts
        channels = [small, small, wide, deep, deep, deep]

        self.Sinc_conv = SincFilterbank(cfg.sinc_filters, cfg.first_conv)
        self.first_bn = nn.BatchNorm1d(cfg.sinc_filters)
        # blockN.0 / fc_attentionN.0: the official nests each in a one-element Sequential.
        for i, (c_in, c_out) in enumerate(channels):
            setattr(self, f"block{i}", nn.Sequential(ResidualBlock(c_in, c_out, first=i == 0)))
        for i, (_, c_out) in enumerate(channels):
            setattr(self, f"fc_attention{i}", nn.Sequential(nn.Linear(c_out, c_out)))
        self.bn_before_gru = nn.BatchNorm1d(deep[1])
        self.gru = nn.GRU(deep[1], cfg.gru_node, num_layers=cfg.nb_gru_layer, batch_first=True)
        self.fc1_gru = nn.Linear(cfg.gru_node, cfg.nb_fc_node)
        self.fc2_gru = nn.Linear(cfg.nb_fc_node, 2)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """The GRU's last state, ``(B, gru_node)``: what the classifier head reads."""
        x = self.Sinc_conv(wave)
        x = F.selu(self.first_bn(F.max_pool1d(x.abs(), 3)))
        for i in range(6):
            x = getattr(self, f"block{i}")(x)
            # Filter-wise feature map scaling: a sigmoid gate per channel, applied as x * s + s.
            s = torch.sigmoid(getattr(self, f"fc_attention{i}")(x.mean(dim=-1))).unsqueeze(-1)
            x = x * s + s
        x = F.selu(self.bn_before_gru(x)).transpose(1, 2)  # (B, frames, channels)
        x, _ = self.gru(x)
        return x[:, -1]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc2_gru(self.fc1_gru(self.embed(wave))), dim=1)
