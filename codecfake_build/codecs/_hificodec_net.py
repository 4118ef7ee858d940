"""HiFi-Codec (Yang et al. 2023, AcademiCodec) as plain PyTorch modules.

The network is a HiFi-GAN-style convolutional autoencoder with a group-residual
vector quantizer (GRVQ) in between:

* encoder: a 7-tap stem, then one strided convolution per stage (the decoder's
  upsampling rates in reverse) followed by parallel multi-receptive-field residual
  stacks, each followed by a GroupNorm over its running sum; a 3-tap projection to
  the latent;
* quantizer: the latent is split into ``n_code_groups`` channel groups and each group
  is coded by two residual stages (codebooks of ``n_codes`` entries), so one frame
  carries ``2 * n_code_groups`` indices;
* generator: the HiFi-GAN V1 decoder (transposed convolutions + residual stacks,
  tanh output).

Everything is non-causal, and the encoder's GroupNorms take statistics over the whole
clip, so every output sample depends on every input sample (and on any padding).

Module and parameter names follow the official checkpoint's state-dict keys (a fact of
its file format), so an official file loads after weight norm is folded into plain
convolution weights (``fold_official_state``), exactly what the official inference
script does with ``remove_weight_norm`` before synthesis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Negative slope of the leaky ReLUs inside both networks (HiFi-GAN's value).
_SLOPE = 0.1
#: The official encoder's last activation before its projection is a leaky ReLU with
#: PyTorch's default slope, not 0.1; a different slope changes every code.
_ENCODER_OUT_SLOPE = 0.01
#: Residual VQ stages per group (fixed in the official quantizer).
RESIDUAL_STAGES = 2


@dataclass(frozen=True)
class HiFiCodecArch:
    """Hyper-parameters of one HiFi-Codec network.  Defaults are the released 320x
    models (egs/HiFi-Codec-{16k,24k}-320d/config_*.json; both share the architecture)."""

    upsample_rates: tuple[int, ...] = (8, 5, 4, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 11, 8, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    n_code_groups: int = 2
    n_codes: int = 1024
    #: Not in the official config files: the official code fixes the encoder's stem
    #: width at 32 (doubling per stage) and the latent width at 512.
    encoder_channels: int = 32
    latent_dim: int = 512

    def __post_init__(self) -> None:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if any(len(d) != 3 for d in self.resblock_dilation_sizes):
            raise ValueError("HiFi-Codec residual stacks (resblock '1') take three dilations each")
        if self.encoder_widths[-1] != self.latent_dim:
            raise ValueError(f"encoder ends at {self.encoder_widths[-1]} channels but latent_dim is "
                             f"{self.latent_dim}")
        if self.latent_dim % self.n_code_groups:
            raise ValueError("latent_dim must split evenly into n_code_groups")
        if any(w < 16 for w in self.encoder_widths):
            raise ValueError("encoder widths below 16 leave its GroupNorms (width // 16 groups) empty")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "HiFiCodecArch":
        if str(d.get("resblock", "1")) != "1":
            raise ValueError("only resblock '1' (the released HiFi-Codec models' type) is implemented")
        known = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k not in known:
                continue
            if isinstance(v, list):
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            kw[k] = v
        return cls(**kw)

    @property
    def hop(self) -> int:
        return math.prod(self.upsample_rates)

    @property
    def n_codebooks(self) -> int:
        return RESIDUAL_STAGES * self.n_code_groups

    @property
    def encoder_widths(self) -> list[int]:
        return [self.encoder_channels * 2 ** (i + 1) for i in range(len(self.upsample_rates))]


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, dilation: int = 1, *,
          pad: int | None = None, weight_normed: bool = True) -> nn.Conv1d:
    """A Conv1d; ``weight_normed`` records that the official checkpoint stores its weight
    as a weight-norm pair (so loading must fold it)."""
    conv = nn.Conv1d(c_in, c_out, k, stride, padding=dilation * (k - 1) // 2 if pad is None else pad,
                     dilation=dilation)
    conv.weight_normed = weight_normed  # type: ignore[attr-defined]
    return conv


class _ResidualStack(nn.Module):
    """Three residual units; unit i: lrelu -> dilated conv -> lrelu -> conv (dilation 1)."""

    def __init__(self, width: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(_conv(width, width, kernel, dilation=d) for d in dilations)
        self.convs2 = nn.ModuleList(_conv(width, width, kernel) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, _SLOPE)), _SLOPE))
        return x


class HiFiCodecEncoder(nn.Module):
    def __init__(self, arch: HiFiCodecArch):
        super().__init__()
        # The encoder mirrors the decoder: its strides and residual kernels run in reverse order.
        strides = list(zip(arch.upsample_rates, arch.upsample_kernel_sizes))[::-1]
        stacks = list(zip(arch.resblock_kernel_sizes, arch.resblock_dilation_sizes))[::-1]
        widths = [arch.encoder_channels] + arch.encoder_widths
        self.n_stacks = len(stacks)
        self.conv_pre = _conv(1, arch.encoder_channels, 7)
        self.ups = nn.ModuleList(_conv(widths[i], widths[i + 1], k, stride=r, pad=(k - r) // 2)
                                 for i, (r, k) in enumerate(strides))
        self.resblocks = nn.ModuleList(_ResidualStack(w, k, d) for w in widths[1:] for k, d in stacks)
        self.normalize = nn.ModuleList(nn.GroupNorm(w // 16, w, eps=1e-6) for w in widths[1:]
                                       for _ in stacks)
        self.conv_post = _conv(widths[-1], arch.latent_dim, 3, weight_normed=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(batch, 1, samples) -> (batch, latent_dim, frames)."""
        x = self.conv_pre(wave)
        for stage, down in enumerate(self.ups):
            x = down(F.leaky_relu(x, _SLOPE))
            acc = None
            for j in range(self.n_stacks):
                k = stage * self.n_stacks + j
                y = self.resblocks[k](x)
                # Each GroupNorm normalises the running sum so far, not the single stack.
                acc = self.normalize[k](y if acc is None else acc + y)
            x = acc / self.n_stacks
        return self.conv_post(F.leaky_relu(x, _ENCODER_OUT_SLOPE))


