"""AudioCLIP baseline of FD-ADD: AudioCLIP's audio encoder (ESResNeXt-fbsp, Guzhov et al.,
"AudioCLIP: Extending CLIP to Image, Text and Audio", ICASSP 2022) fine-tuned with a linear head.

Facts this module relies on (AndreyGuzhov/AudioCLIP 45327aa; FD-ADD's ``AudioClip_lit``, a
public file of RedamancyAY's deepfake-detection code: the ``models/AudioClip`` folder that
RedamancyAY/Robust-AI-Synthesized-Speech-Detection a0bf83c imports is not in that repository):

* The release ``AudioCLIP-Full-Training.pt`` (v0.1) is a flat state dict of the whole AudioCLIP
  module; its ``audio.*`` entries are the ESResNeXt-fbsp encoder (``_audioclip_net.py``: n_fft
  2048, hop 561, window 1654 Blackman-Harris, normalised fbsp, attention, 1024-d ``fc``), plus an
  empty ``audio.fbsp.bias`` (the front-end has no bias).  ``visual.*``/``transformer.*`` are CLIP's.
* FD-ADD builds ``AudioCLIP(pretrained=<Full-Training.pt>)``, takes the L2-normalised audio
  embedding AudioCLIP's forward returns, and scores it with ``Linear(1024, 1)`` under
  BCE-with-logits; the whole network is trained (Adam, lr 1e-4, weight decay 1e-4).
* FD-ADD feeds its 3 s, 16 kHz float waveforms in [-1, 1] straight in: no resampling to
  AudioCLIP's 44.1 kHz and no int16 scaling, although the encoder maps int16 range to [-1, 1]
  (so the spectrogram sits about 90 dB lower than in AudioCLIP's own training; batch-norm and
  fine-tuning absorb it).  ``input_scale=32768`` gives AudioCLIP's scaling; the rate stays 16 kHz.

Logits: the single BCE logit z becomes ``(0, z)``, so cross-entropy on these two logits equals
FD-ADD's BCE and the score (logit1 - logit0) is z.  Index 1 = bona fide.

Weights: ``checkpoint=PATH``, else ``$CODECFAKE_CACHE/audioclip/<file>``, else a download of the
official release into that cache (atomic).  ``release="partial"`` picks the
``AudioCLIP-Partial-Training.pt`` variant (audio head aligned to vanilla CLIP).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from benchmark.models._audioclip_net import ESResNeXtConfig, ESResNeXtFBSP
from benchmark.models._released_checkpoint import cached_checkpoint, find_released_checkpoint, read_state_dict
from benchmark.models.base import MODELS, Detector, configure

RELEASE_URL = "https://github.com/AndreyGuzhov/AudioCLIP/releases/download/v0.1/"
RELEASE_FILES = {"full": "AudioCLIP-Full-Training.pt", "partial": "AudioCLIP-Partial-Training.pt"}
_PREFIX = "audio."


class AudioCLIPWeightsError(FileNotFoundError):
    """One-line problem locating or reading an AudioCLIP checkpoint."""


def _release_file(release: str) -> str:
    if release not in RELEASE_FILES:
        raise ValueError(f"audioclip: release={release!r} is not one of {sorted(RELEASE_FILES)}")
    return RELEASE_FILES[release]


def _cache_file(release: str) -> Path:
    return cached_checkpoint("audioclip", _release_file(release))


def find_audioclip_checkpoint(path: str | Path | None = None, *, release: str = "full",
                              allow_download: bool = True) -> Path:
    """The explicit ``path``, else the project cache, else a download of the release into it."""
    return find_released_checkpoint(path, owner="AudioCLIP", cache_name="audioclip", filename=_release_file(release),
                                    url=RELEASE_URL + _release_file(release), error=AudioCLIPWeightsError,
                                    allow_download=allow_download, timeout=300.0)


def audioclip_audio_state(path: str | Path | None = None, *, release: str = "full") -> dict[str, torch.Tensor]:
    """The ``audio.*`` entries of an AudioCLIP checkpoint, prefix removed, in
    ``ESResNeXtFBSP``'s naming (``fbsp.m``, ``conv1.weight``, ``layer1.0.conv2.weight``, ``att5.bn.bias``,
    ``fc.weight``, ``window``, ...).  ``path=None`` looks the file up (cache, then download)."""
    file = find_audioclip_checkpoint(path, release=release)
    raw = read_state_dict(file, error=AudioCLIPWeightsError,
                          fix=f"pass the released {_release_file(release)} ({RELEASE_URL})")
    state = {k[len(_PREFIX):]: v for k, v in raw.items() if k.startswith(_PREFIX)}
    # The official front-end registers an empty bias Parameter when built without one.
    if "fbsp.bias" in state and state["fbsp.bias"].numel() == 0:
        del state["fbsp.bias"]
    if "fbsp.m" not in state or "conv1.weight" not in state:
        raise AudioCLIPWeightsError(f"{file}: no audio.fbsp / audio.conv1 weights. Fix: pass the released "
                                    f"{_release_file(release)} ({RELEASE_URL})")
    return state


@dataclass(frozen=True)
class AudioCLIPDetectorConfig:
    checkpoint: str | None = None     # AudioCLIP-*.pt; None = cache, then download
    release: str = "full"             # "full" (FD-ADD's) or "partial"
    pretrained: bool = True           # False: random init (tests, ablations)
    input_scale: float = 1.0          # FD-ADD: [-1, 1] floats as they are; 32768 = AudioCLIP's int16 range
    normalize_embedding: bool = True  # AudioCLIP's forward L2-normalises the audio embedding
    # Encoder shape (AudioCLIP's ESResNeXt-50 32x4d by default; tests shrink it).
    embed_dim: int = 1024
    widths: tuple = (64, 128, 256, 512)
    layers: tuple = (3, 4, 6, 3)
    groups: int = 32
    width_per_group: int = 4


@MODELS.register("audioclip")
class AudioCLIPDetector(Detector):
    """``create_model("audioclip", **overrides)`` accepts any ``AudioCLIPDetectorConfig`` field."""

    config = AudioCLIPDetectorConfig()
    num_samples = 48000  # FD-ADD's 3 s
    crop = "middle"      # FD-ADD evaluates the middle 3 s

    def __init__(self, **overrides):
        super().__init__()
        cfg = configure(self, overrides)
        _release_file(cfg.release)
        self.config = cfg
        self.audio = ESResNeXtFBSP(ESResNeXtConfig(embed_dim=cfg.embed_dim, widths=tuple(cfg.widths),
                                                   layers=tuple(cfg.layers), groups=cfg.groups,
                                                   width_per_group=cfg.width_per_group))
        self.proj = nn.Linear(cfg.embed_dim, 1)
        # Under torch.device("meta") (``models`` listing shapes) there is nothing to load into.
        if cfg.pretrained and not self.proj.weight.is_meta:
            self.load_encoder(cfg.checkpoint)

    def load_encoder(self, path: str | Path | None = None) -> None:
        state = audioclip_audio_state(path, release=self.config.release)
        where = path or _cache_file(self.config.release)
        try:
            self.audio.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()][:1] or [type(exc).__name__]
            raise AudioCLIPWeightsError(f"{where}: audio encoder does not fit ({lines[0][:200]}). Fix: keep the "
                                        "encoder options at AudioCLIP's defaults") from None

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        features = self.audio(wave * self.config.input_scale)
        if self.config.normalize_embedding:
            features = features / features.norm(dim=-1, keepdim=True)
        return features

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        z = self.proj(self.embed(wave))
        return torch.cat([torch.zeros_like(z), z], dim=1)
