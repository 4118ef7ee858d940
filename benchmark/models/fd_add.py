"""FD-ADD (Zhang, Hua, Zhang, Guo and Xiang, "Robust AI-Synthesized Speech Detection Using
Feature Decomposition Learning and Synthesizer Feature Augmentation", IEEE TIFS 2025).

Our own implementation of the paper, with the official model code
(RedamancyAY/RobustSpeechDetection, commit 5f0d326) read for what the paper leaves open.

Network: ``resnet18-spec``'s front-end and ResNet18 (log power spectrogram, 48,000 samples ->
257 x 257; the issue writes |STFT|, the official code uses torchaudio's default power 2, kept
here: after the per-example standardisation log|X|^2 and log|X| differ only through the 1e-7
floor) split after layer3 (B, 256, 17, 17).  The content stream is layer4; the
synthesizer stream is a separate copy of layer4 (copied *after* an optional Wav2CLIP
initialisation, as the official code does).  Each stream: average pool, L2 normalise x 10.
Heads are weight-normalised linear layers without bias behind dropout 0.1: speed (16),
compression (10), synthesizer (N_s + 1, class 0 = real) and the final 2D -> 1 head on
concat(content, synthesizer).

Scoring: ``model(wave)`` returns ``[0, z]`` with z the final logit, so score = z and the
softmax over the two logits is sigmoid(z), the probability the BCE objective models.

Training (``own_loss``): ``model(wave, target=, extras=)`` returns Eq. 14,
``L_cls + b0 L_aug + b1 (L_cls_s + 0.5 L_con_s) + b2 (L_cls_c + L*_cls_s) + b3 L_con_cls``,
and the unweighted parts ``cls, aug, cls_s, con_s, cls_c, adv, con_cls`` (zero when switched
off).  The adversarial term L*_cls_s re-runs the content layer4 on *detached* layer3 output and
applies the synthesizer head with *detached* weights, so inside the one backward pass only the
content stream receives its gradient (no second optimizer, so DDP, SAM and AMP work as for any
model).  The official code gets the same effect by toggling ``requires_grad`` between two
backward passes.

Differences from the official code (each an option, paper behaviour by default):

* ``blend_mode``: the official ``exchange_mu_std`` overwrites the blended feature with noise on
  the original (``"official"``); ``"paper"`` applies Algorithm 1 (mixing, then noise).
* ``margin``: the paper's alpha = 0.4 for both contrastive terms; the official code uses 0.1 for
  the binary one and, for the synthesizer one, an L2-distance variant with alpha 2.5.
* ``label_smoothing``: the official cross-entropies use 0.1; the paper does not mention it (0).
* ``specaugment_axes``: the official batch SpecAugment swaps the frequency and time axes.
* The official trainer's Adam uses weight decay 1e-5 (the paper: 0.01; the recipe follows the paper).
* The official synthesizer-head logits on the content stream are also computed with fresh
  dropout on the re-run; ours too.  BatchNorm running statistics of layer4 are *not* updated
  twice per step (the official re-run updates them again).

Ablations (Tables X-XII) are config switches: ``streams`` ("dual", "single", "content",
"synthesizer"), ``shuffle``, ``blend``, ``adversarial``, ``pseudo_labels`` ("speed_compression"
or "f0").  "content"/"synthesizer" follow the official ``one_stem`` modes: one layer4, the
final head on that stream's feature, with that stream's losses plus L_con_cls on it.
"single" (our reading of the single-stream row; the official code has no such mode): one
layer4 whose feature serves as both content and synthesizer feature, all heads on it, no
shuffle and no adversarial term (both need two streams).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from benchmark.models._fd_add_losses import (
    blend_features,
    bn_running_stats_kept,
    contrastive_loss,
    focal_loss,
    shuffle_pair_labels,
    spec_augment,
    uniform_cross_entropy,
)
from benchmark.models.base import MODELS, Detector, configure
from benchmark.models.resnet import ResNet18Spec

NUM_SPEEDS = 16
NUM_COMPRESSIONS = 10
STREAMS = ("dual", "single", "content", "synthesizer")
PSEUDO_LABELS = ("speed_compression", "f0")
LOSS_PARTS = ("cls", "aug", "cls_s", "con_s", "cls_c", "adv", "con_cls")


@dataclass(frozen=True)
class FDADDConfig:
    streams: str = "dual"                 # "dual" | "single" | "content" | "synthesizer"
    pseudo_labels: str = "speed_compression"  # or "f0" (Table XII): MSE on the YIN pitch track
    shuffle: bool = True                  # L_aug (feature shuffle + focal loss)
    blend: bool = True                    # Algorithm 1 before the final classification
    blend_mode: str = "paper"             # "official": only the noise takes effect
    blend_eta: float = 10.0               # noise level, percent (official randint(0, 10) / 100)
    adversarial: bool = True              # L*_cls_s
    specaugment: bool = True
    specaugment_axes: str = "paper"       # "official": its masks swap frequency and time
    betas: tuple = (1.0, 0.5, 0.5, 0.5)
    synth_con_weight: float = 0.5         # the 0.5 in b1 (L_cls_s + 0.5 L_con_s)
    margin: float = 0.4                   # Eq. 4 alpha
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0          # official: 0.1
    dropout: float = 0.1
    feature_scale: float = 10.0
    #: Extra PseudoLabelConfig fields for the training transform (e.g. {compression: false}
    #: without ffmpeg, {p_compression: 0.5}); speed and compression are on by default.
    transform_options: dict = field(default_factory=dict)
    wav2clip_init: bool = False           # start stem + layer4 (and its copy) from Wav2CLIP
    wav2clip_checkpoint: str | None = None  # Wav2CLIP.pt; None = cache, then download
    widths: tuple = (64, 128, 256, 512)   # smaller only for tests
    blocks: tuple = (2, 2, 2, 2)
    n_fft: int = 512
    hop_length: int = 187


def _head(in_dim: int, out_dim: int) -> nn.Module:
    return weight_norm(nn.Linear(in_dim, out_dim, bias=False))


def _choice(name: str, value: str, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"fd-add: {name}={value!r} is not one of {', '.join(allowed)}. Fix: pick one of those")


@MODELS.register("fd-add")
class FDADD(Detector):
    """``create_model("fd-add", systems=[...], **overrides)``; overrides are ``FDADDConfig`` fields."""

    num_samples = 48000
    crop = "middle"
    own_loss = True
    uses_systems = True
    config = FDADDConfig()

    def __init__(self, systems: list[str] | tuple = (), **overrides: Any):
        super().__init__()
        cfg = configure(self, {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
        _choice("streams", cfg.streams, STREAMS)
        _choice("pseudo_labels", cfg.pseudo_labels, PSEUDO_LABELS)
        _choice("blend_mode", cfg.blend_mode, ("paper", "official"))
        _choice("specaugment_axes", cfg.specaugment_axes, ("paper", "official"))
        if cfg.streams != "dual" and (cfg.shuffle or cfg.adversarial):
            raise ValueError(f"fd-add: streams={cfg.streams!r} has one stream, but shuffle/adversarial need two. "
                             "Fix: set shuffle: false and adversarial: false")
        if len(cfg.betas) != 4:
            raise ValueError(f"fd-add: betas={cfg.betas} must hold 4 weights (b0..b3 of Eq. 14). Fix: e.g. [1.0, 0.5, 0.5, 0.5]")
        self.config = cfg
        self.systems = list(systems)

        backbone = ResNet18Spec(widths=tuple(cfg.widths), blocks=tuple(cfg.blocks), n_fft=cfg.n_fft,
                                hop_length=cfg.hop_length)
        del backbone.fc  # FD-ADD's heads replace the 2-way classifier
        self.backbone = backbone
        if cfg.wav2clip_init and not backbone.conv1.weight.is_meta:
            self.load_wav2clip(cfg.wav2clip_checkpoint)
        dim = cfg.widths[-1]
        self.has_content = cfg.streams in ("dual", "single", "content")
        self.has_synth = cfg.streams in ("dual", "single", "synthesizer")
        # backbone.layer4 is the content stream (or the only stream); the dual model adds a copy.
        self.synth_layer4 = copy.deepcopy(backbone.layer4) if cfg.streams == "dual" else None
        self.dropout = nn.Dropout(cfg.dropout)
        if self.has_content:
            if cfg.pseudo_labels == "speed_compression":
                self.speed_head = _head(dim, NUM_SPEEDS)
                self.compression_head = _head(dim, NUM_COMPRESSIONS)
            else:
                from benchmark.augment.f0 import f0_frames

                # Official ``cls_f0``: regress the (192-frame) YIN pitch track / 9000 with MSE.
                self.f0_head = _head(dim, f0_frames(self.num_samples, self.sample_rate))
        if self.has_synth:
            self.synth_head = _head(dim, len(self.systems) + 1)
        self.final_head = _head(2 * dim if cfg.streams == "dual" else dim, 1)

    # --- weights -------------------------------------------------------------------------------

    def load_wav2clip(self, path: str | None = None) -> None:
        """Stem + layer1-4 from Wav2CLIP's audio encoder (helper C's loader); call before the
        synthesizer copy of layer4 is made, so both streams start from the same weights."""
        from benchmark.models.wav2clip import Wav2CLIPWeightsError, wav2clip_audio_encoder_state

        state = wav2clip_audio_encoder_state(path)
        try:
            missing, unexpected = self.backbone.load_state_dict(state, strict=False)
        except RuntimeError:
            raise Wav2CLIPWeightsError(f"{path or 'Wav2CLIP.pt'}: encoder does not fit fd-add's ResNet18. "
                                       "Fix: keep widths/blocks at ResNet18's (64..512, [2, 2, 2, 2])") from None
        if missing or unexpected:
            raise Wav2CLIPWeightsError(f"{path or 'Wav2CLIP.pt'}: encoder keys do not fit: missing {list(missing)[:3]}, "
                                       f"unexpected {list(unexpected)[:3]}. Fix: pass the released Wav2CLIP.pt")

    # --- features ------------------------------------------------------------------------------

    def hidden_state(self, spec: torch.Tensor) -> torch.Tensor:
        """The shared main stream: stem + layer1-3, ``(B, 256, 17, 17)`` at the paper's setting."""
        b = self.backbone
        return b.layer3(b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(spec)))))))

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone.avgpool(x).flatten(1), dim=1) * self.config.feature_scale

    def stream_features(self, hidden: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(content, synthesizer) features; one stream's feature fills both in "single"."""
        streams = self.config.streams
        first = self._pool(self.backbone.layer4(hidden))
        if streams == "dual":
            return first, self._pool(self.synth_layer4(hidden))
        if streams == "single":
            return first, first
        return (first, None) if streams == "content" else (None, first)

    def final_logit(self, content: torch.Tensor | None, synth: torch.Tensor | None) -> torch.Tensor:
        if self.config.streams == "dual":
            feat = torch.cat([content, synth], dim=1)
        else:
            feat = content if content is not None else synth
        return self.final_head(self.dropout(feat)).squeeze(-1)

    # --- forward -------------------------------------------------------------------------------

    def forward(self, wave: torch.Tensor, target: torch.Tensor | None = None,
                extras: dict[str, torch.Tensor] | None = None) -> Any:
        spec = self.backbone.frontend(wave)
        training_objective = target is not None
        if training_objective and self.training and self.config.specaugment:
            spec = spec_augment(spec, axes=self.config.specaugment_axes)
        hidden = self.hidden_state(spec)
        content, synth = self.stream_features(hidden)
        if not training_objective:
            z = self.final_logit(content, synth)
            return torch.stack([torch.zeros_like(z), z], dim=1)
        return self.objective(hidden, content, synth, target, extras or {})

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """The feature the final head reads, unblended: concat(content, synthesizer) ``(B, 2D)``
        for the dual model, the one stream's ``(B, D)`` otherwise (t-SNE plots, ``benchmark embed``)."""
        content, synth = self.stream_features(self.hidden_state(self.backbone.frontend(wave)))
        if self.config.streams == "dual":
            return torch.cat([content, synth], dim=1)
        return content if content is not None else synth

    def objective(self, hidden: torch.Tensor, content: torch.Tensor | None, synth: torch.Tensor | None,
                  target: torch.Tensor, extras: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        b0, b1, b2, b3 = cfg.betas
        y = target.float()
        zero = hidden.new_zeros((), dtype=torch.float32)
        parts = {name: zero for name in LOSS_PARTS}

        blend_c, blend_s = content, synth
        if cfg.blend:
            blend_c = None if content is None else blend_features(content, target, eta=cfg.blend_eta, mode=cfg.blend_mode)
            if cfg.streams == "single":
                blend_s = blend_c
            elif synth is not None:
                blend_s = blend_features(synth, target, eta=cfg.blend_eta, mode=cfg.blend_mode)
        parts["cls"] = F.binary_cross_entropy_with_logits(self.final_logit(blend_c, blend_s).float(), y)
        if cfg.shuffle:
            perm = torch.randperm(y.numel(), device=y.device)
            shuffled = self.final_logit(blend_c, blend_s[perm])
            parts["aug"] = focal_loss(shuffled, shuffle_pair_labels(y, perm), cfg.focal_alpha, cfg.focal_gamma)
        if self.has_synth:
            synth_label = self._extra(extras, "synthesizer")
            parts["cls_s"] = self._ce(self.synth_head(self.dropout(synth)), synth_label)
            parts["con_s"] = contrastive_loss(synth, synth_label, cfg.margin)
        if self.has_content:
            if cfg.pseudo_labels == "speed_compression":
                parts["cls_c"] = (self._ce(self.speed_head(self.dropout(content)), self._extra(extras, "speed"))
                                  + self._ce(self.compression_head(self.dropout(content)),
                                             self._extra(extras, "compression")))
            else:
                f0 = self._extra(extras, "f0").float()
                parts["cls_c"] = F.mse_loss(self.f0_head(self.dropout(content)).float(), f0)
        if cfg.adversarial:
            parts["adv"] = self.adversarial_loss(hidden)
        joint = content if synth is None else synth if content is None else (
            content if cfg.streams == "single" else torch.cat([content, synth], dim=1))
        parts["con_cls"] = contrastive_loss(joint, target, cfg.margin)

        loss = (parts["cls"] + b0 * parts["aug"] + b1 * (parts["cls_s"] + cfg.synth_con_weight * parts["con_s"])
                + b2 * (parts["cls_c"] + parts["adv"]) + b3 * parts["con_cls"])
        return loss, {k: v.detach() for k, v in parts.items()}

    def adversarial_loss(self, hidden: torch.Tensor) -> torch.Tensor:
        """L*_cls_s: the synthesizer head on content features should see a uniform distribution.
        Only the content stream (layer4) learns from it: its input is detached (no gradient into
        the shared stem) and the head's weights are detached (the head stays put)."""
        with bn_running_stats_kept(self.backbone.layer4):
            content = self._pool(self.backbone.layer4(hidden.detach()))
        logits = F.linear(self.dropout(content), self.synth_head.weight.detach())
        return uniform_cross_entropy(logits)

    def _ce(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), label.long(), label_smoothing=self.config.label_smoothing)

    def _extra(self, extras: dict[str, torch.Tensor], key: str) -> torch.Tensor:
        if key not in extras:
            raise KeyError(f"fd-add: training batch has no '{key}' pseudo-label (extras: {sorted(extras)}). "
                           "Fix: train through benchmark.training, which applies model.train_transform()")
        return extras[key]

    # --- data ----------------------------------------------------------------------------------

    def train_transform(self) -> Any:
        """The pseudo-label transform (random crop at the speed-adjusted length, speed, compression
        and, for the F0 ablation, the F0 label); it also gives the synthesizer label."""
        from benchmark.augment.pseudo_labels import PseudoLabelConfig, PseudoLabelTransform

        options = {**_transform_switches(self.config), **self.config.transform_options}
        try:
            cfg = PseudoLabelConfig(num_samples=self.num_samples, sample_rate=self.sample_rate, **options)
        except TypeError as exc:
            raise TypeError(f"fd-add: transform_options {sorted(self.config.transform_options)}: {exc}. "
                            "Fix: use fields of benchmark.augment.pseudo_labels.PseudoLabelConfig") from None
        return PseudoLabelTransform(cfg, systems=self.systems)


def _transform_switches(cfg: FDADDConfig) -> dict[str, bool]:
    # The waveform transforms stay on in every ablation (they are also data augmentation, and the
    # official data pipeline applies them whatever the model's losses are); only the F0 label is extra.
    return {"speed": True, "compression": True, "f0": cfg.pseudo_labels == "f0"}