class HiFiCodecGenerator(nn.Module):
    def __init__(self, arch: HiFiCodecArch):
        super().__init__()
        c0 = arch.upsample_initial_channel
        widths = [c0 // 2 ** i for i in range(len(arch.upsample_rates) + 1)]
        stacks = list(zip(arch.resblock_kernel_sizes, arch.resblock_dilation_sizes))
        self.n_stacks = len(stacks)
        self.conv_pre = _conv(arch.latent_dim, c0, 7)
        self.ups = nn.ModuleList()
        for i, (r, k) in enumerate(zip(arch.upsample_rates, arch.upsample_kernel_sizes)):
            up = nn.ConvTranspose1d(widths[i], widths[i + 1], k, r, padding=(k - r) // 2)
            up.weight_normed = True  # type: ignore[attr-defined]
            self.ups.append(up)
        self.resblocks = nn.ModuleList(_ResidualStack(w, k, d) for w in widths[1:] for k, d in stacks)
        self.conv_post = _conv(widths[-1], 1, 7)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(batch, latent_dim, frames) -> (batch, 1, frames * hop) in [-1, 1]."""
        x = self.conv_pre(latent)
        for stage, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, _SLOPE))
            first = stage * self.n_stacks
            acc = self.resblocks[first](x)
            for k in range(first + 1, first + self.n_stacks):
                acc = acc + self.resblocks[k](x)
            x = acc / self.n_stacks
        return torch.tanh(self.conv_post(F.leaky_relu(x, _SLOPE)))


class _Codebook(nn.Module):
    def __init__(self, n_codes: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(n_codes, dim)

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the closest entry (squared Euclidean distance) for each row of x."""
        table = self.embedding.weight
        # The expansion |x|^2 + |e|^2 - 2 x.e, summed in this order, is the official
        # quantizer's; another order would round differently and could flip near-ties.
        dist = x.pow(2).sum(1, keepdim=True) + table.pow(2).sum(1) - 2 * (x @ table.t())
        return dist.argmin(1)


class GroupResidualVQ(nn.Module):
    """Channel groups, each coded by two residual stages.  Code order per frame:
    stage 0 groups 0..G-1, then stage 1 groups 0..G-1 (the official layout)."""

    def __init__(self, arch: HiFiCodecArch):
        super().__init__()
        dim = arch.latent_dim // arch.n_code_groups
        self.latent_dim = arch.latent_dim
        self.groups = arch.n_code_groups
        # Official names: ``quantizer_modules`` is stage 0, ``quantizer_modules2`` stage 1.
        self.quantizer_modules = nn.ModuleList(_Codebook(arch.n_codes, dim) for _ in range(self.groups))
        self.quantizer_modules2 = nn.ModuleList(_Codebook(arch.n_codes, dim) for _ in range(self.groups))

    def _stages(self) -> list[nn.ModuleList]:
        return [self.quantizer_modules, self.quantizer_modules2]

    def encode(self, latent: torch.Tensor) -> torch.Tensor:
        """(batch, latent_dim, frames) -> int64 codes (batch, frames, 2 * groups)."""
        b, _, t = latent.shape
        residual = latent.transpose(1, 2).reshape(-1, self.latent_dim)
        codes = []
        for books in self._stages():
            parts = residual.split(self.latent_dim // self.groups, dim=1)
            idx = [book.nearest(p) for book, p in zip(books, parts)]
            chosen = torch.cat([book.embedding(i) for book, i in zip(books, idx)], dim=1)
            residual = residual - chosen
            codes.extend(idx)
        return torch.stack(codes, dim=1).reshape(b, t, -1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 2 * groups) codes -> (batch, latent_dim, frames)."""
        out = 0
        for s, books in enumerate(self._stages()):
            out = out + torch.cat([book.embedding(codes[..., s * self.groups + g])
                                   for g, book in enumerate(books)], dim=-1)
        return out.transpose(1, 2)


class HiFiCodecNet(nn.Module):
    def __init__(self, arch: HiFiCodecArch):
        super().__init__()
        self.arch = arch
        self.encoder = HiFiCodecEncoder(arch)
        self.quantizer = GroupResidualVQ(arch)
        self.generator = HiFiCodecGenerator(arch)

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> codes (batch, frames, codebooks); frames = samples // hop
        (the strided convolutions drop a trailing partial frame)."""
        return self.quantizer.encode(self.encoder(wave.unsqueeze(1)))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (batch, frames, codebooks) -> (batch, frames * hop)."""
        return self.generator(self.quantizer.decode(codes)).squeeze(1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(wave))


# ---- the official checkpoint format ---------------------------------------------------
#: Top-level entries of an official checkpoint (torch.save of a dict of state dicts).
PARTS = ("generator", "encoder", "quantizer")


def official_shapes(net: HiFiCodecNet) -> dict[str, tuple[int, ...]]:
    """Every tensor an official checkpoint of this architecture holds, as
    ``"<part>.<key>"`` -> shape; weight-normed convolutions store ``weight_g``
    (one gain per slice along dim 0) and ``weight_v`` instead of ``weight``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for part in PARTS:
        for mod_name, mod in getattr(net, part).named_modules():
            prefix = f"{part}.{mod_name}." if mod_name else f"{part}."
            for p_name, p in mod.named_parameters(recurse=False):
                shape = tuple(p.shape)
                if p_name == "weight" and getattr(mod, "weight_normed", False):
                    shapes[prefix + "weight_g"] = (shape[0],) + (1,) * (len(shape) - 1)
                    shapes[prefix + "weight_v"] = shape
                else:
                    shapes[prefix + p_name] = shape
    return shapes


def official_parameter_count(arch: HiFiCodecArch) -> int:
    """Number of values in an official checkpoint of ``arch`` (what the official
    classes report as their parameter count, weight-norm gains included)."""
    with torch.device("meta"):
        net = HiFiCodecNet(arch)
    return sum(math.prod(s) for s in official_shapes(net).values())


def flatten_official(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """``{"generator": sd, ...}`` -> ``{"generator.<key>": tensor, ...}``; newer PyTorch
    weight-norm names (``parametrizations.weight.original0/1``) become ``weight_g/_v``."""
    flat: dict[str, torch.Tensor] = {}
    for part in PARTS:
        for k, v in ckpt[part].items():
            k = (k.replace("parametrizations.weight.original0", "weight_g")
                  .replace("parametrizations.weight.original1", "weight_v"))
            flat[f"{part}.{k}"] = v
    return flat


def check_official(net: HiFiCodecNet, flat: dict[str, torch.Tensor]) -> list[str]:
    """Problems (missing, unexpected or mis-shaped tensors) of a flattened checkpoint."""
    want = official_shapes(net)
    problems = [f"missing {k}" for k in want if k not in flat]
    problems += [f"unexpected {k}" for k in flat if k not in want]
    problems += [f"{k} has shape {tuple(flat[k].shape)}, expected {want[k]}"
                 for k in want if k in flat and tuple(flat[k].shape) != want[k]]
    return problems


def fold_official_state(flat: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each weight-norm pair by the weight it stands for: v scaled so that each
    slice along dim 0 has norm g (PyTorch's weight_norm with dim=0)."""
    out: dict[str, torch.Tensor] = {}
    for k, v in flat.items():
        if k.endswith(".weight_g"):
            continue
        if k.endswith(".weight_v"):
            g = flat[k[: -len("_v")] + "_g"].float()
            v = v.float()
            norm = v.reshape(v.shape[0], -1).norm(dim=1).reshape(g.shape)
            out[k[: -len("_v")]] = v * (g / norm)
        else:
            out[k] = v.float()
    return out
