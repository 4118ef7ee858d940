"""Mimi (Kyutai, 2024), the speech codec of Moshi, through ``transformers``:
24 kHz mono, 12.5 frames/s, split residual VQ (1 semantic + 31 acoustic
codebooks of 2048 entries = 11 bits each).

Bitrate = codebooks x 11 bit x 12.5 frames/s: 8 codebooks = 1.1 kbps (what
Moshi models), 16 = 2.2 kbps, 32 (all the released checkpoint has) = 4.4 kbps.
The codebook size is checked on load, so a listed bitrate is the real one.

Alignment: every layer is causal (left-padded convolutions, transposed
convolutions trimmed on the right, causal sliding-window attention) and the
reconstruction of sample t sits at output index t, so ``delay`` is 0; the
decoder returns ``frames * 1920`` samples and the framework trims.

Batching: each clip is zero-padded to whole frames (1920 samples).  Then no
convolution adds right padding of its own (every stride divides the length),
so every layer's output at time t depends only on its input up to t, and the
attention masks are causal: samples after a clip's end, whatever they are,
cannot change its codes or the decoded samples before its end.  Clips of
different lengths therefore share one forward pass exactly (tested, also with
noise rather than zeros after the clip).  A checkpoint with non-causal
convolutions or a left-trimmed transposed convolution loses that property and
is batched by equal length only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from codecfake_build.codecs.base import CODECS, CodecConfig, CodecUnavailableError
from codecfake_build.codecs.hf_common import HFCodec

_REPO = "kyutai/mimi"
_HOP = 1920  # 24000 Hz / 12.5 frames/s
_BITS = 11  # 2048-entry codebooks


def _cfg(n_codebooks: int) -> CodecConfig:
    kbps = round(n_codebooks * _BITS * 24000 / _HOP / 1000, 3)
    return CodecConfig(f"{n_codebooks}cb", kbps, {"num_quantizers": n_codebooks},
                       f"Mimi, {n_codebooks} codebooks x {_BITS} bit at 12.5 frames/s"
                       + (" (as in Moshi)" if n_codebooks == 8 else ""))


@CODECS.register("mimi")
class MimiCodec(HFCodec):
    paper = ("Défossez, Mazaré, Orsini, Royer, Pérez, Jégou, Grave, Zeghidour, 'Moshi: a speech-text "
             "foundation model for real-time dialogue', 2024 (arXiv:2410.00037)")
    sample_rate = 24000
    frame_size = _HOP
    configs = {c.name: c for c in (_cfg(8), _cfg(16), _cfg(32))}
    default_config = "8cb"
    weights_source = f"https://huggingface.co/{_REPO}"
    licence = "CC-BY-4.0 (weights); code Apache-2.0 (transformers) / MIT (kyutai-labs/moshi)"
    model_class = "MimiModel"
    default_repo = _REPO
    # The transformers MimiConfig defaults are the kyutai/mimi checkpoint (its config.json:
    # 64 filters, ratios [8, 6, 5, 4], 8-layer 512-wide transformers with a 250-frame window,
    # 32 quantizers of 2048 x 256, 512 upsample groups), so nothing needs overriding.
    official_architectures = {_REPO: {}}

    @property
    def num_quantizers(self) -> int:
        return int(self.config.params["num_quantizers"])

    def _check_model(self, model: Any, path: Path) -> None:
        super()._check_model(model, path)
        cfg = model.config
        if int(cfg.num_quantizers) < self.num_quantizers:
            raise CodecUnavailableError(
                f"{self.spec}: the model in {path} has {cfg.num_quantizers} codebooks, fewer than "
                f"{self.num_quantizers}. Fix: choose a config with at most {cfg.num_quantizers} codebooks "
                f"or pass the {_REPO} weights")
        if int(cfg.codebook_size) != 2 ** _BITS or int(cfg.frame_size) != _HOP:
            raise CodecUnavailableError(
                f"{self.spec}: the model in {path} has {cfg.codebook_size}-entry codebooks and a "
                f"{cfg.frame_size}-sample frame, not {_REPO}'s 2048 and {_HOP}, so the listed bitrate "
                f"would be wrong. Fix: pass the {_REPO} weights")

    def _causal(self) -> bool:
        cfg = self.model.config
        return bool(cfg.use_causal_conv and float(cfg.trim_right_ratio) == 1.0)

    def _padded_length(self, n: int) -> int:
        hop = int(self.model.config.frame_size)
        return max(1, math.ceil(n / hop)) * hop

    def _mixed_lengths_exact(self) -> bool:
        return self._causal()

    def _encode(self, x: Any, valid: Any) -> Any:
        # No padding mask: the causal model needs none (see the module docstring), and
        # transformers' Mimi encoder ignores it anyway.
        return self.model.encode(x[:, None, :], num_quantizers=self.num_quantizers,
                                 use_streaming=False, return_dict=True)

    def _decode(self, state: Any, valid: Any) -> Any:
        y = self.model.decode(state.audio_codes, return_dict=True).audio_values
        return y[:, 0, :]

    def _codes(self, state: Any) -> Any:
        return state.audio_codes

    def init_random(self, seed: int = 0) -> str:
        desc = super().init_random(seed)
        import torch

        # Mimi stores codebooks as running sums (embed_sum / cluster_usage) that transformers
        # starts at zero, so every frame would get code 0; random centroids make codes depend
        # on the audio.  The codebook caches its centroids on first use, so drop that cache.
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.model.modules():
                if hasattr(module, "embed_sum") and hasattr(module, "cluster_usage"):
                    module.embed_sum.copy_(torch.randn(module.embed_sum.shape, generator=gen))
                    module.cluster_usage.fill_(1.0)
                    module._embed = None
        return desc
