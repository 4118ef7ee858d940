"""AASIST and AASIST-L (Jung et al., "AASIST: Audio Anti-Spoofing using
Integrated Spectro-Temporal Graph Attention Networks", ICASSP 2022).

Our own implementation.  Module and parameter names follow the official
clovaai/aasist checkpoints, so ``load_weights`` loads ``AASIST.pth`` and
``AASIST-L.pth`` strictly, and eval-mode logits match the official model (see
tests/fixtures/aasist_reference).  Two details are kept on purpose because the
released weights were trained with them:

* every residual block but the first owns a ``bn1`` that the official forward
  computes and then discards (its conv reads the block input), so ``bn1`` is
  stored but not applied;
* ``pool_ratios[3]`` is unused: both heterogeneous branches pool with
  ``pool_ratios[2]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.frontends.sinc import SincFilterbank
from benchmark.models.base import MODELS, Detector, configure


@dataclass(frozen=True)
class AASISTConfig:
    filts: tuple = (70, (1, 32), (32, 32), (32, 64), (64, 64))
    gat_dims: tuple = (64, 32)
    pool_ratios: tuple = (0.5, 0.7, 0.5, 0.5)
    temperatures: tuple = (2.0, 2.0, 100.0, 100.0)
    first_conv: int = 128


AASIST_L = AASISTConfig(filts=(70, (1, 32), (32, 32), (32, 24), (24, 24)), gat_dims=(24, 32),
                        pool_ratios=(0.4, 0.5, 0.7, 0.5))

def _att_weight(dim: int) -> nn.Parameter:
    w = torch.empty(dim, 1)
    nn.init.xavier_normal_(w)
    return nn.Parameter(w)


def _node_bn(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm over all nodes of all graphs, as the official layers do."""
    return bn(x.flatten(0, 1)).view_as(x)


def _pair_products(x: torch.Tensor) -> torch.Tensor:
    """(B, N, D) -> (B, N, N, D) with entry [i, j] = x_i * x_j."""
    return x.unsqueeze(2) * x.unsqueeze(1)


class GraphAttentionLayer(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, temperature: float):
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = _att_weight(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temp = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_drop(x)
        scores = torch.tanh(self.att_proj(_pair_products(x))) @ self.att_weight
        att = torch.softmax(scores.squeeze(-1) / self.temp, dim=-1)
        x = self.proj_with_att(att @ x) + self.proj_without_att(x)
        return F.selu(_node_bn(self.bn, x))


class HtrgGraphAttentionLayer(nn.Module):
    """Heterogeneous graph attention over temporal (type 1) and spectral (type 2)
    nodes, with a stack (master) node that attends to all of them."""

    def __init__(self, in_dim: int, out_dim: int, temperature: float):
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = _att_weight(out_dim)
        self.att_weight22 = _att_weight(out_dim)
        self.att_weight12 = _att_weight(out_dim)
        self.att_weightM = _att_weight(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(0.2)
        self.temp = temperature

    def _edge_scores(self, x: torch.Tensor, n1: int) -> torch.Tensor:
        # One attention vector per edge type; both cross-type directions share w12.
        h = torch.tanh(self.att_proj(_pair_products(x)))
        a, b = h[:, :n1], h[:, n1:]
        top = torch.cat([a[:, :, :n1] @ self.att_weight11, a[:, :, n1:] @ self.att_weight12], dim=2)
        bottom = torch.cat([b[:, :, :n1] @ self.att_weight12, b[:, :, n1:] @ self.att_weight22], dim=2)
        return torch.cat([top, bottom], dim=1).squeeze(-1)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, master: torch.Tensor):
        n1 = x1.size(1)
        x = torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1)
        x = self.input_drop(x)

        att = torch.softmax(self._edge_scores(x, n1) / self.temp, dim=-1)

        m_scores = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # (B, N, 1)
        m_att = torch.softmax(m_scores / self.temp, dim=1).transpose(1, 2)
        master = self.proj_with_attM(m_att @ x) + self.proj_without_attM(master)

        x = self.proj_with_att(att @ x) + self.proj_without_att(x)
        x = F.selu(_node_bn(self.bn, x))
        return x[:, :n1], x[:, n1:], master


