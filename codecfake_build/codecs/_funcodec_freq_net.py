"""FunCodec's frequency-domain generator, FreqCodec (Du et al. 2023), inference only.

Written from the FunCodec paper and the architecture/hyper-parameters of
alibaba-damo-academy/FunCodec (commit 3435d87, ``model: freq_codec`` with the
``encodec_seanet_{encoder,decoder}_2d`` modules).  The signal path:

1. the whole clip is divided by its RMS (``audio_normalize``);
2. a centred STFT (periodic Hann window of ``n_fft``, hop ``hop_length``, reflect
   padding) becomes three planes: log magnitude (clamped at 1e-6) and the real and
   imaginary parts of the unit phasor;
3. a 2-D SEANet encoder treats (planes, frequency, time) as an image: every
   down-sampling step divides frequency by 4 (and time by 1 or 2) until one
   frequency bin is left, which is squeezed away before the LSTM;
4. the residual vector quantiser of the time-domain models (shared code);
5. the mirrored 2-D decoder outputs three planes again: softplus(plane 0) is the
   magnitude and (plane 1, plane 2) a complex phasor that is *not* re-normalised;
   their product is inverted by a centred iSTFT and multiplied back by the RMS.

The released checkpoints differ only in ``conv_group_ratio`` ("gr1"/"gr8"):
grouped convolutions with ``min(in, out) // 2 // ratio`` groups.

Module names follow the official state-dict keys (``encoder.model.<i>.conv.conv.weight``,
``quantizer.rq.model.embed``, ``enc_trans_func.window`` ...), so an official
``model.pth`` loads without renaming.

Padding conventions that differ from the 1-D layers: a 2-D convolution pads the
frequency axis symmetrically (larger half first) and, when not causal, puts the
extra time padding that completes the last window on the *left*; transposed 2-D
convolutions may keep some samples of their trimmed margin (``out_padding``: the
last decoder layer keeps one frequency bin on the right, so 256 bins become 257).
The iSTFT output holds ``hop_length * (frames - 1)`` samples, which can be up to
one STFT hop shorter than the input; the codec framework pads it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from codecfake_build.codecs._funcodec_net import (
    NORMS,
    FunCodecConfigError,
    QuantizerConfig,
    ResidualVQ,
    SConv1d,
    SEANetConfig,
    SEANetOptions,
    SLSTM,
    _activation,
    _has_seq,
    _pick,
    _NormConv,
)

DOMAINS = ("mag_phase",)


# ---- configuration ------------------------------------------------------------------------
@dataclass
class FreqSEANetConfig(SEANetOptions):
    """Options of the official SEANetEncoder2d / SEANetDecoder2d (defaults are the
    official class defaults, not the recipe values)."""

    channels: int = 3             # feature planes (encoder ``input_size`` / decoder ``channels``)
    ratios: list[list[int]] = field(default_factory=lambda: [[4, 1], [4, 1], [4, 2], [4, 1]])  # (freq, time)
    last_out_padding: list[list[int]] = field(default_factory=lambda: [[0, 1], [0, 0]])  # (freq, time)
    conv_group_ratio: int = -1
    tr_conv_group_ratio: int = -1

    @property
    def time_hop(self) -> int:
        return int(math.prod(int(t) for _, t in self.ratios))

    def as_1d(self) -> SEANetConfig:
        """The options the 1-D layers inside the 2-D nets read (norm, padding, causality)."""
        return SEANetConfig(norm=self.norm, norm_params=dict(self.norm_params), causal=self.causal,
                            pad_mode=self.pad_mode)


#: Options the official 2-D encoder's constructor does not take (the decoder takes all).
_DECODER_ONLY = ("final_activation", "final_activation_params", "trim_right_ratio", "last_out_padding",
                 "tr_conv_group_ratio")


@dataclass
class FreqCodecConfig:
    """What inference needs from an official FreqCodec ``config.yaml``."""

    encoder: FreqSEANetConfig
    decoder: FreqSEANetConfig
    quantizer: QuantizerConfig
    sample_rate: int = 16000
    audio_normalize: bool = True
    domain: str = "mag_phase"
    n_fft: int = 512
    stft_hop: int = 160

    @property
    def hop(self) -> int:
        """Audio samples per code frame."""
        return self.stft_hop * self.encoder.time_hop

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def bitrate_kbps(self, n_q: int) -> float:
        return self.frame_rate * n_q * math.log2(self.quantizer.codebook_size) / 1000.0


def _groups(channels: int, ratio: int) -> int:
    """The official grouping rule: ``channels // 2 // ratio`` groups, or 1 when ratio <= 0."""
    return channels // 2 // ratio if ratio > 0 else 1


