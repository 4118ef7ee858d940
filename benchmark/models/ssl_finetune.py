"""FD-ADD's fine-tuned SSL baselines, ``w2v2-base-ft`` and ``wavlm-base-ft``: the whole
pretrained model trained end to end, its last hidden state mean-pooled over time,
one Linear to 2 logits (index 1 = bona fide).

Facts from FD-ADD's official code (RedamancyAY/RobustSpeechDetection 5f0d326,
``TransformerBaseLine``): the default checkpoint is ``facebook/wav2vec2-base-960h``,
the raw 3 s waveform goes in without the feature extractor's normalisation, and
the feature is ``hidden_states.mean(1)`` of the last encoder layer (768-d).  The
paper names WavLM-base as the second model: ``microsoft/wavlm-base``.

Our choices where the official code is silent: the CNN feature encoder stays
frozen (the usual wav2vec 2.0 fine-tuning recipe; ``freeze_feature_encoder=False``
trains it too) and the head is a plain ``Linear(hidden, 2)`` trained with the
project's cross-entropy (FD-ADD's heads are one-logit BCE; the two are the same
model family).  HF layerdrop from the checkpoint's config stays on in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from benchmark.frontends.ssl import W2V2_BASE, WAVLM_BASE, SSLFrontend, normalize_waveform, ssl_config
from benchmark.models.base import MODELS, Detector, configure

__all__ = ["W2V2_BASE", "WAVLM_BASE", "Wav2Vec2BaseFinetune", "WavLMBaseFinetune"]


@dataclass(frozen=True)
class SSLFinetuneConfig:
    ssl_model: str | None = None          # hub id or local dir; None = the model's default
    ssl_normalize: bool = False           # FD-ADD feeds the raw waveform
    freeze_feature_encoder: bool = True
    dropout: float = 0.0                  # before the head (none in FD-ADD's description)


class _SSLFinetune(Detector):
    """``create_model(name, **overrides)`` accepts any ``SSLFinetuneConfig`` field."""

    config = SSLFinetuneConfig()
    default_ssl: str = W2V2_BASE
    num_samples = 48000
    crop = "middle"  # FD-ADD evaluates the middle 3 s

    def __init__(self, **overrides):
        super().__init__()
        cfg = self.config = configure(self, overrides)
        model_id = cfg.ssl_model or self.default_ssl
        # Keep every layer (the front-end drops those above ``layer``); embed() reads
        # last_hidden_state, which in stable-layer-norm models (XLS-R, WavLM-large) has the
        # encoder's final LayerNorm that hidden_states[-1] lacks.
        layers = ssl_config(model_id).num_hidden_layers
        self.frontend = SSLFrontend(model_id, layer=layers, finetune=True, normalize=cfg.ssl_normalize,
                                    freeze_feature_encoder=cfg.freeze_feature_encoder)
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(self.frontend.num_features, 2)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        x = normalize_waveform(wave) if self.frontend.normalize else wave
        return self.frontend.ssl(x).last_hidden_state.mean(dim=1)  # (B, frames, hidden) -> (B, hidden)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.embed(wave)))


@MODELS.register("w2v2-base-ft")
class Wav2Vec2BaseFinetune(_SSLFinetune):
    default_ssl = W2V2_BASE


@MODELS.register("wavlm-base-ft")
class WavLMBaseFinetune(_SSLFinetune):
    default_ssl = WAVLM_BASE
