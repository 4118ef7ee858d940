"""FunCodec's time-domain EnCodec-style generator (Du et al. 2023), inference only.

Written from the FunCodec paper and the architecture/hyper-parameters of
alibaba-damo-academy/FunCodec (commit 3435d87): a SEANet convolutional encoder
with an LSTM, a residual vector quantiser with EMA codebooks, and the mirrored
SEANet decoder.  Module names follow the official state-dict keys
(``encoder.model.<i>.conv.conv.weight``, ``quantizer.rq.model.embed`` ...) so an
official ``model.pth`` loads without renaming; everything needed only for
training (discriminators, loss mel filters, EMA statistics) is left out.

Padding conventions (they decide every output sample):
* a strided convolution gets ``(k - 1) * d - (s - 1)`` padding split with the
  larger half on the left (reflect by default), plus extra right padding so the
  last window is full; causal models put it all on the left;
* a transposed convolution drops ``k - s`` samples, the larger half on the left
  (all on the right when causal);
* the whole clip is divided by its RMS before encoding and the decoded signal is
  multiplied back (``audio_normalize``), so padding a clip would change it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("none", "weight_norm", "time_group_norm")


# ---- configuration ------------------------------------------------------------------------
@dataclass
class SEANetOptions:
    """The options FunCodec's 1-D and 2-D (FreqCodec) SEANet nets share, with the official
    class defaults; each net's config adds its own (``_pick`` refuses any other key)."""

    channels: int = 1          # audio channels (encoder ``input_size`` / decoder ``channels``)
    dimension: int = 128       # latent size (encoder output / decoder ``input_size``)
    n_filters: int = 32
    n_residual_layers: int = 1
    ratios: list[Any] = field(default_factory=lambda: [8, 5, 4, 2])
    activation: str = "ELU"
    activation_params: dict[str, Any] = field(default_factory=lambda: {"alpha": 1.0})
    final_activation: str | None = None
    final_activation_params: dict[str, Any] | None = None
    norm: str = "weight_norm"
    norm_params: dict[str, Any] = field(default_factory=dict)
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    causal: bool = False
    pad_mode: str = "reflect"
    true_skip: bool = False
    compress: int = 2
    seq_model: str | None = "lstm"
    seq_layer_num: int = 2
    res_seq: bool = True
    trim_right_ratio: float = 1.0


@dataclass
class SEANetConfig(SEANetOptions):
    """The SEANet options FunCodec's ``encoder_conf`` / ``decoder_conf`` may set
    (defaults are the official class defaults, not the recipe values)."""

    ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])
    double_filters: bool = True   # encoder: widths double at each downsampling
    half_filters: bool = True     # decoder: widths halve at each upsampling
    add_snake_activation: bool = False

    @property
    def hop(self) -> int:
        return int(math.prod(self.ratios))


@dataclass
class QuantizerConfig:
    codebook_size: int = 1024
    num_quantizers: int = 8
    codec_dim: int | None = None      # a Linear projection in/out when it differs from the latent
    codec_range: float | None = None  # tanh(x) * range before quantising
    encoder_hop_length: int = 320
    sampling_rate: int = 24000
    use_ddp: bool = True              # only changes the codebook tensor layout in the checkpoint
    q0_ds_ratio: int = 1


@dataclass
class FunCodecConfig:
    """What inference needs from an official FunCodec ``config.yaml``."""

    encoder: SEANetConfig
    decoder: SEANetConfig
    quantizer: QuantizerConfig
    sample_rate: int = 16000
    audio_normalize: bool = True

    @property
    def hop(self) -> int:
        return self.encoder.hop

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def bitrate_kbps(self, n_q: int) -> float:
        return self.frame_rate * n_q * math.log2(self.quantizer.codebook_size) / 1000.0


class FunCodecConfigError(ValueError):
    """The config.yaml describes a model this implementation does not build."""


def _pick(cls: type, conf: dict[str, Any], where: str, rename: dict[str, str] | None = None,
          ignore: tuple[str, ...] = (), refuse: tuple[str, ...] = ()) -> Any:
    """``cls`` built from an official ``*_conf`` section: keys renamed, ``ignore``d ones dropped,
    unknown or ``refuse``d ones a one-line error (never silently ignored)."""
    rename = rename or {}
    known = {f.name for f in fields(cls)}
    kwargs = {}
    for key, value in conf.items():
        name = rename.get(key, key)
        if key in ignore:
            continue
        if name not in known or key in refuse:
            raise FunCodecConfigError(f"{where}: option '{key}' is not supported by this implementation")
        kwargs[name] = value
    return cls(**kwargs)


