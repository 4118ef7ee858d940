"""SNAC, the Multi-Scale Neural Audio Codec (Siuzdak et al., 2024), through the official
``snac`` package (PyPI 1.2.1; pure torch + einops) with the released hub checkpoints
``hubertsiuzdak/snac_{24,32,44}khz`` (``config.json`` + ``pytorch_model.bin``).

Bitrates (12-bit codebooks; coarser codebooks run at 1/stride of the finest rate):
  24 kHz: hop 512, strides 4/2/1: 46.9 x (1/4 + 1/2 + 1) x 12 = 0.98 kbps (speech model);
  32 kHz: hop 384, strides 8/4/2/1: 83.3 x 1.875 x 12 = 1.9 kbps (music / SFX model);
  44.1 kHz: hop 384, strides 8/4/2/1: 114.8 x 1.875 x 12 = 2.6 kbps (music / SFX model).

Padding: the package pads every input with zeros to a multiple of hop x lcm(first VQ
stride, attention window) (2048 samples at 24 kHz, 12288 at 32 / 44.1 kHz) so that the
coarsest codebook and the local-attention windows tile the clip; the output is then
trimmed to the input length.  ``delay`` is 0 (index-aligned, non-causal reconstruction).

Batching: every convolution zero-pads and the attention windows never straddle the
padded end of a clip (its padded length is a whole number of windows), so a clip in a
batch padded further sees exactly what it sees alone once each convolution's input is
zeroed past that clip's own padded length at that layer's resolution (the masking DAC
uses); clips of different lengths share forward passes (tested to 1e-4).

Decoder noise: the released decoders inject Gaussian noise (``NoiseBlock``:
``x + randn * linear(x)``) drawn afresh from the global RNG on every call, which makes
outputs irreproducible and batch-dependent.  Each noise block here draws the same kind
of N(0, 1) noise from a generator seeded by (block, position), so a clip's output
depends only on the clip: reproducible builds and batched == one-at-a-time.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from codecfake_build.codecs import _torch_package as pkg
from codecfake_build.codecs import weights
from codecfake_build.codecs.base import CODECS, Codec, CodecConfig, CodecUnavailableError

_NAME = "snac"
_FILES = ("config.json", "pytorch_model.bin")
_FIX_INSTALL = f"{pkg.CODECS_EXTRA}, or: pip install --no-deps snac==1.2.1 einops"

_SPEECH = dict(encoder_dim=48, encoder_rates=[2, 4, 8, 8], decoder_dim=1024, decoder_rates=[8, 8, 4, 2],
               attn_window_size=None, codebook_size=4096, codebook_dim=8, vq_strides=[4, 2, 1],
               noise=True, depthwise=True)
_MUSIC = dict(encoder_dim=64, encoder_rates=[2, 3, 8, 8], decoder_dim=1536, decoder_rates=[8, 8, 3, 2],
              attn_window_size=32, codebook_size=4096, codebook_dim=8, vq_strides=[8, 4, 2, 1],
              noise=True, depthwise=True)
#: The released config.json of each hub repo (values as published; 19.8 M / 54.5 M / 54.5 M
#: parameters, as the official README states and init_random reproduces).
RELEASED_CONFIGS: dict[str, dict[str, Any]] = {
    "hubertsiuzdak/snac_24khz": dict(sampling_rate=24000, **_SPEECH),
    "hubertsiuzdak/snac_32khz": dict(sampling_rate=32000, **_MUSIC),
    "hubertsiuzdak/snac_44khz": dict(sampling_rate=44100, **_MUSIC),
}


def _cfg(name: str, repo: str, kbps: float, use: str) -> CodecConfig:
    arch = RELEASED_CONFIGS[repo]
    rate, hop = arch["sampling_rate"], int(np.prod(arch["encoder_rates"]))
    strides = arch["vq_strides"]
    exact = rate / hop * sum(1 / s for s in strides) * 12 / 1000
    return CodecConfig(name, kbps, {"repo": repo, "sample_rate": rate, "frame_size": hop},
                       f"SNAC {rate / 1000:g} kHz ({use}), {len(strides)} codebooks x 12 bit at "
                       f"{', '.join(f'{rate / hop / s:.1f}' for s in strides)} frames/s = {exact:.3f} kbps")


def _legacy_weight_norm_names(state: dict[str, Any]) -> dict[str, Any]:
    """Checkpoints saved with torch's old weight_norm name the two tensors ``weight_g`` /
    ``weight_v``; the package's parametrized modules call them ``original0`` / ``original1``."""
    out = {}
    for k, v in state.items():
        if k.endswith(".weight_g"):
            k = k[: -len("weight_g")] + "parametrizations.weight.original0"
        elif k.endswith(".weight_v"):
            k = k[: -len("weight_v")] + "parametrizations.weight.original1"
        out[k] = v
    return out