class GraphPool(nn.Module):
    """Keep the top ``ratio`` of nodes by a learned sigmoid score, scaled by it."""

    def __init__(self, ratio: float, in_dim: int, p: float = 0.3):
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(in_dim, 1)
        self.drop = nn.Dropout(p)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        scores = torch.sigmoid(self.proj(self.drop(h)))
        k = max(int(h.size(1) * self.ratio), 1)
        idx = scores.topk(k, dim=1).indices.expand(-1, -1, h.size(2))
        return torch.gather(h * scores, 1, idx)


class ResidualBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, first: bool = False):
        super().__init__()
        if not first:
            self.bn1 = nn.BatchNorm2d(in_ch)  # stored for the checkpoint; see module docstring
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=(2, 3), padding=(0, 1))
        if in_ch != out_ch:
            self.conv_downsample = nn.Conv2d(in_ch, out_ch, kernel_size=(1, 3), padding=(0, 1))
        self.mp = nn.MaxPool2d((1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.selu(self.bn2(self.conv1(x))))
        identity = self.conv_downsample(x) if hasattr(self, "conv_downsample") else x
        return self.mp(out + identity)


def _as_tuples(value):
    # YAML configs give lists; the frozen config holds tuples.
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


class HeterogeneousGraph:
    """AASIST's graph back-end (spectral and temporal graphs, two heterogeneous
    stacks with master nodes, max-combined), shared by AASIST and W2V2-AASIST.
    Attribute names are the official checkpoint keys."""

    def _init_graph(self, enc_dim: int, gat: tuple[int, int] | list[int], temps, ratios) -> None:
        self.master1 = nn.Parameter(torch.randn(1, 1, gat[0]))
        self.master2 = nn.Parameter(torch.randn(1, 1, gat[0]))
        self.GAT_layer_S = GraphAttentionLayer(enc_dim, gat[0], temps[0])
        self.GAT_layer_T = GraphAttentionLayer(enc_dim, gat[0], temps[1])
        self.HtrgGAT_layer_ST11 = HtrgGraphAttentionLayer(gat[0], gat[1], temps[2])
        self.HtrgGAT_layer_ST12 = HtrgGraphAttentionLayer(gat[1], gat[1], temps[2])
        self.HtrgGAT_layer_ST21 = HtrgGraphAttentionLayer(gat[0], gat[1], temps[2])
        self.HtrgGAT_layer_ST22 = HtrgGraphAttentionLayer(gat[1], gat[1], temps[2])
        self.pool_S = GraphPool(ratios[0], gat[0])
        self.pool_T = GraphPool(ratios[1], gat[0])
        self.pool_hS1 = GraphPool(ratios[2], gat[1])
        self.pool_hT1 = GraphPool(ratios[2], gat[1])
        self.pool_hS2 = GraphPool(ratios[2], gat[1])
        self.pool_hT2 = GraphPool(ratios[2], gat[1])
        self.drop_way = nn.Dropout(0.2)
        self.drop = nn.Dropout(0.5)
        self.out_layer = nn.Linear(5 * gat[1], 2)

    def _branch(self, out_T, out_S, master, first, second, pool_S, pool_T):
        t, s, m = first(out_T, out_S, master)
        s, t = pool_S(s), pool_T(t)
        t_aug, s_aug, m_aug = second(t, s, m)
        return [self.drop_way(v) for v in (t + t_aug, s + s_aug, m + m_aug)]

    def _graph_readout(self, e_S: torch.Tensor, e_T: torch.Tensor) -> torch.Tensor:
        """Spectral ``(B, nodes, enc)`` and temporal node features -> the 5 * gat[1] readout."""
        out_S = self.pool_S(self.GAT_layer_S(e_S))
        out_T = self.pool_T(self.GAT_layer_T(e_T))
        b = e_S.size(0)
        t1, s1, m1 = self._branch(out_T, out_S, self.master1.expand(b, -1, -1), self.HtrgGAT_layer_ST11,
                                  self.HtrgGAT_layer_ST12, self.pool_hS1, self.pool_hT1)
        t2, s2, m2 = self._branch(out_T, out_S, self.master2.expand(b, -1, -1), self.HtrgGAT_layer_ST21,
                                  self.HtrgGAT_layer_ST22, self.pool_hS2, self.pool_hT2)
        out_T, out_S, master = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        return torch.cat([out_T.abs().amax(dim=1), out_T.mean(dim=1),
                          out_S.abs().amax(dim=1), out_S.mean(dim=1), master.squeeze(1)], dim=1)


@MODELS.register("aasist")
class AASIST(HeterogeneousGraph, Detector):
    """``create_model("aasist", **overrides)`` accepts any ``AASISTConfig`` field."""

    config = AASISTConfig()

    def __init__(self, **overrides):
        super().__init__()
        cfg = self.config = configure(self, {k: _as_tuples(v) for k, v in overrides.items()})
        filts, gat, ratios, temps = cfg.filts, cfg.gat_dims, cfg.pool_ratios, cfg.temperatures
        enc_dim = filts[-1][-1]

        self.frontend = SincFilterbank(filts[0], cfg.first_conv)
        self.first_bn = nn.BatchNorm2d(1)
        # Nested Sequentials only reproduce the official key names (encoder.i.0.*).
        blocks = [ResidualBlock(*filts[1], first=True), ResidualBlock(*filts[2]),
                  ResidualBlock(*filts[3])] + [ResidualBlock(*filts[4]) for _ in range(3)]
        self.encoder = nn.Sequential(*(nn.Sequential(b) for b in blocks))

        # One spectral node per sinc-filter group left by the (3, 3) max-pool.
        self.pos_S = nn.Parameter(torch.randn(1, filts[0] // 3, enc_dim))
        self._init_graph(enc_dim, gat, temps, ratios)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """The 5 * gat_dims[1] readout that feeds the output layer."""
        x = self.frontend(wave).unsqueeze(1)
        x = F.selu(self.first_bn(F.max_pool2d(x.abs(), (3, 3))))
        e = self.encoder(x).abs()  # (B, C, spectral, temporal)

        return self._graph_readout(e.amax(dim=3).transpose(1, 2) + self.pos_S, e.amax(dim=2).transpose(1, 2))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.out_layer(self.drop(self.embed(wave)))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        _check_variant(self, state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


@MODELS.register("aasist-l")
class AASISTL(AASIST):
    config = AASIST_L


def _check_variant(model: AASIST, state_dict) -> None:
    """Turn torch's multi-line size-mismatch report into one actionable line
    that names the AASIST variant the checkpoint was made for."""
    own = model.state_dict()
    clash = next((k for k, v in state_dict.items() if k in own and tuple(v.shape) != tuple(own[k].shape)), None)
    if clash is None:
        return
    fits = [name for name, cls in MODELS.items() if isinstance(cls, type) and issubclass(cls, AASIST)
            and _shapes_fit(cls, state_dict)]
    hint = f"--model {fits[0]}" if fits else "the --model that produced this checkpoint"
    got, want = tuple(state_dict[clash].shape), tuple(own[clash].shape)
    raise ValueError(f"checkpoint does not fit model {model.registry_name}: '{clash}' is {got}, "
                     f"{model.registry_name} expects {want}. Fix: pass {hint}")


def _shapes_fit(cls: type[AASIST], state_dict) -> bool:
    with torch.device("meta"):
        ref = cls().state_dict()
    return ref.keys() == state_dict.keys() and all(ref[k].shape == v.shape for k, v in state_dict.items())
