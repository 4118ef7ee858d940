"""AudioDec networks (Wu et al., ICASSP 2023) in PyTorch, for the official checkpoints.

AudioDec "v1" re-synthesis chains two separately trained networks:

* the analysis half of the symmetric autoencoder (``symAD``): a causal convolutional
  encoder (strides 3-4-5-5, 300 samples per frame), a causal projection to a 64-dim
  code and an 8-stage residual VQ with 1024-entry codebooks;
* a causal HiFi-GAN vocoder that turns the (normalised) quantised code back into a
  waveform; its checkpoint stores every convolution weight-normed (``weight_g`` /
  ``weight_v``, the pre-parametrization PyTorch names), and so does this module.

Every convolution is causal: it only looks back.  The official streaming coder keeps
the last few input columns of each layer as that layer's left context; here each
layer has a ``context`` buffer, shared by all clips of a batch, that replaces the
left padding.  :meth:`AudioDecModel.prime` fills the contexts the way the official
demo leaves them after it loads a model (by coding 8192 samples of silence), so a
clip coded here equals the official demo coding that clip as its first file.

Module and parameter names follow the official checkpoints' state-dict keys, so a
checkpoint loads without renaming; streaming buffers stored there (``pad_buffer``)
and training-only tensors are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Samples of silence the official ``AudioDec`` class codes right after loading (its
#: ``receptive_length`` default), which sets every layer's initial left context.
WARMUP_SAMPLES = 8192


class UnsupportedConfigError(ValueError):
    """A checkpoint config names an AudioDec variant this module does not build."""


# ---- configs ---------------------------------------------------------------------------------
def _pick(cls: type, params: dict[str, Any], what: str) -> Any:
    """Build dataclass ``cls`` from the matching keys of an official ``generator_params``."""
    known = {f.name for f in fields(cls)}
    values = {}
    for k, v in params.items():
        if k in known:
            values[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
    cfg = cls(**values)
    cfg.validate(what)
    return cfg


@dataclass(frozen=True)
class AnalysisConfig:
    """``generator_params`` of a ``symAudioDec`` autoencoder checkpoint (the keys this path
    reads); defaults are those of ``symAD_libritts_24000_hop300``."""

    input_channels: int = 1
    encode_channels: int = 32
    code_dim: int = 64
    codebook_num: int = 8
    codebook_size: int = 1024
    bias: bool = True
    enc_ratios: tuple[int, ...] = (2, 4, 8, 16)
    enc_strides: tuple[int, ...] = (3, 4, 5, 5)
    mode: str = "causal"
    codec: str = "audiodec"
    projector: str = "conv1d"
    quantier: str = "residual_vq"  # sic: the official key
    nonlinear_activation: str = "ELU"
    nonlinear_activation_params: Any = None
    use_weight_norm: bool = False

    @classmethod
    def from_generator_params(cls, params: dict[str, Any], what: str = "autoencoder config") -> "AnalysisConfig":
        return _pick(cls, params, what)

    def validate(self, what: str) -> None:
        wanted = {"mode": "causal", "codec": "audiodec", "projector": "conv1d", "quantier": "residual_vq",
                  "input_channels": 1, "nonlinear_activation": "ELU"}
        for key, value in wanted.items():
            if getattr(self, key) != value:
                raise UnsupportedConfigError(f"{what}: {key} = {getattr(self, key)!r}; only {value!r} is supported")
        if len(self.enc_ratios) != len(self.enc_strides):
            raise UnsupportedConfigError(f"{what}: enc_ratios and enc_strides differ in length")

    @property
    def hop(self) -> int:
        return math.prod(self.enc_strides)

    @property
    def elu_alpha(self) -> float:
        return float((self.nonlinear_activation_params or {}).get("alpha", 1.0))


@dataclass(frozen=True)
class VocoderConfig:
    """``generator_params`` of a ``HiFiGAN`` vocoder checkpoint; defaults are those of
    ``AudioDec_v1_symAD_libritts_24000_hop300_clean``."""

    in_channels: int = 64
    out_channels: int = 1
    channels: int = 512
    kernel_size: int = 7
    upsample_scales: tuple[int, ...] = (5, 5, 4, 3)
    upsample_kernel_sizes: tuple[int, ...] = (10, 10, 8, 6)
    resblock_kernel_sizes: tuple[int, ...] = (11,)
    resblock_dilations: tuple[tuple[int, ...], ...] = ((1, 3, 5),)
    groups: int = 3
    bias: bool = True
    use_additional_convs: bool = True
    nonlinear_activation: str = "LeakyReLU"
    nonlinear_activation_params: Any = None
    use_weight_norm: bool = True
    #: Path of the code statistics file in the official config; only whether it is set
    #: matters here (the checkpoint stores the statistics themselves as ``mean``/``scale``).
    stats: Any = "stats/symAD_libritts_24000_hop300_clean.npy"

    @classmethod
    def from_generator_params(cls, params: dict[str, Any], what: str = "vocoder config") -> "VocoderConfig":
        params = dict(params)
        params.setdefault("stats", None)  # absent in a config means no input normalisation
        return _pick(cls, params, what)

    def validate(self, what: str) -> None:
        if self.nonlinear_activation != "LeakyReLU":
            raise UnsupportedConfigError(f"{what}: nonlinear_activation = {self.nonlinear_activation!r}; "
                                         "only 'LeakyReLU' is supported")
        # The official generator uses grouped residual convs only in this case, a
        # multi-receptive-field stack otherwise; every released AudioDec vocoder is grouped.
        if not (len(self.resblock_kernel_sizes) == len(self.resblock_dilations) == 1 and self.groups > 1):
            raise UnsupportedConfigError(f"{what}: only the grouped residual block (one resblock kernel, "
                                         "groups > 1) of the released vocoders is supported")
        if self.out_channels != 1:
            raise UnsupportedConfigError(f"{what}: out_channels = {self.out_channels}; only mono is supported")
        if len(self.upsample_scales) != len(self.upsample_kernel_sizes) or any(
                k != 2 * s for k, s in zip(self.upsample_kernel_sizes, self.upsample_scales)):
            raise UnsupportedConfigError(f"{what}: upsample kernel sizes must be twice the scales")
        if self.channels % (2 ** len(self.upsample_scales)):
            raise UnsupportedConfigError(f"{what}: channels must halve cleanly at every upsampling")

    @property
    def normalises_input(self) -> bool:
        return self.stats is not None

    @property
    def slope(self) -> float:
        # No params at all means the official default ({"negative_slope": 0.1}); params
        # without the key mean torch's LeakyReLU default.
        if self.nonlinear_activation_params is None:
            return 0.1
        return float(self.nonlinear_activation_params.get("negative_slope", 0.01))

    @property
    def hop(self) -> int:
        return math.prod(self.upsample_scales)


# ---- layers ------------------------------------------------------------------------------------
class _ConvWeights(nn.Module):
    """The tensors of one 1-D (transposed) convolution, named as the checkpoints name them:
    ``weight`` (+ ``bias``), or with weight norm ``weight_g`` and ``weight_v``, where the
    kernel is ``weight_g * weight_v / |weight_v|`` with the norm over all but dim 0."""

    def __init__(self, shape: tuple[int, int, int], bias_size: int | None, weight_norm: bool):
        super().__init__()
        self.weight_norm = weight_norm
        if weight_norm:
            self.weight_g = nn.Parameter(torch.ones(shape[0], 1, 1))
            self.weight_v = nn.Parameter(torch.empty(shape))
        else:
            self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.zeros(bias_size)) if bias_size else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        w = self.weight_v if self.weight_norm else self.weight
        fan_in = w.shape[1] * w.shape[2]
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            w.uniform_(-bound, bound)
            if self.weight_norm:
                self.weight_g.copy_(w.flatten(1).norm(dim=1).view(-1, 1, 1))
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def kernel(self) -> torch.Tensor:
        if not self.weight_norm:
            return self.weight
        v = self.weight_v
        return v * (self.weight_g / v.flatten(1).norm(dim=1).view(-1, 1, 1))


class Pointwise(_ConvWeights):
    """1x1 convolution (the official ``Conv1d1x1``: its tensors sit directly on the module)."""

    def __init__(self, cin: int, cout: int, bias: bool, weight_norm: bool = False):
        super().__init__((cout, cin, 1), cout if bias else None, weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.kernel(), self.bias)


class _Causal(nn.Module):
    """A layer that sees ``context_len`` columns before its input: the layer's streaming
    state, zeros until :meth:`AudioDecModel.prime` sets it."""

    context_len: int

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.recording = False
        self.register_buffer("context", None, persistent=False)

    def _extend(self, x: torch.Tensor) -> torch.Tensor:
        n = self.context_len
        if n == 0:
            return x
        if self.context is None:
            ctx = x.new_zeros(1, self.channels, n)
        else:
            ctx = self.context.to(x.dtype)
        x = torch.cat([ctx.expand(x.shape[0], -1, -1), x], dim=-1)
        if self.recording:
            # The official streaming layer keeps the last columns it saw (its own input
            # after the old context), whatever the stride alignment.
            self.context = x[:1, :, -n:].detach().clone()
        return x


class CausalConv(_Causal):
    """Convolution over the ``(kernel - 1) * dilation`` previous columns and the current one;
    with stride s it emits one column per s input columns, ceil(T / s) in all."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1,
                 groups: int = 1, bias: bool = True, weight_norm: bool = False):
        super().__init__(cin)
        self.stride, self.dilation, self.groups = stride, dilation, groups
        self.context_len = (kernel - 1) * dilation
        self.conv = _ConvWeights((cout, cin // groups, kernel), cout if bias else None, weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(self._extend(x), self.conv.kernel(), self.conv.bias, stride=self.stride,
                        dilation=self.dilation, groups=self.groups)


class CausalUpConv(_Causal):
    """Transposed convolution (kernel 2s, stride s) fed one previous column; dropping s
    samples at each end leaves exactly s output samples per input column, each depending
    only on the current and previous input columns."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, bias: bool = True,
                 weight_norm: bool = False):
        super().__init__(cin)
        self.stride = stride
        self.context_len = math.ceil(kernel / stride) - 1
        self.deconv = _ConvWeights((cin, cout, kernel), cout if bias else None, weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose1d(self._extend(x), self.deconv.kernel(), self.deconv.bias, stride=self.stride)
        return y[..., self.stride:-self.stride]


# ---- analysis: encoder, projector, residual VQ -------------------------------------------------
class _ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int, alpha: float):
        super().__init__()
        self.alpha = alpha
        self.conv1 = CausalConv(channels, channels, 7, dilation=dilation, bias=False)
        self.conv2 = Pointwise(channels, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.elu(x, self.alpha))
        return x + self.conv2(F.elu(y, self.alpha))


class _EncoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, bias: bool, alpha: float):
        super().__init__()
        self.res_units = nn.ModuleList(_ResidualUnit(cin, d, alpha) for d in (1, 3, 9))
        self.conv = CausalConv(cin, cout, 2 * stride, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.res_units:
            x = unit(x)
        return self.conv(x)


class _Encoder(nn.Module):
    def __init__(self, cfg: AnalysisConfig):
        super().__init__()
        self.conv = CausalConv(cfg.input_channels, cfg.encode_channels, 7, bias=False)
        widths = [cfg.encode_channels] + [cfg.encode_channels * r for r in cfg.enc_ratios]
        self.conv_blocks = nn.ModuleList(
            _EncoderBlock(widths[i], widths[i + 1], s, cfg.bias, cfg.elu_alpha) for i, s in enumerate(cfg.enc_strides))
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        for block in self.conv_blocks:
            x = block(x)
        return x


class _Projector(nn.Module):
    def __init__(self, cin: int, code_dim: int):
        super().__init__()
        self.project = CausalConv(cin, code_dim, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x)


class _Codebook(nn.Module):
    def __init__(self, dim: int, size: int):
        super().__init__()
        # Stored (dim, size), as the checkpoints store it.
        self.register_buffer("embed", torch.randn(dim, size))


class _ResidualVQ(nn.Module):
    def __init__(self, dim: int, stages: int, size: int):
        super().__init__()
        self.layers = nn.ModuleList(_Codebook(dim, size) for _ in range(stages))


class _Quantizer(nn.Module):
    def __init__(self, cfg: AnalysisConfig):
        super().__init__()
        self.codebook = _ResidualVQ(cfg.code_dim, cfg.codebook_num, cfg.codebook_size)

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, stages, T) of a (B, dim, T) code sequence: each stage takes the nearest
        codeword (squared distance) to what the earlier stages left over."""
        b, dim, t = z.shape
        residual = z.transpose(1, 2).reshape(-1, dim)
        codes = []
        for layer in self.codebook.layers:
            embed = layer.embed
            dist = (residual.pow(2).sum(1, keepdim=True) - 2 * residual @ embed
                    + embed.pow(2).sum(0, keepdim=True))
            idx = (-dist).max(1).indices
            chosen = embed.t()[idx]
            # The official quantizer subtracts ``r + (q - r)`` (its straight-through form),
            # not ``q``; the rounding differs by ~1e-7 and can decide a near tie later on.
            residual = residual - (residual + (chosen - residual))
            codes.append(idx.view(b, t))
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, stages, T) codes -> (B, dim, T): the sum of each stage's codeword."""
        parts = [F.embedding(codes[:, i], layer.embed.t()) for i, layer in enumerate(self.codebook.layers)]
        return torch.stack(parts).sum(0).transpose(1, 2)


