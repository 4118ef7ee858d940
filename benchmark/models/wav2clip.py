"""Wav2CLIP baseline of FD-ADD: ResNet18 on the log spectrogram, initialised from
Wav2CLIP's audio encoder (Wu et al., "Wav2CLIP: Learning Robust Audio
Representations from CLIP", ICASSP 2022; descriptinc/lyrebird-wav2clip).

Facts this module relies on (lyrebird-wav2clip 1864b39, RedamancyAY/RobustSpeechDetection 5f0d326):

* The release ``Wav2CLIP.pt`` (v0.1.0-alpha) is a flat state dict read with
  ``torch.hub.load_state_dict_from_url``.  Its ``audio_encoder.*`` entries are a
  torchvision-style ResNet18 (BasicBlock [2, 2, 2, 2], widths 64..512, one-channel
  7x7 stride-2 stem, 3x3 max-pool, global average pool, *no* ``fc``) plus the
  ``audio_encoder.spectrogram.window`` buffer of its torchaudio front-end;
  ``audio_transform.*`` is a 512-512-512 MLP used only for CLIP's embedding space.
* Wav2CLIP's own front-end uses hop 353 and standardises over the whole batch.
  FD-ADD replaces it with hop 187 (257 x 257 for 3 s) and per-example
  standardisation: exactly ``resnet18-spec``'s front-end, so this detector is
  ``resnet18-spec`` with Wav2CLIP's encoder weights.  ``hop_length=353`` gives
  Wav2CLIP's own framing; the batch-wide standardisation is not offered because
  it makes a clip's score depend on the other clips of its batch.

Weights: ``checkpoint=PATH``, else ``$CODECFAKE_CACHE/wav2clip/Wav2CLIP.pt``,
else a download of the official release into that cache (atomic).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from benchmark.models._released_checkpoint import cached_checkpoint, find_released_checkpoint, read_state_dict
from benchmark.models.base import MODELS, configure
from benchmark.models.resnet import ResNet18Spec

WAV2CLIP_URL = "https://github.com/descriptinc/lyrebird-wav2clip/releases/download/v0.1.0-alpha/Wav2CLIP.pt"
CHECKPOINT_NAME = "Wav2CLIP.pt"
_PREFIX = "audio_encoder."


class Wav2CLIPWeightsError(FileNotFoundError):
    """One-line problem locating or reading Wav2CLIP.pt."""


def _cache_file() -> Path:
    return cached_checkpoint("wav2clip", CHECKPOINT_NAME)


def find_wav2clip_checkpoint(path: str | Path | None = None, *, allow_download: bool = True) -> Path:
    """The explicit ``path``, else the project cache, else a download of the release into it."""
    return find_released_checkpoint(path, owner="Wav2CLIP", cache_name="wav2clip", filename=CHECKPOINT_NAME,
                                    url=WAV2CLIP_URL, error=Wav2CLIPWeightsError, allow_download=allow_download,
                                    timeout=120.0)


def wav2clip_audio_encoder_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """Wav2CLIP's ResNet18 audio encoder as a state dict in ``resnet18-spec``'s key naming
    (``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``, ...;
    no ``fc``).  ``path=None`` looks the file up (cache, then download)."""
    file = find_wav2clip_checkpoint(path)
    raw = read_state_dict(file, error=Wav2CLIPWeightsError, fix=f"pass the released Wav2CLIP.pt ({WAV2CLIP_URL})")
    state = {}
    for key, value in raw.items():
        if not key.startswith(_PREFIX):
            continue  # audio_transform / image_transform: CLIP-space projections, not the encoder
        name = key[len(_PREFIX):]
        # The torchaudio window is recomputed by our front-end; an fc would be a classifier head.
        if name.startswith(("spectrogram.", "fc.")):
            continue
        state[name] = value
    if "conv1.weight" not in state or not any(k.startswith("layer4.") for k in state):
        raise Wav2CLIPWeightsError(f"{file}: no audio_encoder.conv1/layer4 weights. Fix: pass the released "
                                   f"Wav2CLIP.pt ({WAV2CLIP_URL})")
    return state


@dataclass(frozen=True)
class Wav2CLIPConfig:
    checkpoint: str | None = None    # Wav2CLIP.pt; None = cache, then download
    pretrained: bool = True          # False: random init (tests, ablations)
    hop_length: int = 187            # FD-ADD's framing; 353 = Wav2CLIP's own
    n_fft: int = 512
    widths: tuple = (64, 128, 256, 512)
    blocks: tuple = (2, 2, 2, 2)


@MODELS.register("wav2clip")
class Wav2CLIPDetector(ResNet18Spec):
    """``create_model("wav2clip", **overrides)`` accepts any ``Wav2CLIPConfig`` field."""

    config = Wav2CLIPConfig()
    crop = "middle"  # FD-ADD evaluates the middle 3 s

    def __init__(self, **overrides):
        cfg = configure(self, overrides)
        super().__init__(widths=tuple(cfg.widths), blocks=tuple(cfg.blocks), n_fft=cfg.n_fft,
                         hop_length=cfg.hop_length)
        self.config = cfg
        # Under torch.device("meta") (``models`` listing shapes) there is nothing to load into.
        if cfg.pretrained and not self.conv1.weight.is_meta:
            self.load_encoder(cfg.checkpoint)

    def load_encoder(self, path: str | Path | None = None) -> None:
        state = wav2clip_audio_encoder_state(path)
        where = path or _cache_file()
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            first = [ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln][:1] or [type(exc).__name__]
            raise Wav2CLIPWeightsError(f"{where}: encoder does not fit this ResNet ({first[0][:160]}). Fix: keep "
                                       "widths/blocks at ResNet18's (64..512, [2, 2, 2, 2])") from None
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise Wav2CLIPWeightsError(f"{where}: encoder keys do not fit: missing {missing[:3]}, unexpected "
                                       f"{list(unexpected)[:3]}. Fix: pass the released Wav2CLIP.pt")