def _freq_bins_after(bins: int, cfg: FreqSEANetConfig) -> int:
    """Frequency bins left after the encoder's strided convolutions (no extra padding in frequency)."""
    for f, _ in reversed(cfg.ratios):
        kernel, stride = 2 * int(f), int(f)
        bins = (bins + (kernel - 1) - (stride - 1) - kernel) // stride + 1
    return bins


def freq_config_from_yaml(args: dict[str, Any]) -> FreqCodecConfig:
    """Turn a parsed official ``model: freq_codec`` config.yaml into a FreqCodecConfig,
    refusing what this implementation would silently get wrong."""
    expect = {"model": "freq_codec", "encoder": "encodec_seanet_encoder_2d",
              "decoder": "encodec_seanet_decoder_2d", "quantizer": "costume_quantizer"}
    for key, want in expect.items():
        got = args.get(key)
        if got != want:
            raise FunCodecConfigError(f"{key} is '{got}'; a FreqCodec (model: freq_codec) config needs "
                                      f"{key}: {want}")
    model_conf = dict(args.get("model_conf") or {})
    domain = model_conf.get("codec_domain", ["time", "time"])
    domain = [domain, domain] if isinstance(domain, str) else list(domain)
    if len(domain) != 2 or domain[0] != domain[1] or domain[0] not in DOMAINS:
        raise FunCodecConfigError(f"model_conf.codec_domain {domain} is not implemented "
                                  f"(only {[DOMAINS[0], DOMAINS[0]]})")
    if model_conf.get("segment_dur") is not None:
        raise FunCodecConfigError("model_conf.segment_dur is set (chunked overlap-add coding); "
                                  "only whole-clip models (segment_dur: null) are implemented")
    if model_conf.get("bypass_quantizer"):
        raise FunCodecConfigError("model_conf.bypass_quantizer is set; such a model has no codes")
    domain_conf = dict(model_conf.get("domain_conf") or {})
    unknown = sorted(set(domain_conf) - {"n_fft", "hop_length"})
    if unknown:
        raise FunCodecConfigError(f"model_conf.domain_conf.{unknown[0]} is not supported")
    n_fft, stft_hop = int(domain_conf.get("n_fft", 512)), int(domain_conf.get("hop_length", 160))

    planes = int(args.get("input_size") or 1)
    enc = _pick(FreqSEANetConfig, dict(args.get("encoder_conf") or {}), "encoder_conf", {"input_size": "channels"},
                refuse=_DECODER_ONLY)
    enc.channels = planes
    dec = _pick(FreqSEANetConfig, dict(args.get("decoder_conf") or {}), "decoder_conf", {"input_size": "dimension"})
    quant = _pick_quantizer(dict(args.get("quantizer_conf") or {}))
    dec.dimension = enc.dimension  # the decoder's input is the quantiser's output, of the encoder's size
    if planes != 3 or dec.channels != 3:
        raise FunCodecConfigError(f"input_size {planes} / decoder_conf.channels {dec.channels}: mag_phase "
                                  "models stack 3 planes (log magnitude, phasor real, phasor imaginary)")
    for name, cfg in (("encoder_conf", enc), ("decoder_conf", dec)):
        if cfg.norm not in NORMS:
            raise FunCodecConfigError(f"{name}.norm '{cfg.norm}' is not implemented ({', '.join(NORMS)})")
        if cfg.seq_model not in ("lstm", None, "none"):
            raise FunCodecConfigError(f"{name}.seq_model '{cfg.seq_model}' is not implemented (lstm)")
        if cfg.norm == "time_group_norm" and cfg.causal:
            raise FunCodecConfigError(f"{name}: time_group_norm cannot be causal")
        if any(len(r) != 2 for r in cfg.ratios):
            raise FunCodecConfigError(f"{name}.ratios must be (frequency, time) pairs")
    if [list(map(int, r)) for r in enc.ratios] != [list(map(int, r)) for r in dec.ratios]:
        raise FunCodecConfigError("encoder_conf.ratios differ from decoder_conf.ratios")
    bins = n_fft // 2 + 1
    if _freq_bins_after(bins, enc) != 1:
        raise FunCodecConfigError(f"the encoder leaves {_freq_bins_after(bins, enc)} of {bins} frequency bins, "
                                  "not 1 (n_fft and the frequency ratios do not match)")
    if quant.q0_ds_ratio != 1:
        raise FunCodecConfigError("quantizer_conf.q0_ds_ratio != 1 is not implemented")
    hop = stft_hop * enc.time_hop
    if quant.encoder_hop_length != hop:
        raise FunCodecConfigError(f"quantizer_conf.encoder_hop_length {quant.encoder_hop_length} differs "
                                  f"from the model hop {hop} (STFT hop {stft_hop} x time ratios {enc.time_hop})")
    rate = int(model_conf.get("target_sample_hz", args.get("sampling_rate", 16000)))
    return FreqCodecConfig(encoder=enc, decoder=dec, quantizer=quant, sample_rate=rate,
                           audio_normalize=bool(model_conf.get("audio_normalize", False)),
                           domain=domain[0], n_fft=n_fft, stft_hop=stft_hop)


