"""The codec interface (after Codec-SUPERB's): every codec is a registry member
with a native sample rate, named configs, weight loading, and batched
re-synthesis.  The framework around it (``Codec.resynthesize``) does the parts
that must be identical for every codec: resampling in and out, padding clips
shorter than one frame, delay compensation, length alignment and peak safety.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np

from codecfake_build.audio import chunk_starts, fit_length, overlap_add, peak_safe, resample
from codecfake_build.registry import Registry

CODECS: Registry[type["Codec"]] = Registry("codec", "codecfake_build.codecs")


class CodecUnavailableError(RuntimeError):
    """A codec cannot run here (missing package, binary or weights); message says how to fix it."""


@dataclass(frozen=True)
class CodecConfig:
    """One named operating point of a codec."""

    name: str
    bitrate_kbps: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class CodecSpec:
    name: str
    config: str | None = None

    def __str__(self) -> str:
        return self.name if self.config is None else f"{self.name}@{self.config}"


class Codec(ABC):
    """Subclass, set the class attributes, implement ``load`` and ``_resynthesize``."""

    paper: ClassVar[str] = ""
    sample_rate: ClassVar[int]
    configs: ClassVar[dict[str, CodecConfig]]
    default_config: ClassVar[str]
    #: Samples (at the native rate) per codec frame / hop.
    frame_size: ClassVar[int]
    weights_source: ClassVar[str] = ""
    licence: ClassVar[str] = ""
    registry_name: ClassVar[str]
    #: Upper bound on padded native-rate seconds in one forward pass (batch x longest clip),
    #: so a batch of long clips is split rather than exhausting GPU memory.
    max_batch_seconds: ClassVar[float] = 60.0
    #: The same bound on a CPU, where it is much smaller: a convolutional codec there is
    #: limited by memory traffic, not by kernel launches, so a wide batch whose activations
    #: fall out of the cache runs slower per clip than one clip at a time (DAC 16 kHz, four
    #: 2 s clips: 1.3x the per-clip time of one).  Short clips are still grouped, which is
    #: where batching pays on a CPU (DAC, four 0.5 s clips: 1.7x faster than a loop).
    cpu_max_batch_seconds: ClassVar[float] = 4.0
    #: Inputs longer than this many seconds are re-synthesised in frame-aligned windows
    #: that overlap by ``chunk_overlap_seconds`` and are cross-faded back together, so
    #: memory stays bounded and a batch is never padded to a many-minute clip.
    max_chunk_seconds: ClassVar[float] = 30.0
    chunk_overlap_seconds: ClassVar[float] = 1.0
    #: False for codecs that do not run PyTorch (ffmpeg, TFLite), which autocast cannot reach.
    supports_amp: ClassVar[bool] = True

    def __init__(self, config: str | None = None, device: str = "cpu", weights: str | None = None):
        self.config = self.resolve_config(config or self.default_config)
        self.device = device
        self.weights = weights
        self._loaded = False
        #: Reduced precision for the forward passes: an autocast dtype ("bf16", "fp16"), "tf32"
        #: (CUDA float32 with TF32 tensor cores) or None for strict float32.  Set it
        #: through ``codecs.precision.choose_amp``, which first checks the output stays within
        #: tolerance of float32 on real clips.
        self.amp: str | None = None

    # ---- things a codec may override -------------------------------------------------
    @classmethod
    def resolve_config(cls, name: str) -> CodecConfig:
        if name not in cls.configs:
            raise ValueError(
                f"codec '{cls.registry_name}' has no config '{name}'. "
                f"Choose one of: {', '.join(cls.configs)} (e.g. --codec {cls.registry_name}@{cls.default_config})"
            )
        return cls.configs[name]

    @property
    def native_rate(self) -> int:
        """Native rate of the chosen config (``params["sample_rate"]`` overrides the class default)."""
        return int(self.config.params.get("sample_rate", self.sample_rate))

    @property
    def native_frame_size(self) -> int:
        return int(self.config.params.get("frame_size", self.frame_size))

    @property
    def delay(self) -> int:
        """Algorithmic delay in native-rate samples, dropped from the output start."""
        return 0

    def load(self) -> None:
        """Load weights / check binaries.  Must be idempotent and raise
        CodecUnavailableError with the exact fix when something is missing."""
        self._loaded = True

    def init_random(self, seed: int = 0) -> str:
        """Build this config's official architecture (the released checkpoint's sizes)
        with seeded random weights instead of loading weights, and mark the codec loaded;
        return a one-line description with the parameter count.  Lets the throughput
        benchmark and tests run the real arithmetic offline; output is not speech."""
        raise CodecUnavailableError(
            f"{self.spec} cannot be built with random weights (its weights are not a PyTorch "
            f"architecture this project defines). Fix: pass --weights {self.registry_name}=PATH")

    @abstractmethod
    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        """Encode and decode each float32 mono waveform (native rate, each at least
        ``frame_size`` samples).  Outputs may be longer or shorter than inputs;
        the caller compensates ``delay`` and trims/pads."""

    def _length_groups(self, padded: list[int], mixed: bool) -> list[list[int]]:
        """``group_by_length`` with this codec's budget for its device."""
        return group_by_length(padded, int(self.batch_seconds() * self.native_rate), mixed)

    def batch_seconds(self) -> float:
        """Padded native-rate seconds allowed in one forward pass on this codec's device."""
        if str(self.device).startswith("cpu"):
            return min(self.max_batch_seconds, self.cpu_max_batch_seconds)
        return self.max_batch_seconds

    # ---- the framework -----------------------------------------------------------------
    @property
    def spec(self) -> str:
        return f"{self.registry_name}@{self.config.name}"

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    def resynthesize(self, waves: list[np.ndarray], sr: int, out_sr: int | None = None) -> list[np.ndarray]:
        """Re-synthesise waveforms given at ``sr``; return them at ``out_sr`` (default ``sr``),
        each exactly as long as its input and peak-safe."""
        out_sr = out_sr or sr
        self.ensure_loaded()
        rate = self.native_rate
        native = [resample(w, sr, rate) for w in waves]
        window, overlap = self.chunk_geometry()
        if all(len(w) <= window for w in native):
            aligned = self._roundtrip_aligned(native)
        else:
            aligned = self._roundtrip_chunked(native, window, overlap, group=len(waves))
        result = []
        for y, w in zip(aligned, waves):
            y = resample(y, rate, out_sr)
            n_out = int(round(len(w) * out_sr / sr))
            result.append(peak_safe(fit_length(y, n_out)))
        return result

    def _precision(self) -> Any:
        on_cuda = str(self.device).startswith("cuda")
        if self.amp is None:
            # PyTorch runs cuDNN convolutions in TF32 by default (10-bit mantissa), so "float32"
            # on a GPU would silently differ from the CPU and from the reference the AMP check
            # compares against; TF32 is used only when chosen (amp="tf32") like any other dtype.
            return _tf32(False) if on_cuda and self.supports_amp else nullcontext()
        if not self.supports_amp:
            raise ValueError(f"{self.spec} does not run PyTorch, so it has no AMP mode. Fix: leave amp off")
        if self.amp == "tf32":
            return _tf32(True)
        import torch

        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[self.amp]
        return torch.autocast(device_type=str(self.device).split(":")[0], dtype=dtype)

    def chunk_geometry(self) -> tuple[int, int]:
        """(window, overlap) in native samples, both whole codec frames."""
        frame = self.native_frame_size
        window = max(2, int(self.max_chunk_seconds * self.native_rate) // frame) * frame
        overlap = max(1, round(self.chunk_overlap_seconds * self.native_rate / frame)) * frame
        return window, min(overlap, window - frame)

    def _roundtrip_aligned(self, native: list[np.ndarray]) -> list[np.ndarray]:
        """One ``_resynthesize`` call; each output delay-compensated and exactly as long as its input."""
        lengths = [len(w) for w in native]
        # Clips shorter than one codec frame are zero-padded to one frame, then trimmed back.
        padded = [fit_length(w, max(len(w), self.native_frame_size)) for w in native]
        with self._precision():
            decoded = self._resynthesize(padded)
        if len(decoded) != len(native):
            raise RuntimeError(f"{self.spec} returned {len(decoded)} outputs for {len(native)} inputs")
        return [fit_length(np.asarray(y, dtype=np.float32).reshape(-1)[self.delay:], n)
                for y, n in zip(decoded, lengths)]

    def _roundtrip_chunked(self, native: list[np.ndarray], window: int, overlap: int,
                           group: int) -> list[np.ndarray]:
        """Long inputs as overlapping windows, at most ``group`` windows per call."""
        pieces: list[np.ndarray] = []
        layout: list[list[int]] = []
        for w in native:
            starts = chunk_starts(len(w), window, overlap)
            layout.append(starts)
            pieces.extend(w[s:s + window] for s in starts)
        outs: list[np.ndarray] = []
        for i in range(0, len(pieces), max(group, 1)):
            outs.extend(self._roundtrip_aligned(pieces[i:i + max(group, 1)]))
        result, k = [], 0
        for w, starts in zip(native, layout):
            result.append(overlap_add(outs[k:k + len(starts)], starts, len(w), overlap))
            k += len(starts)
        return result

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.registry_name,
            "paper": cls.paper,
            "sample_rate": cls.sample_rate,
            "default_config": cls.default_config,
            "configs": {
                k: {
                    "bitrate_kbps": c.bitrate_kbps,
                    "sample_rate": int(c.params.get("sample_rate", cls.sample_rate)),
                    "frame_size": int(c.params.get("frame_size", cls.frame_size)),
                    # Algorithmic delay (native-rate samples) that resynthesize() drops; a property of
                    # the config, read from an unloaded instance (no weights needed).
                    "delay_samples": int(cls(config=k).delay),
                    "description": c.description,
                }
                for k, c in cls.configs.items()
            },
            "frame_size": cls.frame_size,
            "weights_source": cls.weights_source,
            "licence": cls.licence,
        }


@contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """cuDNN convolutions and CUDA matmuls with TF32 on or off, restored afterwards."""
    import torch

    conv, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


def group_by_length(padded: list[int], budget: int, mixed: bool) -> list[list[int]]:
    """Clip indices grouped into forward passes, sorted by padded length so little is padded.
    Clips share a pass only if their padded lengths are equal, unless ``mixed`` (the codec
    proved that padding a clip further cannot change its own output); a pass never holds
    more than ``budget`` padded samples (batch x longest), though one long clip still gets one."""
    groups: list[list[int]] = []
    for i in sorted(range(len(padded)), key=lambda k: padded[k]):
        g = groups[-1] if groups else None
        if (g is not None and (mixed or padded[g[0]] == padded[i])
                and (len(g) + 1) * padded[i] <= max(1, budget)):
            g.append(i)
        else:
            groups.append([i])
    return groups


_SPEC_RE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:@\s*([A-Za-z0-9_.\-]+))?\s*$")


def parse_codec_list(text: str) -> list[CodecSpec]:
    """Parse ``NAME[@CONFIG][,NAME[@CONFIG]...]``; validates names and configs."""
    specs = []
    for part in text.split(","):
        if not part.strip():
            continue
        m = _SPEC_RE.match(part)
        if not m:
            raise ValueError(f"cannot parse codec '{part}': use NAME or NAME@CONFIG, e.g. mp3@32kbps")
        cls = CODECS.get(m.group(1))
        cfg = m.group(2) or cls.default_config
        cls.resolve_config(cfg)
        specs.append(CodecSpec(m.group(1), cfg))
    if not specs:
        raise ValueError("no codec given: pass e.g. --codec dac or --codec soundstream-lyra@9.2kbps,mp3@32kbps")
    names = [str(s) for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"codec list repeats an entry: {text}")
    return specs


def create_codec(spec: CodecSpec | str, device: str = "cpu", weights: str | None = None) -> Codec:
    if isinstance(spec, str):
        (spec,) = parse_codec_list(spec)
    return CODECS.get(spec.name)(config=spec.config, device=device, weights=weights)