#: Quantiser options that only matter for training.
_TRAINING_ONLY_QUANTIZER = ("ema_decay", "kmeans_init", "quantize_dropout", "rand_num_quant", "input_size")


def config_from_yaml(args: dict[str, Any]) -> FunCodecConfig:
    """Turn the parsed official config.yaml into a FunCodecConfig, refusing anything
    this implementation would silently get wrong (other model types, chunking ...)."""
    expect = {"model": "encodec", "encoder": "encodec_seanet_encoder",
              "decoder": "encodec_seanet_decoder", "quantizer": "costume_quantizer"}
    for key, want in expect.items():
        got = args.get(key, want)
        if got != want:
            raise FunCodecConfigError(
                f"{key} is '{got}'; only the time-domain EnCodec-style FunCodec models "
                f"({key}: {want}) are implemented")
    model_conf = dict(args.get("model_conf") or {})
    domain = model_conf.get("codec_domain", "time")
    if domain != "time":
        raise FunCodecConfigError(f"model_conf.codec_domain '{domain}' is not implemented (only 'time')")
    if model_conf.get("segment_dur") is not None:
        raise FunCodecConfigError("model_conf.segment_dur is set (chunked overlap-add coding); "
                                  "only whole-clip models (segment_dur: null) are implemented")
    if model_conf.get("bypass_quantizer"):
        raise FunCodecConfigError("model_conf.bypass_quantizer is set; such a model has no codes")
    enc = _pick(SEANetConfig, dict(args.get("encoder_conf") or {}), "encoder_conf",
                rename={"input_size": "channels"})
    enc.channels = int(args.get("input_size") or 1)
    dec_conf = dict(args.get("decoder_conf") or {})
    dec = _pick(SEANetConfig, dec_conf, "decoder_conf")
    quant = _pick(QuantizerConfig, dict(args.get("quantizer_conf") or {}), "quantizer_conf",
                  ignore=_TRAINING_ONLY_QUANTIZER)
    dec.dimension = enc.dimension  # the decoder's input_size is the quantiser's output size
    for name, cfg in (("encoder_conf", enc), ("decoder_conf", dec)):
        if cfg.norm not in NORMS:
            raise FunCodecConfigError(f"{name}.norm '{cfg.norm}' is not implemented ({', '.join(NORMS)})")
        if cfg.seq_model not in ("lstm", None, "none"):
            raise FunCodecConfigError(f"{name}.seq_model '{cfg.seq_model}' is not implemented (lstm)")
        if cfg.norm == "time_group_norm" and cfg.causal:
            raise FunCodecConfigError(f"{name}: time_group_norm cannot be causal")
    if quant.q0_ds_ratio != 1:
        raise FunCodecConfigError("quantizer_conf.q0_ds_ratio != 1 is not implemented")
    if enc.hop != dec.hop:
        raise FunCodecConfigError(f"encoder hop {enc.hop} differs from decoder hop {dec.hop}")
    if quant.encoder_hop_length != enc.hop:
        raise FunCodecConfigError(f"quantizer_conf.encoder_hop_length {quant.encoder_hop_length} "
                                  f"differs from the encoder hop {enc.hop}")
    rate = int(model_conf.get("target_sample_hz", args.get("sampling_rate", 16000)))
    return FunCodecConfig(encoder=enc, decoder=dec, quantizer=quant, sample_rate=rate,
                          audio_normalize=bool(model_conf.get("audio_normalize", True)))


# ---- layers ---------------------------------------------------------------------------------
def _activation(name: str, params: dict[str, Any], channels: int) -> nn.Module:
    if name.lower() == "snake":
        return _Snake(channels)
    return getattr(nn, name)(**params)


class _Snake(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], x.shape[1], -1)  # 2-D feature maps share one alpha per channel
        return (flat + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * flat).pow(2)).reshape(x.shape)