class _PositionalNoise:
    """N(0, 1) noise whose value at time index t depends only on (seed, t): generated in
    fixed chunks, each from its own seeded generator, and cached (on the CPU, so CPU and
    GPU runs get identical noise)."""

    CHUNK = 1 << 15

    def __init__(self, seed: int):
        self.seed = seed
        self.cache: Any = None

    def get(self, n: int, device: Any, dtype: Any) -> Any:
        import torch

        have = 0 if self.cache is None else self.cache.numel()
        if have < n:
            parts = [] if self.cache is None else [self.cache]
            for c in range(have // self.CHUNK, -(-n // self.CHUNK)):
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + c)
                parts.append(torch.randn(self.CHUNK, generator=g))
            self.cache = torch.cat(parts)
        return self.cache[:n].to(device=device, dtype=dtype)


def _use_positional_noise(model: Any, noise_block_cls: type) -> int:
    """Replace each noise block's draw from the global RNG by positional noise; returns
    how many blocks were changed."""
    blocks = [m for m in model.modules() if isinstance(m, noise_block_cls)]
    for i, block in enumerate(blocks):
        source = _PositionalNoise(seed=i + 1)

        def forward(x: Any, block: Any = block, source: _PositionalNoise = source) -> Any:
            noise = source.get(x.shape[-1], x.device, x.dtype).view(1, 1, -1)
            return x + noise * block.linear(x)

        block.forward = forward
    return len(blocks)