def _pick_quantizer(conf: dict[str, Any]) -> QuantizerConfig:
    from codecfake_build.codecs._funcodec_net import _TRAINING_ONLY_QUANTIZER, _pick as pick_1d

    return pick_1d(QuantizerConfig, conf, "quantizer_conf", ignore=_TRAINING_ONLY_QUANTIZER)


# ---- 2-D layers -----------------------------------------------------------------------------
def _pad2d(x: torch.Tensor, time: tuple[int, int], freq: tuple[int, int], mode: str) -> torch.Tensor:
    if mode != "reflect":
        return F.pad(x, (*time, *freq), mode=mode)
    # Reflection needs more samples than the pad: short axes get zeros appended first,
    # cut off again after reflecting (as the reference does).
    n_freq, n_time = x.shape[-2:]
    extra_t = max(time) - n_time + 1 if n_time <= max(time) else 0
    extra_f = max(freq) - n_freq + 1 if n_freq <= max(freq) else 0
    if extra_t or extra_f:
        x = F.pad(x, (0, extra_t, 0, extra_f))
    y = F.pad(x, (*time, *freq), mode="reflect")
    return y[..., : y.shape[-2] - extra_f, : y.shape[-1] - extra_t]


class SConv2d(nn.Module):
    """Conv2d over (frequency, time) that keeps frequency 'same'-padded and makes the
    time length ceil(T / stride)."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], cfg: FreqSEANetConfig,
                 stride: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1), groups: int = 1):
        super().__init__()
        self.conv = _NormConv(nn.Conv2d(cin, cout, kernel, stride, dilation=dilation, groups=groups),
                              cfg.norm, cfg.norm_params, cout)
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        self.causal, self.pad_mode = cfg.causal, cfg.pad_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kf, kt), (sf, st), (df, dt) = self.kernel, self.stride, self.dilation
        total_f = (kf - 1) * df - (sf - 1)
        total_t = (kt - 1) * dt - (st - 1)
        n = x.shape[-1]
        frames = math.ceil((n - kt + total_t) / st + 1)
        extra = (frames - 1) * st + (kt - total_t) - n
        freq = (total_f - total_f // 2, total_f // 2)
        if self.causal:
            time = (total_t, extra)
        else:
            time = (total_t - total_t // 2 + extra, total_t // 2)
        return self.conv(_pad2d(x, time, freq, self.pad_mode))


class SConvTranspose2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int],
                 cfg: FreqSEANetConfig, keep: list[list[int]] | None = None, groups: int = 1):
        super().__init__()
        self.convtr = _NormConv(nn.ConvTranspose2d(cin, cout, kernel, stride, groups=groups),
                                cfg.norm, cfg.norm_params, cout)
        self.trim_f, self.trim_t = kernel[0] - stride[0], kernel[1] - stride[1]
        # Samples of the trimmed margin to keep: ((freq left, right), (time left, right)).
        self.keep = [list(map(int, k)) for k in keep] if keep else [[0, 0], [0, 0]]
        self.causal, self.trim_right_ratio = cfg.causal, cfg.trim_right_ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convtr(x)
        f_right = self.trim_f // 2
        f_left = self.trim_f - f_right
        t_right = math.ceil(self.trim_t * self.trim_right_ratio) if self.causal else self.trim_t // 2
        t_left = self.trim_t - t_right
        (kfl, kfr), (ktl, ktr) = self.keep
        f_left, f_right = max(f_left - kfl, 0), max(f_right - kfr, 0)
        t_left, t_right = max(t_left - ktl, 0), max(t_right - ktr, 0)
        return y[..., f_left: y.shape[-2] - f_right, t_left: y.shape[-1] - t_right]


class ResBlock2d(nn.Module):
    """act -> conv(k x k, time-dilated) -> act -> conv(1 x 1), plus a 1x1-conv (or identity) skip,
    all grouped by ``conv_group_ratio``."""

    def __init__(self, dim: int, time_dilation: int, cfg: FreqSEANetConfig):
        super().__init__()
        hidden = dim // cfg.compress
        k, ratio = cfg.residual_kernel_size, cfg.conv_group_ratio
        self.block = nn.Sequential(
            _activation(cfg.activation, cfg.activation_params, dim),
            SConv2d(dim, hidden, (k, k), cfg, dilation=(1, time_dilation), groups=_groups(min(dim, hidden), ratio)),
            _activation(cfg.activation, cfg.activation_params, hidden),
            SConv2d(hidden, dim, (1, 1), cfg, groups=_groups(min(dim, hidden), ratio)),
        )
        self.shortcut = nn.Identity() if cfg.true_skip else SConv2d(dim, dim, (1, 1), cfg,
                                                                    groups=_groups(dim, ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class _DropFreqAxis(nn.Module):
    """(B, C, 1, T) -> (B, C, T); keeps the official module index."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(2)