class _WeightNormed(nn.Module):
    """A conv weight stored as direction ``weight_v`` and per-slice gain ``weight_g``
    (the keys torch's legacy ``weight_norm`` writes), plus the bias."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        w = conv.weight.detach()
        self.weight_g = nn.Parameter(w.flatten(1).norm(dim=1).view(-1, *([1] * (w.dim() - 1))))
        self.weight_v = nn.Parameter(w.clone())
        self.bias = conv.bias

    def weight(self) -> torch.Tensor:
        v = self.weight_v
        return v * (self.weight_g / v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1))))


class _NormConv(nn.Module):
    """A 1-D or 2-D (transposed) convolution, optionally weight-normed, then a norm;
    the attribute is ``conv`` or ``convtr`` as in the official checkpoints."""

    def __init__(self, conv: nn.Conv1d | nn.ConvTranspose1d | nn.Conv2d | nn.ConvTranspose2d, norm: str,
                 norm_params: dict[str, Any], out_channels: int):
        super().__init__()
        self.transposed = isinstance(conv, (nn.ConvTranspose1d, nn.ConvTranspose2d))
        self.weight_normed = norm == "weight_norm"
        self.stride, self.dilation, self.groups = conv.stride, conv.dilation, conv.groups
        setattr(self, "convtr" if self.transposed else "conv", _WeightNormed(conv) if self.weight_normed else conv)
        if norm == "time_group_norm":
            params = dict(norm_params)
            self.norm: nn.Module = nn.GroupNorm(params.pop("num_groups", 1), out_channels, **params)
        else:
            self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inner = self.convtr if self.transposed else self.conv
        if not self.weight_normed:
            return self.norm(inner(x))
        two_d = inner.weight_v.dim() == 4  # the frequency-domain models use 2-D convolutions
        if self.transposed:
            conv_t = F.conv_transpose2d if two_d else F.conv_transpose1d
            x = conv_t(x, inner.weight(), inner.bias, self.stride, 0, 0, self.groups, self.dilation)
        else:
            conv = F.conv2d if two_d else F.conv1d
            x = conv(x, inner.weight(), inner.bias, self.stride, 0, self.dilation, self.groups)
        return self.norm(x)


def _pad(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    if mode != "reflect":
        return F.pad(x, (left, right), mode=mode)
    # Reflection needs more samples than the pad; very short inputs get zeros appended
    # first, which are cut off again after reflecting (so the right pad stays reflective
    # of the zeros, as in the reference).
    n = x.shape[-1]
    extra = max(left, right) - n + 1 if n <= max(left, right) else 0
    if extra:
        x = F.pad(x, (0, extra))
    y = F.pad(x, (left, right), mode="reflect")
    return y[..., : y.shape[-1] - extra] if extra else y


class SConv1d(nn.Module):
    """Conv1d with 'same'-style padding for any stride; the length becomes ceil(T / stride)."""

    def __init__(self, cin: int, cout: int, kernel: int, cfg: SEANetConfig, stride: int = 1,
                 dilation: int = 1):
        super().__init__()
        self.conv = _NormConv(nn.Conv1d(cin, cout, kernel, stride, dilation=dilation),
                              cfg.norm, cfg.norm_params, cout)
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        self.causal, self.pad_mode = cfg.causal, cfg.pad_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = (self.kernel - 1) * self.dilation - (self.stride - 1)
        n = x.shape[-1]
        frames = math.ceil((n - self.kernel + total) / self.stride + 1)
        extra = (frames - 1) * self.stride + (self.kernel - total) - n
        if self.causal:
            x = _pad(x, total, extra, self.pad_mode)
        else:
            right = total // 2
            x = _pad(x, total - right, right + extra, self.pad_mode)
        return self.conv(x)


class SConvTranspose1d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, cfg: SEANetConfig):
        super().__init__()
        self.convtr = _NormConv(nn.ConvTranspose1d(cin, cout, kernel, stride), cfg.norm, cfg.norm_params, cout)
        self.trim = kernel - stride
        self.causal, self.trim_right_ratio = cfg.causal, cfg.trim_right_ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convtr(x)
        right = math.ceil(self.trim * self.trim_right_ratio) if self.causal else self.trim // 2
        left = self.trim - right
        return y[..., left: y.shape[-1] - right]


class ResBlock(nn.Module):
    """act -> conv(k, dilated) -> act -> conv(1), plus a 1x1-conv (or identity) skip."""

    def __init__(self, dim: int, dilation: int, cfg: SEANetConfig):
        super().__init__()
        hidden = dim // cfg.compress
        self.block = nn.Sequential(
            _activation(cfg.activation, cfg.activation_params, dim),
            SConv1d(dim, hidden, cfg.residual_kernel_size, cfg, dilation=dilation),
            _activation(cfg.activation, cfg.activation_params, hidden),
            SConv1d(hidden, dim, 1, cfg),
        )
        self.shortcut = nn.Identity() if cfg.true_skip else SConv1d(dim, dim, 1, cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class SLSTM(nn.Module):
    """A time-major LSTM over (B, C, T) features with a residual connection."""

    def __init__(self, dim: int, layers: int, skip: bool):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers)
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.permute(2, 0, 1)
        y, _ = self.lstm(seq)
        if self.skip:
            y = y + seq
        return y.permute(1, 2, 0)


def _has_seq(cfg: SEANetConfig) -> bool:
    return cfg.seq_model == "lstm"


class SEANetEncoder(nn.Module):
    """(B, C, T) waveform -> (B, T / hop, dimension) latent frames."""

    def __init__(self, cfg: SEANetConfig):
        super().__init__()
        act = cfg.activation, cfg.activation_params
        width = cfg.n_filters
        layers: list[nn.Module] = [SConv1d(cfg.channels, width, cfg.kernel_size, cfg)]
        if cfg.add_snake_activation:
            layers += [_Snake(width), SConv1d(width, width, cfg.kernel_size, cfg)]
        # The encoder downsamples by the ratios in reverse order (the decoder's order is the given one).
        for ratio in reversed(cfg.ratios):
            layers += [ResBlock(width, cfg.dilation_base ** j, cfg) for j in range(cfg.n_residual_layers)]
            out = width * 2 if cfg.double_filters else width
            layers += [_activation(*act, width), SConv1d(width, out, ratio * 2, cfg, stride=ratio)]
            width = out
        if _has_seq(cfg):
            layers.append(SLSTM(width, cfg.seq_layer_num, cfg.res_seq))
        layers += [_activation(*act, width), SConv1d(width, cfg.dimension, cfg.last_kernel_size, cfg)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).transpose(1, 2)


class SEANetDecoder(nn.Module):
    """(B, frames, dimension) latent -> (B, channels, frames * hop) waveform."""

    def __init__(self, cfg: SEANetConfig):
        super().__init__()
        act = cfg.activation, cfg.activation_params
        width = cfg.n_filters * (2 ** len(cfg.ratios) if cfg.half_filters else 1)
        layers: list[nn.Module] = [SConv1d(cfg.dimension, width, cfg.kernel_size, cfg)]
        if _has_seq(cfg):
            layers.append(SLSTM(width, cfg.seq_layer_num, cfg.res_seq))
        for ratio in cfg.ratios:
            out = width // 2 if cfg.half_filters else width
            layers += [_activation(*act, width), SConvTranspose1d(width, out, ratio * 2, ratio, cfg)]
            layers += [ResBlock(out, cfg.dilation_base ** j, cfg) for j in range(cfg.n_residual_layers)]
            width = out
        if cfg.add_snake_activation:
            layers += [_Snake(width), SConv1d(cfg.n_filters, cfg.channels, cfg.last_kernel_size, cfg)]
        else:
            layers += [_activation(*act, cfg.n_filters),
                       SConv1d(cfg.n_filters, cfg.channels, cfg.last_kernel_size, cfg)]
        if cfg.final_activation is not None:
            layers.append(getattr(nn, cfg.final_activation)(**(cfg.final_activation_params or {})))
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z.transpose(1, 2))


# ---- residual vector quantiser ---------------------------------------------------------------
class _RVQCodebooks(nn.Module):
    """The stacked codebooks ``embed`` (n_q, K, D) plus the buffers the official
    checkpoints carry for training (``inited``, ``cluster_size``, ``embed_avg``)."""

    def __init__(self, n_q: int, size: int, dim: int):
        super().__init__()
        self.register_buffer("inited", torch.ones(n_q, 1))
        self.register_buffer("cluster_size", torch.zeros(n_q, size))
        self.register_buffer("embed", torch.zeros(n_q, size, dim))
        self.register_buffer("embed_avg", torch.zeros(n_q, size, dim))


class _RVQHolder(nn.Module):
    def __init__(self, n_q: int, size: int, dim: int):
        super().__init__()
        self.model = _RVQCodebooks(n_q, size, dim)


class ResidualVQ(nn.Module):
    """Greedy residual VQ: each stage picks the nearest code (squared Euclidean
    distance) to what the previous stages left over."""

    def __init__(self, latent_dim: int, cfg: QuantizerConfig):
        super().__init__()
        dim = cfg.codec_dim or latent_dim
        self.cfg = cfg
        if dim != latent_dim:
            self.input_proj = nn.Linear(latent_dim, dim)
            self.output_proj = nn.Linear(dim, latent_dim)
        else:
            self.input_proj = self.output_proj = None
        self.rq = _RVQHolder(cfg.num_quantizers, cfg.codebook_size, dim)

    @property
    def codebooks(self) -> torch.Tensor:
        return self.rq.model.embed

    def encode(self, z: torch.Tensor, n_q: int) -> torch.Tensor:
        """(B, T, latent) -> codes (n_q, B, T)."""
        if self.input_proj is not None:
            z = self.input_proj(z)
        if self.cfg.codec_range is not None:
            z = torch.tanh(z) * self.cfg.codec_range
        residual = z
        codes = []
        for book in self.codebooks[:n_q]:
            flat = residual.reshape(-1, residual.shape[-1])
            # Written as the negated expansion ||x||^2 - 2 x.e + ||e||^2 (not cdist) so that
            # near-ties resolve to the same code as the reference implementation.
            score = -(flat.pow(2).sum(1, keepdim=True) - 2 * flat @ book.t() + book.pow(2).sum(1)[None, :])
            idx = score.argmax(dim=-1).view(residual.shape[:-1])
            residual = residual - F.embedding(idx, book)
            codes.append(idx)
        return torch.stack(codes)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (n_q, B, T) -> (B, T, latent)."""
        out = None
        for book, idx in zip(self.codebooks, codes):
            q = F.embedding(idx, book)
            out = q if out is None else out + q
        assert out is not None
        if self.output_proj is not None:
            out = self.output_proj(out)
        return out


