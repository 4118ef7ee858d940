"""W2V2-AASIST and WavLM-AASIST: Codecfake's SSL detectors (Xie et al. 2024,
xieyuankun/Codecfake, model.py ``W2VAASIST``), our own implementation.

Back-end on SSL features ``(B, 1024, 201)`` (hidden_states[5] of 64,600 samples):

    Linear(1024 -> 128) per frame -> (B, 1, 128, 201) -> max_pool2d(3, 3) -> BN, SELU
    -> six RawNet2-style residual blocks, filts [128, [1,32], [32,32], [32,64], [64,64]],
       *without* the per-block (1, 3) max-pool of AASIST (the map stays 42 x 67)
    -> BN(64), SELU -> a 1x1-conv attention map (64 -> 128 -> 64) that weights
       a softmax-pooling over time (42 spectral nodes, + pos_S (1, 42, 64))
       and over frequency (67 temporal nodes)
    -> AASIST's graph part: GAT dims [64, 32], pool ratios 0.5, temperatures
       [2, 2, 100, 100], two heterogeneous branches with master nodes
    -> 160-dim readout -> Linear(160, 2).

The graph layers are ``benchmark.models.aasist``'s; module and parameter names
follow Codecfake's ``W2VAASIST`` under ``backend.``, so a state dict extracted
from their released checkpoints (``codecfake_import``) loads strictly.  Their
logit index 0 is bona fide; ours is index 1 (``codecfake_import`` swaps the
output rows).  As in their code, every residual block but the first stores a
``bn1`` that its forward never applies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.frontends.ssl import WAVLM_LARGE, XLSR_300M, SSLFrontend, default_cache
from benchmark.models.aasist import HeterogeneousGraph, ResidualBlock
from benchmark.models.base import MODELS, Detector

#: Parameters of the back-end in Codecfake's released W2V2-AASIST checkpoints
#: (pretrained_model/{codec,vocoder,cotrain_..._CSAM}_w2v2aasist/anti-spoofing_feat_model.pt at
#: xieyuankun/Codecfake 72c32e2, counted over their parameters, BN buffers excluded).
RELEASED_BACKEND_PARAMS = 447_242


class _UnpooledBlock(ResidualBlock):
    """AASIST's residual block without its (1, 3) max-pool (Codecfake comments it out)."""

    def __init__(self, in_ch: int, out_ch: int, first: bool = False):
        super().__init__(in_ch, out_ch, first)
        self.mp = nn.Identity()


class W2V2AASISTBackend(HeterogeneousGraph, nn.Module):
    def __init__(self, in_dim: int = 1024, proj_dim: int = 128,
                 filts: tuple = ((1, 32), (32, 32), (32, 64), (64, 64)), gat_dims: tuple = (64, 32),
                 pool_ratios: tuple = (0.5, 0.5, 0.5, 0.5), temperatures: tuple = (2.0, 2.0, 100.0, 100.0)):
        super().__init__()
        enc = filts[-1][-1]
        gat = gat_dims
        self.LL = nn.Linear(in_dim, proj_dim)
        self.first_bn = nn.BatchNorm2d(1)
        blocks = [_UnpooledBlock(*filts[0], first=True), _UnpooledBlock(*filts[1]), _UnpooledBlock(*filts[2])]
        blocks += [_UnpooledBlock(*filts[3]) for _ in range(3)]
        self.encoder = nn.Sequential(*(nn.Sequential(b) for b in blocks))
        self.first_bn1 = nn.BatchNorm2d(enc)
        self.attention = nn.Sequential(nn.Conv2d(enc, 2 * enc, 1), nn.SELU(), nn.BatchNorm2d(2 * enc),
                                       nn.Conv2d(2 * enc, enc, 1))
        # One spectral node per row left by the (3, 3) pool of the projected features.
        self.pos_S = nn.Parameter(torch.randn(1, proj_dim // 3, enc))
        self._init_graph(enc, gat, temperatures, pool_ratios)

    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        """``(B, in_dim, frames)`` -> the 160-dim readout."""
        x = self.LL(feats.transpose(1, 2)).transpose(1, 2).unsqueeze(1)  # (B, 1, proj, frames)
        x = F.selu(self.first_bn(F.max_pool2d(x, (3, 3))))
        x = F.selu(self.first_bn1(self.encoder(x)))  # (B, C, spectral, temporal)
        w = self.attention(x)
        e_S = (x * torch.softmax(w, dim=-1)).sum(dim=-1).transpose(1, 2) + self.pos_S
        e_T = (x * torch.softmax(w, dim=-2)).sum(dim=-2).transpose(1, 2)
        return self._graph_readout(e_S, e_T)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.out_layer(self.drop(self.embed(feats)))


class SSLDetector(Detector):
    """An SSL front-end plus a back-end on its ``(B, hidden, frames)`` features.

    Keyword options (model ``kwargs`` in a training config):
    ``ssl_model`` (hub id or local dir), ``ssl_layer`` (hidden_states index),
    ``ssl_finetune`` (train the SSL model too), ``feature_cache`` (directory,
    true = ``$CODECFAKE_CACHE/ssl_features``, false/null = off; frozen mode only),
    ``ssl_normalize`` (null = follow the model's feature extractor)."""

    default_ssl = XLSR_300M

    def __init__(self, ssl_model: str | None = None, ssl_layer: int = 5, ssl_finetune: bool = False,
                 feature_cache: str | bool | None = None, ssl_normalize: bool | None = None):
        super().__init__()
        self.frontend = SSLFrontend(ssl_model or self.default_ssl, layer=ssl_layer, finetune=ssl_finetune,
                                    cache_dir=default_cache(feature_cache), normalize=ssl_normalize)


@MODELS.register("w2v2-aasist")
class W2V2AASIST(SSLDetector):
    """Codecfake's W2V2-AASIST: frozen XLS-R 300M hidden_states[5] -> AASIST-style back-end."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.backend = W2V2AASISTBackend(in_dim=self.frontend.num_features)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        return self.backend.embed(self.frontend(wave))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.backend(self.frontend(wave))


@MODELS.register("wavlm-aasist")
class WavLMAASIST(W2V2AASIST):
    """The same back-end on WavLM-large hidden_states[5] (the paper's WavLM variant;
    the layer is our choice, Codecfake's code only ships the XLS-R pipeline)."""

    default_ssl = WAVLM_LARGE
