"""W2V2-LCNN: Codecfake's MFM-LCNN (xieyuankun/Codecfake, model.py ``LCNN``) on
frozen XLS-R 300M ``hidden_states[5]`` (1024 x 201 for 64,600 samples).

The layers are our ``lcnn`` back-end; only the input differs.  Codecfake lays
SSL features out as (batch, 1, 1024 dims, 201 frames), so the flattened map is
32 x (1024 // 16) x (201 // 16) = 24,576 wide, the ``Linear(24576, 160)`` of
their released ``codec_w2v2lcnn`` / ``vocoder_w2v2lcnn`` checkpoints.  Module
names match theirs (``conv1``..``conv9``, ``out``, ``fc_mu``); their logit
index 0 is bona fide (``codecfake_import`` swaps it to our index 1).
"""

from __future__ import annotations

import torch

from benchmark.frontends.ssl import XLSR_300M, SSLFrontend, default_cache
from benchmark.models.base import MODELS
from benchmark.models.lcnn import _LCNNBase


@MODELS.register("w2v2-lcnn")
class W2V2LCNN(_LCNNBase):
    """Options as ``w2v2-aasist``: ``ssl_model``, ``ssl_layer``, ``ssl_finetune``,
    ``feature_cache``, ``ssl_normalize``, plus the LCNN's ``enc_dim``."""

    def __init__(self, ssl_model: str | None = None, ssl_layer: int = 5, ssl_finetune: bool = False,
                 feature_cache: str | bool | None = None, ssl_normalize: bool | None = None, enc_dim: int = 256):
        frontend = SSLFrontend(ssl_model or XLSR_300M, layer=ssl_layer, finetune=ssl_finetune,
                               cache_dir=default_cache(feature_cache), normalize=ssl_normalize)
        super().__init__(frontend, enc_dim)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.frontend(wave).unsqueeze(1)  # (B, 1, dims, frames), Codecfake's SSL layout
        for i in range(1, 10):
            x = getattr(self, f"conv{i}")(x)
        return self.out(x.flatten(1))