class _AddFreqAxis(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(2)


class FreqEncoder(nn.Module):
    """(B, planes, bins, frames) -> (B, frames / time hop, dimension)."""

    def __init__(self, cfg: FreqSEANetConfig):
        super().__init__()
        act = cfg.activation, cfg.activation_params
        k, width = cfg.kernel_size, cfg.n_filters
        layers: list[nn.Module] = [SConv2d(cfg.channels, width, (k, k), cfg)]
        for f, t in reversed(cfg.ratios):  # the encoder walks the decoder's ratios backwards
            f, t = int(f), int(t)
            layers += [ResBlock2d(width, cfg.dilation_base ** j, cfg) for j in range(cfg.n_residual_layers)]
            layers += [_activation(*act, width),
                       SConv2d(width, width * 2, (2 * f, 2 * t), cfg, stride=(f, t),
                               groups=_groups(width, cfg.conv_group_ratio))]
            width *= 2
        layers.append(_DropFreqAxis())
        if _has_seq(cfg):
            layers.append(SLSTM(width, cfg.seq_layer_num, cfg.res_seq))
        layers += [_activation(*act, width), SConv1d(width, cfg.dimension, cfg.last_kernel_size, cfg.as_1d())]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).transpose(1, 2)


class FreqDecoder(nn.Module):
    """(B, frames, dimension) -> (B, planes, bins, frames * time hop)."""

    def __init__(self, cfg: FreqSEANetConfig):
        super().__init__()
        act = cfg.activation, cfg.activation_params
        width = cfg.n_filters * 2 ** len(cfg.ratios)
        layers: list[nn.Module] = [SConv1d(cfg.dimension, width, cfg.kernel_size, cfg.as_1d())]
        if _has_seq(cfg):
            layers.append(SLSTM(width, cfg.seq_layer_num, cfg.res_seq))
        layers.append(_AddFreqAxis())
        last = len(cfg.ratios) - 1
        for i, (f, t) in enumerate(cfg.ratios):
            f, t = int(f), int(t)
            out = width // 2
            layers += [_activation(*act, width),
                       SConvTranspose2d(width, out, (2 * f, 2 * t), (f, t), cfg,
                                        keep=cfg.last_out_padding if i == last else None,
                                        groups=_groups(width, cfg.tr_conv_group_ratio))]
            layers += [ResBlock2d(out, cfg.dilation_base ** j, cfg) for j in range(cfg.n_residual_layers)]
            width = out
        k = cfg.last_kernel_size
        layers += [_activation(*act, cfg.n_filters), SConv2d(cfg.n_filters, cfg.channels, (k, k), cfg)]
        if cfg.final_activation is not None:
            layers.append(getattr(nn, cfg.final_activation)(**(cfg.final_activation_params or {})))
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z.transpose(1, 2))


