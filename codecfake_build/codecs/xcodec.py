"""X-Codec (Ye et al., 2024) through ``transformers``: a DAC-style acoustic codec
whose residual VQ also carries the features of a self-supervised speech model
(HuBERT or WavLM), 16 kHz mono at 50 frames/s.

Every released checkpoint (the hf-audio conversions of zhenye234/xcodec) has
8 codebooks of 1024 entries (10 bits) and the target bandwidths 0.5, 1, 1.5,
2 and 4 kbps = 1, 2, 3, 4 and 8 codebooks x 10 bit x 50 frames/s.  Configs
are named by bandwidth for the LibriSpeech HuBERT model (``xcodec@2kbps``)
and by ``<variant>-<bandwidth>`` for the others (``xcodec@wavlm-mls-2kbps``).

Alignment: non-causal and index-aligned (transformers' forward trims the
decoder output to the input length), so ``delay`` is 0.  Like the official
feature extractor (DacFeatureExtractor, hop 320), each clip is zero-padded to
whole frames; the decoder returns exactly ``frames * 320`` samples.

Batching: the semantic model normalises its first convolution over the whole
clip (GroupNorm over time) and attends bidirectionally, and the acoustic
convolutions are non-causal, so padding a clip changes its own output.  Only
clips of the same padded length (the same number of frames) share a pass.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from codecfake_build.codecs.base import CODECS, CodecConfig, CodecUnavailableError
from codecfake_build.codecs.hf_common import TargetBandwidthCodec

_HOP = 320
_BANDWIDTHS = (0.5, 1.0, 1.5, 2.0, 4.0)

#: variant name -> (hub repo, semantic model type, what it was trained on); from the hf-audio model cards.
_VARIANTS = {
    "hubert-librispeech": ("hf-audio/xcodec-hubert-librispeech", "hubert", "speech, LibriSpeech"),
    "wavlm-mls": ("hf-audio/xcodec-wavlm-mls", "wavlm", "speech, MLS English"),
    "wavlm-more-data": ("hf-audio/xcodec-wavlm-more-data", "wavlm", "speech, MLS English + internal data"),
    "hubert-general": ("hf-audio/xcodec-hubert-general", "hubert", "general audio, 200k h"),
    "hubert-general-balanced": ("hf-audio/xcodec-hubert-general-balanced", "hubert",
                                "general audio, more balanced data"),
}
_DEFAULT_VARIANT = "hubert-librispeech"


def _configs() -> list[CodecConfig]:
    out = []
    for variant, (repo, semantic, data) in _VARIANTS.items():
        for kbps in _BANDWIDTHS:
            name = f"{kbps:g}kbps" if variant == _DEFAULT_VARIANT else f"{variant}-{kbps:g}kbps"
            n = int(round(kbps * 1000 / (10 * 16000 / _HOP)))
            out.append(CodecConfig(name, kbps, {"bandwidth": kbps, "repo": repo, "semantic_model": semantic},
                                   f"X-Codec {semantic} ({data}), {n} codebooks x 10 bit at 50 frames/s"))
    return out


@CODECS.register("xcodec")
class XcodecCodec(TargetBandwidthCodec):
    paper = ("Ye, Sun, Lei, Lin, Tan, Dai, Kong, Chen, Pan, Liu, Guo, Xue, 'Codec Does Matter: Exploring the "
             "Semantic Shortcoming of Codec for Audio Language Model', AAAI 2025 (arXiv:2408.17175)")
    sample_rate = 16000
    frame_size = _HOP
    configs = {c.name: c for c in _configs()}
    default_config = "4kbps"
    weights_source = ", ".join(f"https://huggingface.co/{repo}" for repo, _, _ in _VARIANTS.values()) + \
        " (converted from https://huggingface.co/ZhenYe234/xcodec)"
    licence = "weights CC-BY-4.0 (hf-audio model cards); code Apache-2.0 (transformers)"
    model_class = "XcodecModel"
    default_repo = _VARIANTS[_DEFAULT_VARIANT][0]
    rate_key = "sample_rate"
    # transformers' XcodecConfig defaults are the released generator (its conversion script
    # reads ratios [8, 5, 4, 2], D = 256, 1024 bins and bandwidths 0.5-4 kbps from the
    # official config yaml, which all five share); the semantic teacher is HuBERT base
    # (HubertConfig defaults = facebook/hubert-base-ls960; ZhenYe234/hubert_base_general_audio
    # is the same 94.4 M-parameter base architecture) or WavLM base plus (WavLMConfig
    # defaults = microsoft/wavlm-base-plus).  Assumption: the hub sub-configs carry no
    # architecture change beyond those defaults.
    official_architectures = {
        repo: ({} if semantic == "hubert" else {"semantic_model_config": {"model_type": "wavlm"}})
        for repo, semantic, _ in _VARIANTS.values()
    }

    def _check_model(self, model: Any, path: Path) -> None:
        super()._check_model(model, path)
        cfg = model.config
        semantic = cfg.semantic_model_config.model_type
        if semantic != self.config.params["semantic_model"] or int(cfg.hop_length) != _HOP:
            raise CodecUnavailableError(
                f"{self.spec}: the model in {path} uses a {semantic} semantic model and a {cfg.hop_length}-sample "
                f"hop, not {self.repo_id}'s {self.config.params['semantic_model']} and {_HOP}. Fix: pass "
                f"--weights {self.registry_name}=DIR with the {self.repo_id} files or choose the matching config")

    def _padded_length(self, n: int) -> int:
        return max(1, math.ceil(n / _HOP)) * _HOP

    def _encode(self, x: Any, valid: Any) -> Any:
        return self.model.encode(x[:, None, :], bandwidth=self.bandwidth, return_dict=True).audio_codes

    def _decode(self, state: Any, valid: Any) -> Any:
        return self.model.decode(state, return_dict=True).audio_values[:, 0, :]

    def _codes(self, state: Any) -> Any:
        return state