class AudioDecAnalysis(nn.Module):
    """Encoder, projector and quantizer of a symmetric AudioDec autoencoder (its decoder is
    not used in AudioDec v1 and is not built)."""

    def __init__(self, cfg: AnalysisConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = _Encoder(cfg)
        self.projector = _Projector(self.encoder.out_channels, cfg.code_dim)
        self.quantizer = _Quantizer(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) waveform -> (B, stages, ceil(T / hop)) codes."""
        return self.quantizer.encode(self.projector(self.encoder(x[:, None, :])))


# ---- synthesis: causal HiFi-GAN ------------------------------------------------------------
class _GroupResBlock(nn.Module):
    """HiFi-GAN residual stack run ``groups`` times in parallel (as one grouped conv on the
    input repeated ``groups`` times), merged back by a 1x1 conv."""

    def __init__(self, channels: int, cfg: VocoderConfig):
        super().__init__()
        wide, k, g, wn = channels * cfg.groups, cfg.resblock_kernel_sizes[0], cfg.groups, cfg.use_weight_norm
        self.groups, self.slope = g, cfg.slope
        self.convs1 = nn.ModuleList(CausalConv(wide, wide, k, dilation=d, groups=g, bias=cfg.bias, weight_norm=wn)
                                    for d in cfg.resblock_dilations[0])
        self.convs2 = nn.ModuleList(CausalConv(wide, wide, k, groups=g, bias=cfg.bias, weight_norm=wn)
                                    for _ in cfg.resblock_dilations[0]) if cfg.use_additional_convs else None
        self.conv_out = Pointwise(wide, channels, bias=False, weight_norm=wn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.repeat(1, self.groups, 1)
        for i, conv in enumerate(self.convs1):
            y = conv(F.leaky_relu(x, self.slope))
            if self.convs2 is not None:
                y = self.convs2[i](F.leaky_relu(y, self.slope))
            x = x + y
        return self.conv_out(x)


class AudioDecVocoder(nn.Module):
    """Causal HiFi-GAN: normalised code (B, in_channels, T) -> waveform (B, T * hop) in (-1, 1)."""

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        self.cfg = cfg
        wn = cfg.use_weight_norm
        self.input_conv = CausalConv(cfg.in_channels, cfg.channels, cfg.kernel_size, bias=True, weight_norm=wn)
        widths = [cfg.channels // 2 ** i for i in range(len(cfg.upsample_scales) + 1)]
        self.upsamples = nn.ModuleList(
            CausalUpConv(widths[i], widths[i + 1], k, s, bias=True, weight_norm=wn)
            for i, (s, k) in enumerate(zip(cfg.upsample_scales, cfg.upsample_kernel_sizes)))
        self.blocks = nn.ModuleList(_GroupResBlock(w, cfg) for w in widths[1:])
        self.output_conv = CausalConv(widths[-1], cfg.out_channels, cfg.kernel_size, bias=True, weight_norm=wn)
        if cfg.normalises_input:
            # Global code statistics of the training set; the checkpoint holds the values.
            self.register_buffer("mean", torch.zeros(cfg.in_channels))
            self.register_buffer("scale", torch.ones(cfg.in_channels))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        if self.cfg.normalises_input:
            code = (code - self.mean[:, None]) / self.scale[:, None]
        x = self.input_conv(code)
        for up, block in zip(self.upsamples, self.blocks):
            x = block(up(F.leaky_relu(x, self.cfg.slope)))
        # The official output stage uses LeakyReLU's default slope (0.01), not the config's.
        return torch.tanh(self.output_conv(F.leaky_relu(x, 0.01)))[:, 0]


class AudioDecModel(nn.Module):
    """Analysis (autoencoder) + synthesis (vocoder): waveform (B, T) -> (B, ceil(T/hop) * hop)."""

    def __init__(self, analysis: AnalysisConfig, vocoder: VocoderConfig):
        super().__init__()
        if vocoder.in_channels != analysis.code_dim:
            raise UnsupportedConfigError(f"vocoder in_channels = {vocoder.in_channels} but the autoencoder "
                                         f"code_dim = {analysis.code_dim}: they are not a pair")
        if vocoder.hop != analysis.hop:
            raise UnsupportedConfigError(f"vocoder hop {vocoder.hop} != autoencoder hop {analysis.hop}")
        self.analysis = AudioDecAnalysis(analysis)
        self.vocoder = AudioDecVocoder(vocoder)

    @property
    def hop(self) -> int:
        return self.analysis.cfg.hop

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.analysis(x)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.vocoder(self.analysis.quantizer.decode(codes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def prime(self, n_samples: int = WARMUP_SAMPLES) -> None:
        """Set every layer's context to what the official loader leaves there: it codes
        ``n_samples`` of silence through encoder and decoder, starting from zero state."""
        layers = [m for m in self.modules() if isinstance(m, _Causal)]
        for m in layers:
            m.context = None
        silence = torch.zeros(1, n_samples, device=next(self.parameters()).device)
        for m in layers:
            m.recording = True
        try:
            self.forward(silence)
        finally:
            for m in layers:
                m.recording = False
