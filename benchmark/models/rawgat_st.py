"""RawGAT-ST (Tak et al., "End-to-End Spectro-Temporal Graph Attention Networks
for Speaker Verification Anti-Spoofing and Speech Deepfake Detection",
ASVspoof 2021 workshop), the element-wise-multiplication ("mul") fusion.

Our own implementation.  Module and parameter names follow the official
eurecom-asp/RawGAT-ST-antispoofing checkpoints, so ``load_weights`` loads
``RawGAT_ST_mul_Best_epoch.pth`` strictly (440,810 parameters) and eval-mode
logits match the official model (see tests/fixtures/rawgat_st_reference).
Index 1 is bona fide, as in the official code (labels ``bonafide`` = 1, score =
logit 1).  Quirks kept on purpose because the released weights carry them:

* two identical encoders (one feeds the spectral graph, one the temporal graph);
* every residual block stores a 1-input-channel ``conv_1``, used only by the
  first block; later blocks also store a ``bn1`` that is never applied (their
  ``conv1`` reads the block input), as in AASIST;
* the first block adds its 1-channel input to all 32 output channels;
* graph pooling keeps at least 2 nodes, in descending score order, and the
  projections over nodes (``proj1``, ``proj2``, ``proj_node``) therefore fix the
  input length: 64,600 samples, as the official evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.frontends.sinc import SincFilterbank
from benchmark.models.aasist import GraphAttentionLayer
from benchmark.models.base import MODELS, Detector, configure


@dataclass(frozen=True)
class RawGATSTConfig:
    out_channels: int = 70          # sinc filters
    first_conv: int = 128           # sinc kernel length (made odd: 129)
    filts: tuple = ((32, 32), (32, 64), (64, 64))  # official filts[1:], blocks 1-2, 3, 4-6
    gat_dims: tuple = (32, 16)      # spectral/temporal graphs, spectro-temporal graph
    pool_ratios: tuple = (0.64, 0.81, 0.64)
    fused_nodes: int = 12           # both graphs are projected to this many nodes, then multiplied
    freq_mask: bool = True          # official training masks up to 13 adjacent sinc channels per batch


class ResidualBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, first: bool = False):
        super().__init__()
        self.first = first
        if not first:
            self.bn1 = nn.BatchNorm2d(in_ch)  # stored for the checkpoint; never applied
            self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=(2, 3), padding=(1, 1))
        self.conv_1 = nn.Conv2d(1, out_ch, kernel_size=(2, 3), padding=(1, 1))  # only the first block uses it
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=(2, 3), padding=(0, 1))
        if in_ch != out_ch:
            self.conv_downsample = nn.Conv2d(in_ch, out_ch, kernel_size=(1, 3), padding=(0, 1))
        self.mp = nn.MaxPool2d((1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = (self.conv_1 if self.first else self.conv1)(x)
        out = self.conv2(F.selu(self.bn2(out)))
        identity = self.conv_downsample(x) if hasattr(self, "conv_downsample") else x
        return self.mp(out + identity)  # first block: the 1-channel input broadcasts


class NodePool(nn.Module):
    """Keep the top ``ratio`` of nodes (at least 2) by a learned sigmoid score,
    scaled by it, highest score first."""

    def __init__(self, ratio: float, in_dim: int, p: float = 0.3):
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(in_dim, 1)
        self.drop = nn.Dropout(p)

    def kept(self, n_nodes: int) -> int:
        return max(2, int(self.ratio * n_nodes))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        scores = torch.sigmoid(self.proj(self.drop(h)))
        idx = scores.topk(self.kept(h.size(1)), dim=1).indices.expand(-1, -1, h.size(2))
        return torch.gather(h * scores, 1, idx)


def _encoder(filts) -> nn.Sequential:
    (a, b), (c, d), (e, f) = filts
    blocks = [ResidualBlock(a, b, first=True), ResidualBlock(a, b), ResidualBlock(c, d)]
    blocks += [ResidualBlock(e, f) for _ in range(3)]
    # Nested Sequentials only reproduce the official key names (encoder1.i.0.*).
    return nn.Sequential(*(nn.Sequential(blk) for blk in blocks))


@MODELS.register("rawgat-st")
class RawGATST(Detector):
    """``create_model("rawgat-st", **overrides)`` accepts any ``RawGATSTConfig`` field."""

    config = RawGATSTConfig()
    num_samples = 64600

    def __init__(self, **overrides):
        super().__init__()
        cfg = self.config = configure(self, overrides)
        enc_dim, (g1, g2), nodes = cfg.filts[-1][-1], cfg.gat_dims, cfg.fused_nodes

        self.conv_time = SincFilterbank(cfg.out_channels, cfg.first_conv)
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder1 = _encoder(cfg.filts)  # -> spectral graph
        self.encoder2 = _encoder(cfg.filts)  # -> temporal graph
        self.GAT_layer1 = GraphAttentionLayer(enc_dim, g1, temperature=1.0)
        self.pool1 = NodePool(cfg.pool_ratios[0], g1)
        self.GAT_layer2 = GraphAttentionLayer(enc_dim, g1, temperature=1.0)
        self.pool2 = NodePool(cfg.pool_ratios[1], g1)
        self.GAT_layer3 = GraphAttentionLayer(g1, g2, temperature=1.0)
        self.pool3 = NodePool(cfg.pool_ratios[2], g2)

        # Node counts follow from the fixed input: the (3, 3) max-pool and six (1, 3) pools.
        spectral = cfg.out_channels // 3
        temporal = (self.num_samples - self.conv_time.filters.size(-1) + 1) // 3
        for _ in range(6):
            temporal //= 3
        self.proj1 = nn.Linear(self.pool1.kept(spectral), nodes)
        self.proj2 = nn.Linear(self.pool2.kept(temporal), nodes)
        self.proj = nn.Linear(g2, 1)
        self.proj_node = nn.Linear(self.pool3.kept(nodes), 2)

    def _sinc(self, wave: torch.Tensor) -> torch.Tensor:
        filters = self.conv_time.filters
        if self.training and self.config.freq_mask:
            # Official augmentation: zero a random run of 0..13 adjacent filters for the whole batch.
            width = int(torch.randint(0, 14, ()).item())
            start = int(torch.randint(0, filters.size(0) - width + 1, ()).item())
            filters = filters.clone()
            filters[start:start + width] = 0
        return F.conv1d(wave[:, None], filters)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.size(-1) != self.num_samples:
            raise ValueError(f"rawgat-st takes exactly {self.num_samples} samples per clip, got {wave.size(-1)}. "
                             "Fix: crop or tile inputs to num_samples (the data pipeline does this)")
        x = self._sinc(wave).unsqueeze(1)
        x = F.selu(self.first_bn(F.max_pool2d(x.abs(), (3, 3))))  # (B, 1, spectral, frames)

        spectral = self.encoder1(x).abs().amax(dim=3).transpose(1, 2)  # (B, nodes, C)
        out1 = self.proj1(self.pool1(self.GAT_layer1(spectral)).transpose(1, 2))  # (B, g1, fused_nodes)
        temporal = self.encoder2(x).abs().amax(dim=2).transpose(1, 2)
        out2 = self.proj2(self.pool2(self.GAT_layer2(temporal)).transpose(1, 2))

        fused = self.pool3(self.GAT_layer3((out1 * out2).transpose(1, 2)))  # (B, kept, g2)
        return self.proj_node(self.proj(fused).squeeze(-1))