class _Window(nn.Module):
    """Holds the STFT window as the buffer ``window`` (the key torchaudio's transforms
    write into the official checkpoints: ``enc_trans_func.window``, ``dec_trans_func.window``)."""

    def __init__(self, n_fft: int):
        super().__init__()
        self.register_buffer("window", torch.hann_window(n_fft))


# ---- the model ------------------------------------------------------------------------------
class FreqCodecModel(nn.Module):
    """STFT -> 2-D encoder -> RVQ -> 2-D decoder -> iSTFT, with whole-clip loudness normalisation."""

    def __init__(self, cfg: FreqCodecConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = FreqEncoder(cfg.encoder)
        self.quantizer = ResidualVQ(cfg.encoder.dimension, cfg.quantizer)
        self.decoder = FreqDecoder(cfg.decoder)
        self.enc_trans_func = _Window(cfg.n_fft)
        self.dec_trans_func = _Window(cfg.n_fft)

    def _scale(self, x: torch.Tensor) -> torch.Tensor | None:
        if not self.cfg.audio_normalize:
            return None
        return 1e-8 + x.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T) normalised audio -> (B, 3, bins, frames): log magnitude and unit phasor."""
        spec = torch.stft(x, self.cfg.n_fft, self.cfg.stft_hop, window=self.enc_trans_func.window,
                          center=True, pad_mode="reflect", return_complex=True)
        mag = spec.abs()
        phasor = spec / mag.clamp(min=1e-6)
        return torch.stack([mag.clamp(min=1e-6).log(), phasor.real, phasor.imag], dim=1)

    def encode(self, wav: torch.Tensor, n_q: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T) or (B, 1, T) -> (codes (n_q, B, frames), per-clip scale or None)."""
        x = wav if wav.dim() == 3 else wav[:, None, :]
        scale = self._scale(x)
        if scale is not None:
            x = x / scale
        return self.quantizer.encode(self.encoder(self.features(x[:, 0])), n_q), scale

    def decode(self, codes: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        """-> (B, 1, stft_hop * (STFT frames - 1)); multiplied back to the input loudness when scale is given."""
        planes = self.decoder(self.quantizer.decode(codes))
        spec = F.softplus(planes[:, 0]) * torch.complex(planes[:, 1], planes[:, 2])
        y = torch.istft(spec, self.cfg.n_fft, self.cfg.stft_hop, window=self.dec_trans_func.window,
                        center=True)[:, None, :]
        return y if scale is None else y * scale.view(-1, 1, 1)

    def forward(self, wav: torch.Tensor, n_q: int) -> torch.Tensor:
        codes, scale = self.encode(wav, n_q)
        return self.decode(codes, scale)[..., : wav.shape[-1]]