@CODECS.register(_NAME)
class SnacCodec(Codec):
    paper = "Siuzdak, Grötschla, Lanzendörfer, 'SNAC: Multi-Scale Neural Audio Codec', 2024 (arXiv:2410.14411)"
    sample_rate = 24000
    frame_size = 512
    configs = {c.name: c for c in (
        _cfg("24khz", "hubertsiuzdak/snac_24khz", 0.98, "speech"),
        _cfg("32khz", "hubertsiuzdak/snac_32khz", 1.9, "music / sound effects"),
        _cfg("44khz", "hubertsiuzdak/snac_44khz", 2.6, "music / sound effects"),
    )}
    default_config = "24khz"
    weights_source = ("https://huggingface.co/hubertsiuzdak/snac_24khz, https://huggingface.co/hubertsiuzdak/"
                      "snac_32khz, https://huggingface.co/hubertsiuzdak/snac_44khz (config.json, "
                      "pytorch_model.bin); code: PyPI snac 1.2.1 (github.com/hubertsiuzdak/snac)")
    licence = "MIT (code and weights)"

    def __init__(self, config: str | None = None, device: str = "cpu", weights: str | None = None):
        super().__init__(config=config, device=device, weights=weights)
        self.model: Any = None

    @property
    def repo_id(self) -> str:
        return str(self.config.params["repo"])

    def _package(self) -> Any:
        pkg.import_package(_NAME, "torch", _FIX_INSTALL)
        pkg.import_package(_NAME, "einops", _FIX_INSTALL)
        return pkg.import_package(_NAME, "snac", _FIX_INSTALL)

    # ---- weights ---------------------------------------------------------------------
    def _cached_dir(self) -> Path | None:
        """``$CODECFAKE_CACHE/snac/<repo name>/`` or ``$CODECFAKE_CACHE/snac/`` if it holds
        both files of a model at this config's rate (one codec name covers three repos)."""
        root = weights.cache_dir(_NAME)
        for d in (root / self.repo_id.split("/")[-1], root):
            try:
                cfg = json.loads((d / "config.json").read_text())
            except (OSError, ValueError):
                continue
            if isinstance(cfg, dict) and cfg.get("sampling_rate") == self.native_rate \
                    and (d / _FILES[1]).is_file():
                return d
        return None

    def checkpoint_dir(self) -> Path:
        """Directory with config.json and pytorch_model.bin: ``--weights``, the project cache,
        the HF cache, or (online) a download of the hub repo."""
        if self.weights is not None:
            d = Path(self.weights).expanduser()
            d = d.parent if d.is_file() else d
        else:
            d = self._cached_dir() or weights.hf_snapshot(_NAME, self.repo_id, allow_patterns=list(_FILES))
        for f in _FILES:
            if not (d / f).is_file():
                raise weights.missing_weights_error(_NAME, f"{d / f} does not exist",
                                                    f"expected the {self.repo_id} files")
        return d

    def _fix(self) -> str:
        return (f"pass --weights {_NAME}=DIR holding config.json and pytorch_model.bin from "
                f"https://huggingface.co/{self.repo_id}")

    def _read_config(self, path: Path, model_cls: Any) -> dict[str, Any]:
        try:
            cfg = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CodecUnavailableError(f"cannot read {path} ({exc}). Fix: {self._fix()}") from None
        if not isinstance(cfg, dict):
            raise CodecUnavailableError(f"{path} is not a JSON object. Fix: {self._fix()}")
        # The package builds the model as SNAC(**config): an unknown key would be a TypeError.
        known = set(inspect.signature(model_cls.__init__).parameters) - {"self"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise CodecUnavailableError(f"{path} has '{unknown[0]}', which snac.SNAC does not take. "
                                        f"Fix: {self._fix()}")
        if cfg.get("sampling_rate") != self.native_rate:
            raise CodecUnavailableError(f"{path} describes a {cfg.get('sampling_rate')} Hz model; "
                                        f"{self.spec} needs {self.native_rate} Hz. Fix: {self._fix()} "
                                        f"or choose the config that matches these weights")
        return cfg

    def _install(self, model: Any) -> None:
        layers = pkg.import_package(_NAME, "snac.layers", _FIX_INSTALL)
        _use_positional_noise(model, layers.NoiseBlock)
        hop = int(model.hop_length)
        if hop != self.native_frame_size:
            raise CodecUnavailableError(f"{self.spec}: model hop {hop} != {self.native_frame_size}. "
                                        f"Fix: {self._fix()}")
        self.model = model.eval().to(self.device)
        self._loaded = True

    def load(self) -> None:
        if self.model is not None:
            return
        snac = self._package()
        pkg.require_device(self.spec, self.device)
        d = self.checkpoint_dir()
        cfg = self._read_config(d / "config.json", snac.SNAC)
        model = snac.SNAC(**cfg)
        state = _legacy_weight_norm_names(pkg.load_state_dict_file(d / "pytorch_model.bin", self._fix()))
        pkg.check_state_dict(model, state, d / "pytorch_model.bin", self._fix())
        model.load_state_dict(state)
        self._install(model)

    def init_random(self, seed: int = 0) -> str:
        import torch

        snac = self._package()
        torch.manual_seed(seed)
        model = snac.SNAC(**RELEASED_CONFIGS[self.repo_id])
        self._install(model)
        n = sum(p.numel() for p in model.parameters())
        return f"random init, {self.repo_id} architecture ({n / 1e6:.1f} M parameters)"

    # ---- coding ------------------------------------------------------------------------
    def _pad_multiple(self) -> int:
        """The package's own padding unit: hop x lcm(first VQ stride, attention window)."""
        m = self.model
        return int(m.hop_length) * math.lcm(int(m.vq_strides[0]), int(m.attn_window_size or 1))

    def _padded_length(self, n: int) -> int:
        unit = self._pad_multiple()
        return max(1, -(-n // unit)) * unit

    def _mixed_lengths_exact(self) -> bool:
        # Masking reproduces a lone clip only if every codebook's pooling window and every
        # attention window ends at the clip's padded end (true for all released configs).
        frames = self._pad_multiple() // int(self.model.hop_length)
        return all(frames % int(s) == 0 for s in self.model.vq_strides)

    def _forward(self, x: Any, valid: Any) -> tuple[Any, Any]:
        """Codes and (batch, time) audio for a padded (batch, time) tensor whose row i holds a
        clip padded to ``valid[i]`` samples."""
        from codecfake_build.codecs.dac import _mask_past_valid

        hop = int(self.model.hop_length)
        with _mask_past_valid(self.model, valid):
            codes = self.model.encode(x[:, None, :])
        with _mask_past_valid(self.model, valid // hop):
            y = self.model.decode(codes)
        return codes, y[:, 0, :]

    def _run(self, waves: list[np.ndarray]) -> tuple[Any, Any]:
        import torch

        valid = [self._padded_length(len(w)) for w in waves]
        x = np.zeros((len(waves), max(valid)), dtype=np.float32)
        for row, w in zip(x, waves):
            row[: len(w)] = w
        with torch.inference_mode():
            return self._forward(torch.from_numpy(x).to(self.device),
                                 torch.tensor(valid, dtype=torch.long, device=self.device))

    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        self.ensure_loaded()
        padded = [self._padded_length(len(w)) for w in batch]
        out: list[np.ndarray | None] = [None] * len(batch)
        for group in self._length_groups(padded, mixed=self._mixed_lengths_exact()):
            waves = [np.asarray(batch[i], dtype=np.float32) for i in group]
            _, y = self._run(waves)
            y = y.float().cpu().numpy()
            for i, w, row in zip(group, waves, y):
                out[i] = np.ascontiguousarray(row[: len(w)])
        return out  # type: ignore[return-value]

    def codes(self, wave: np.ndarray) -> list[np.ndarray]:
        """Integer codes of one native-rate mono clip, coarsest first (one array per codebook,
        of different lengths); for inspection."""
        self.ensure_loaded()
        codes, _ = self._run([np.asarray(wave, dtype=np.float32)])
        return [c[0].cpu().numpy() for c in codes]