class FunCodecModel(nn.Module):
    """Encoder, RVQ and decoder with FunCodec's whole-clip loudness normalisation."""

    def __init__(self, cfg: FunCodecConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = SEANetEncoder(cfg.encoder)
        self.quantizer = ResidualVQ(cfg.encoder.dimension, cfg.quantizer)
        self.decoder = SEANetDecoder(cfg.decoder)

    def _scale(self, x: torch.Tensor) -> torch.Tensor | None:
        if not self.cfg.audio_normalize:
            return None
        return 1e-8 + x.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()

    def encode(self, wav: torch.Tensor, n_q: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T) or (B, C, T) -> (codes (n_q, B, frames), per-clip scale or None)."""
        x = wav if wav.dim() == 3 else wav[:, None, :]
        scale = self._scale(x)
        if scale is not None:
            x = x / scale
        return self.quantizer.encode(self.encoder(x), n_q), scale

    def decode(self, codes: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        """-> (B, C, frames * hop); multiplied back to the input loudness when scale is given."""
        y = self.decoder(self.quantizer.decode(codes))
        return y if scale is None else y * scale.view(-1, 1, 1)

    def forward(self, wav: torch.Tensor, n_q: int) -> torch.Tensor:
        codes, scale = self.encode(wav, n_q)
        return self.decode(codes, scale)[..., : wav.shape[-1]]


# ---- checkpoints ------------------------------------------------------------------------------
#: Prefixes of official checkpoint tensors that inference does not use.
TRAINING_ONLY_PREFIXES = ("discriminator.", "mel_spec_transforms.", "context_model.")


def official_state_dict(state: dict[str, torch.Tensor], n_q: int) -> dict[str, torch.Tensor]:
    """Drop training-only tensors and convert the per-layer codebook layout
    (``use_ddp: false``: ``quantizer.rq.model.layers.<i>._codebook.<name>``) to the stacked one."""
    out: dict[str, torch.Tensor] = {}
    per_layer: dict[str, dict[int, torch.Tensor]] = {}
    prefix = "quantizer.rq.model.layers."
    for key, value in state.items():
        if key.startswith(TRAINING_ONLY_PREFIXES):
            continue
        if key.startswith(prefix) and "._codebook." in key:
            index, name = key[len(prefix):].split("._codebook.")
            per_layer.setdefault(name, {})[int(index)] = value
            continue
        out[key] = value
    for name, layers in per_layer.items():
        if sorted(layers) == list(range(n_q)):
            stacked = torch.stack([layers[i] for i in range(n_q)])
            out[f"quantizer.rq.model.{name}"] = stacked.view(n_q, 1) if name == "inited" else stacked
    return out
