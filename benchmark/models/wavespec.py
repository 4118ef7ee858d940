"""WaveSpec (Jin, Lang and Leng, ICASSP 2025): waveform + CQT views fused at three scales,
a ResNet18 classifier and the Single Center Loss.  No official code exists; this is our
reference implementation, and every choice the paper leaves open is a ``WaveSpecConfig``
field whose default is justified below.

Pipeline for a ``(B, T)`` 16 kHz batch (T = 64,600 by default):

1. Waveform view: XLS-R 300M (``ssl_model``) hidden states ``ssl_layers = (8, 16, 24)``
   from one pass (``SSLFrontend(layers=...)``): shallow, medium and deep waveform maps
   F1a, F2a, F3a, each ``(B, 1024, 201)`` at 20 ms.
2. Spectral view: the CQT image (``benchmark.frontends.cqt.CQTImage``, hop 320 = one frame
   per SSL frame, 84 bins at 12 per octave from 32.70 Hz = C1 to B7, log-magnitude +
   phase) into a lightweight U-Net (``_wavespec_unet``, widths 64/128/256) whose decoder
   gives F1s (full resolution), F2s (1/2) and the bottleneck F3s (1/4).
3. CMFF (``_wavespec_cmff``) aligns each pair onto the SSL frame grid and one width
   ``fusion_dim`` and fuses it (MS-CAM attentional fusion, or cross-attention).
4. The fused scale maps are stacked as the channels of one image ``(B, scales, fusion_dim,
   201)`` for a ResNet18 (``benchmark.models.resnet.BasicBlock``, input channels = number
   of scales); its pooled 512-d feature is the embedding (``embed``), a linear layer gives
   the logits (index 1 = bona fide).
5. Training loss (``own_loss``): cross-entropy + ``w_scl`` * Single Center Loss on the
   embedding; parts ``ce`` and ``scl`` are logged.

Frame alignment.  wav2vec2's conv stack (kernels 10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2)
gives frame ``j`` the receptive field ``[320 j, 320 j + 400)``, centre ``320 j + 200``.
``CQTImage(first_centre=200)`` (``ssl_frame_shift``) centres CQT frame ``j`` on sample
``200 + 320 j``, the same point, and gives the same count (64,600 -> 201).  The U-Net's
2x2 average pools and CMFF's exact-factor linear upsampling keep that alignment at every
scale (``tests/benchmark/test_wavespec.py`` checks it with a click).

Defaults and why
* ``num_samples = 64600`` (4.04 s): the crop of AASIST and of Codecfake's W2V2-AASIST, so
  WaveSpec is trained and scored on exactly the inputs of the detectors it is compared
  with; XLS-R gives 201 frames.  Evaluation tiles short clips (``crop = "tile"``) as they do.
* ``ssl_layers = (8, 16, 24)``: a third-party reimplementation's choice (issue #7); they
  split XLS-R's 24 layers into thirds (lower layers keep acoustic detail, upper ones
  linguistic content), matching "shallow / medium / deep".
* ``ssl_finetune = False`` (with an optional ``feature_cache``): the paper does not say;
  frozen features make the three-layer stack cacheable and training affordable, and keep
  the comparison with Codecfake's frozen W2V2-AASIST fair.  ``ssl_finetune: true`` trains
  it (the CNN feature encoder stays frozen).  Note: a cache entry holds three
  1024 x 201 float32 maps (2.5 MB per 4 s crop).
* ``cqt_phase = "raw"``: the issue's "2-channel image of magnitude and phase"; "sincos"
  and "ifreq" (instantaneous frequency) are the smooth alternatives, ``None`` the
  magnitude-only ablation.
* ``unet_widths = (64, 128, 256)``: the issue's example; three levels = three scales.
  ``unet_taps = "decoder"``: see ``_wavespec_unet``.
* ``cmff = "mscam"``, ``fusion_dim = 128``, ``freq_reduce = "flatten"``: see
  ``_wavespec_cmff``.  128 channels x 201 frames is the size of the log-mel images
  ResNet18 audio classifiers commonly take, and every scale shares it so the scales can
  be stacked as image channels.
* ``scales = (1, 2, 3)``: all three; ``(3,)`` is the single-scale ablation (deep only).
* ``w_scl = 0.5``, ``scl_lambda`` / ``scl_margin`` = ``SingleCenterLoss``'s defaults (1.0
  and 0.3; see ``benchmark.training.losses``).  Li et al. (CVPR 2021) weight the whole
  L_sc against the softmax loss, ``L = L_softmax + 0.5 L_sc``, with the hinge inside
  L_sc at weight 1; issue #7 writes lambda inside the hinge instead.  WaveSpec gives no
  weight of its own, so we keep the SCL paper's structure and numbers: ``w_scl`` is that
  outer 0.5, ``scl_lambda`` the (unit) hinge weight.  The logged ``scl`` part is the
  unweighted L_sc, so ``loss = ce + w_scl * scl``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.frontends.ssl import XLSR_300M
from benchmark.models._wavespec_cmff import CQTAlign, SSLAlign, make_fusion
from benchmark.models._wavespec_unet import CQTUNet, fit_last_axes
from benchmark.models.base import MODELS, Detector, configure
from benchmark.models.resnet import BasicBlock

#: wav2vec2 / XLS-R / WavLM feature-encoder convolutions (kernel, stride): frame grid of the
#: CQT-only ablation, which builds no SSL model.
WAV2VEC2_CONV = tuple(zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)))
BRANCHES = ("both", "wave", "cqt")


@dataclass(frozen=True)
class WaveSpecConfig:
    num_samples: int = 64600
    #: "both" (WaveSpec), "wave" (waveform-only ablation), "cqt" (CQT-only ablation).
    branches: str = "both"
    # Waveform view
    ssl_model: str = XLSR_300M
    ssl_layers: tuple = (8, 16, 24)
    ssl_finetune: bool = False
    feature_cache: Any = None  # path, true = $CODECFAKE_CACHE/ssl_features, null = off (frozen only)
    ssl_normalize: Any = None  # null = follow the model's feature extractor
    # Spectral view
    cqt_hop_length: int = 320
    cqt_n_bins: int = 84
    cqt_bins_per_octave: int = 12
    cqt_fmin: float = 32.70
    cqt_phase: Any = "raw"  # "raw" | "sincos" | "ifreq" | null (magnitude only)
    unet_widths: tuple = (64, 128, 256)
    unet_taps: str = "decoder"
    # Fusion
    scales: tuple = (1, 2, 3)
    cmff: str = "mscam"
    fusion_dim: int = 128
    freq_reduce: str = "flatten"
    mscam_reduction: int = 4
    xattn_heads: int = 4
    # Classifier
    resnet_widths: tuple = (64, 128, 256, 512)
    resnet_blocks: tuple = (2, 2, 2, 2)
    # Loss
    w_scl: float = 0.5
    scl_lambda: Any = None  # null = SingleCenterLoss's default
    scl_margin: Any = None  # null = SingleCenterLoss's default


def _tuples(overrides: dict[str, Any]) -> dict[str, Any]:
    tuple_fields = {f.name for f in fields(WaveSpecConfig) if f.type in ("tuple", tuple)}
    return {k: tuple(v) if k in tuple_fields and isinstance(v, list) else v for k, v in overrides.items()}


def conv_frames(num_samples: int, conv: tuple = WAV2VEC2_CONV) -> int:
    for kernel, stride in conv:
        num_samples = (num_samples - kernel) // stride + 1
    return num_samples


def ssl_frame_shift(conv: tuple = WAV2VEC2_CONV) -> tuple[int, int]:
    """(samples from the start of SSL frame 0 to its receptive-field centre, frame stride):
    (200, 320) for wav2vec2."""
    field, jump = 1, 1
    for kernel, stride in conv:
        field += (kernel - 1) * jump
        jump *= stride
    return field // 2, jump


class FusedResNet18(nn.Module):
    """torchvision-style ResNet18 on the stacked scale maps; ``embed`` = the pooled feature."""

    def __init__(self, in_channels: int, widths: tuple = (64, 128, 256, 512), blocks: tuple = (2, 2, 2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        layers, ch = [], widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks)):
            layers += [BasicBlock(ch, width, 1 if i == 0 else 2)] + [BasicBlock(width, width) for _ in range(n - 1)]
            ch = width
        self.layers = nn.Sequential(*layers)
        self.dim = ch
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layers(x).mean(dim=(2, 3))


@MODELS.register("wavespec")
class WaveSpec(Detector):
    """``create_model("wavespec", **overrides)`` accepts any ``WaveSpecConfig`` field."""

    config = WaveSpecConfig()
    own_loss = True

    def __init__(self, **overrides):
        super().__init__()
        cfg = self.config = configure(self, _tuples(overrides))
        self._check(cfg)
        self.num_samples = cfg.num_samples
        self.scales = tuple(cfg.scales)
        use_wave, use_cqt = cfg.branches in ("both", "wave"), cfg.branches in ("both", "cqt")
        self.ssl = self.ssl_align = self.cqt = self.unet = self.cqt_align = self.fusion = None
        conv = WAV2VEC2_CONV
        if use_wave:
            from benchmark.frontends.ssl import SSLFrontend, default_cache

            self.ssl = SSLFrontend(cfg.ssl_model, layers=[cfg.ssl_layers[s - 1] for s in self.scales],
                                   finetune=cfg.ssl_finetune, cache_dir=default_cache(cfg.feature_cache),
                                   normalize=cfg.ssl_normalize)
            conv = tuple(self.ssl._conv)
            # A fine-tuned HF SSL model holds parameters no forward uses (masked_spec_embed, and the
            # final LayerNorm when hidden_states come from below the top): DDP must look for them.
            self.ddp_find_unused = bool(cfg.ssl_finetune)
            self.ssl_align = nn.ModuleList(SSLAlign(self.ssl.num_features, cfg.fusion_dim) for _ in self.scales)
        self._conv = conv
        self.shift, stride = ssl_frame_shift(conv)
        if use_cqt:
            from benchmark.frontends.cqt import CQTImage

            if use_wave and cfg.cqt_hop_length != stride:
                raise ValueError(f"wavespec: cqt_hop_length {cfg.cqt_hop_length} must equal the SSL frame stride "
                                 f"{stride} so CQT frames align with SSL frames. Fix: set cqt_hop_length: {stride}")
            self.cqt = CQTImage(sample_rate=self.sample_rate, hop_length=cfg.cqt_hop_length, n_bins=cfg.cqt_n_bins,
                                bins_per_octave=cfg.cqt_bins_per_octave, fmin=cfg.cqt_fmin, phase=cfg.cqt_phase,
                                first_centre=self.shift)
            self.unet = CQTUNet(self.cqt.channels, tuple(cfg.unet_widths), cfg.unet_taps, self.scales)
            widths = self.unet.scale_channels
            self.cqt_align = nn.ModuleList(
                CQTAlign(widths[s], cfg.cqt_n_bins // 2 ** (s - 1), cfg.fusion_dim, CQTUNet.time_stride(s),
                         cfg.freq_reduce) for s in self.scales)
        if use_wave and use_cqt:
            self.fusion = nn.ModuleList(make_fusion(cfg.cmff, cfg.fusion_dim, cfg.mscam_reduction, cfg.xattn_heads)
                                        for _ in self.scales)
        self.classifier = FusedResNet18(len(self.scales), tuple(cfg.resnet_widths), tuple(cfg.resnet_blocks))
        self.fc = nn.Linear(self.classifier.dim, 2)
        self.scl = None
        if cfg.w_scl > 0:
            from benchmark.training.losses import SingleCenterLoss

            kw = {k: v for k, v in (("lam", cfg.scl_lambda), ("margin", cfg.scl_margin)) if v is not None}
            self.scl = SingleCenterLoss(self.classifier.dim, **kw)

    @staticmethod
    def _check(cfg: WaveSpecConfig) -> None:
        if cfg.branches not in BRANCHES:
            raise ValueError(f"wavespec: branches must be one of {', '.join(BRANCHES)}, got {cfg.branches!r}")
        scales = tuple(cfg.scales)
        if not scales or sorted(set(scales)) != list(scales) or not set(scales) <= {1, 2, 3}:
            raise ValueError(f"wavespec: scales must be an increasing subset of [1, 2, 3], got {list(scales)}")
        if len(cfg.ssl_layers) != 3:
            raise ValueError(f"wavespec: ssl_layers needs one layer per scale (3), got {list(cfg.ssl_layers)}")
        if cfg.w_scl < 0:
            raise ValueError(f"wavespec: w_scl must be >= 0, got {cfg.w_scl}")

    # --- front-ends -------------------------------------------------------------------------------

    def frames(self, num_samples: int) -> int:
        """Frames of every scale map for an input of ``num_samples``: the SSL frame count, or the
        CQT's own count in the CQT-only ablation (equal with the default hop)."""
        if self.ssl is None and self.cqt is not None:
            return self.cqt.frames_for(num_samples)
        return conv_frames(num_samples, self._conv)

    def cqt_image(self, wave: torch.Tensor, frames: int) -> torch.Tensor:
        """The CQT image on the SSL frame grid: ``(B, C, bins, frames)``; frame j centred on SSL frame j."""
        # The fixed CQT kernels gain nothing from autocast and log-magnitude wants float32.
        with torch.autocast(device_type=wave.device.type, enabled=False):
            img = self.cqt(wave.float())
        return fit_last_axes(img, (frames,))  # equal counts on the wav2vec2 grid; other hops are cut/padded

    def scale_maps(self, wave: torch.Tensor) -> list[torch.Tensor]:
        """One fused ``(B, fusion_dim, frames)`` map per used scale."""
        frames = self.frames(wave.shape[-1])
        ssl = cqt = None
        if self.ssl is not None:
            ssl = self.ssl(wave)  # (B, scales, hidden, frames)
            frames = ssl.shape[-1]
        if self.cqt is not None:
            cqt = self.unet(self.cqt_image(wave, frames))
        out = []
        for i, s in enumerate(self.scales):
            a = None if ssl is None else self.ssl_align[i](ssl[:, i])
            c = None if cqt is None else self.cqt_align[i](cqt[s], frames)
            out.append(c if a is None else a if c is None else self.fusion[i](a, c))
        return out

    # --- detector ---------------------------------------------------------------------------------

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """The ResNet18's pooled feature ``(B, 512)``: what the Single Center Loss sees."""
        return self.classifier(torch.stack(self.scale_maps(wave), dim=1))

    def forward(self, wave: torch.Tensor, target: torch.Tensor | None = None, extras: dict | None = None):
        emb = self.embed(wave)
        logits = self.fc(emb)
        if target is None:
            return logits
        ce = F.cross_entropy(logits.float(), target)
        if self.scl is None:
            return ce, {"ce": ce.detach()}
        scl = self.scl(emb.float(), target)
        return ce + self.config.w_scl * scl, {"ce": ce.detach(), "scl": scl.detach()}


