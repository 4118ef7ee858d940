"""Traditional codecs (MP3, AAC, Opus) through the real ``ffmpeg`` binary.

One implementation serves all three: a table of ``FfmpegFormat`` entries says
which encoder, container, bitrate range and working sample rate each codec
uses, and ``FfmpegCodec`` turns an entry into a registry member.

Alignment.  Every codec delays its output and pads its last frame.  Measured
by cross-correlation on real 16 kHz speech (ffmpeg 5.1, LAME 3.100, libopus):

* MP3 without gapless info: +1105 samples = LAME's 576-sample encoder delay
  plus the 529-sample decoder filterbank delay.
* AAC as raw ADTS: +1024 samples, the encoder's priming frame.
* Opus: the header's pre-skip is 312 samples at 48 kHz (104 at 16 kHz).

Instead of subtracting these numbers (which change with encoder versions) we
pick containers that record the delay and the true length, and let ffmpeg's
demuxer/decoder apply them:

* MP3 in a plain ``.mp3`` with the Xing/LAME tag (``-write_xing 1``): the tag
  stores encoder delay and padding; ffmpeg's mp3 demuxer drops both.
  Measured: lag 0, length exact.
* AAC in MP4 (``.m4a``): the muxer writes an edit list starting after the 1024
  priming samples, which the demuxer honours (lag 0).  ffmpeg 5.1 still
  returns the padded last frame (length rounded up to 1024), so the tail is
  trimmed here.  ADTS was rejected: it carries no priming info.
* Opus in Ogg: the pre-skip and the last page's granule position give exact
  start and end; lag 0 and exact length.

Hence ``delay`` is 0 for all three.  The tests re-measure the lag, so an ffmpeg
build that ignores the gapless info fails loudly instead of silently shifting
every fake.  One residue: at 6-8 kbps libopus switches to narrowband SILK, whose
internal resampling leaves a fractional +1.5 to +2 sample (~0.1 ms) lag; it is
not compensated because it is non-integer and depends on libopus' own bandwidth
decision, which moves between versions.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from codecfake_build.audio import fit_length, resample
from codecfake_build.codecs.base import CODECS, Codec, CodecConfig, CodecUnavailableError

#: Environment variable naming the ffmpeg binary to use instead of ``ffmpeg`` on PATH.
FFMPEG_ENV = "CODECFAKE_FFMPEG"

#: ffmpeg runs single-threaded (deterministic, and the batch is parallel across
#: clips instead); this many clips are encoded at once.
MAX_PARALLEL = 4

#: A clip that takes longer than this is treated as a hung ffmpeg.
TIMEOUT_S = 300

_QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error")
_KBPS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*kbps\s*$", re.IGNORECASE)


class FfmpegError(RuntimeError):
    """ffmpeg failed on one clip; the message names the codec and ffmpeg's first stderr line."""


@dataclass(frozen=True)
class RateStep:
    """Run the encoder at ``rate`` for bitrates up to ``max_kbps``."""

    rate: int
    max_kbps: float
    frame_size: int


@dataclass(frozen=True)
class FfmpegFormat:
    name: str
    encoder: str
    muxer: str
    suffix: str
    min_kbps: float
    #: Ascending; the first step that can carry the bitrate is used.  16 kHz comes
    #: first because the corpora are 16 kHz speech: no resampling at all for the
    #: usual bitrates, higher rates only where the bitstream format demands it.
    rates: tuple[RateStep, ...]
    encoder_args: tuple[str, ...] = ()
    #: "{rate}" is replaced by the working sample rate.
    muxer_args: tuple[str, ...] = ()
    #: Bitrates the bitstream can signal; others are snapped to the nearest.
    legal_kbps: tuple[float, ...] = ()

    @property
    def max_kbps(self) -> float:
        return self.rates[-1].max_kbps

    def applied_kbps(self, kbps: float) -> float:
        """The bitrate handed to the encoder (MP3 can only signal a fixed set)."""
        if not self.legal_kbps:
            return float(kbps)
        # Ties go to the lower rate, as LAME itself does (20 -> 16 kbps).
        return float(min(self.legal_kbps, key=lambda b: (abs(b - kbps), b)))

    def step(self, kbps: float) -> RateStep:
        applied = self.applied_kbps(kbps)
        for s in self.rates:
            if applied <= s.max_kbps:
                return s
        raise ValueError(f"{self.name}: {kbps:g} kbps is above the maximum {self.max_kbps:g} kbps")

    def working_rate(self, kbps: float) -> int:
        return self.step(kbps).rate

    def check_kbps(self, kbps: float) -> None:
        if not (self.min_kbps <= kbps <= self.max_kbps):
            raise ValueError(
                f"codec '{self.name}' supports {self.min_kbps:g} to {self.max_kbps:g} kbps (mono), "
                f"not {kbps:g} kbps: pass e.g. --codec {self.name}@32kbps"
            )


_MP3_MPEG2_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MP3_MPEG1_ONLY_KBPS = (192, 224, 256, 320)

FORMATS: dict[str, FfmpegFormat] = {
    "mp3": FfmpegFormat(
        name="mp3",
        encoder="libmp3lame",
        muxer="mp3",
        suffix=".mp3",
        min_kbps=8,
        # 16 kHz is MPEG-2 Layer III (576-sample granule frames, at most 160 kbps);
        # above that only MPEG-1 rates (>= 32 kHz, 1152-sample frames) can signal it.
        rates=(RateStep(16000, 160, 576), RateStep(32000, 320, 1152)),
        legal_kbps=_MP3_MPEG2_KBPS + _MP3_MPEG1_ONLY_KBPS,
        # ffmpeg's libmp3lame is CBR when given -b:a.  The Xing/LAME tag carries the
        # encoder delay and padding that make decoding gapless (see module doc); the
        # ID3 tags are dropped because they carry nothing and inflate the file.
        muxer_args=("-write_xing", "1", "-id3v2_version", "0", "-write_id3v1", "0"),
    ),
    "aac": FfmpegFormat(
        name="aac",
        encoder="aac",
        muxer="mp4",
        suffix=".m4a",
        min_kbps=8,
        # An AAC frame holds at most 6144 bits per channel per 1024 samples, i.e.
        # 6 bit/sample: 96 kbps at 16 kHz (ffmpeg silently clamps beyond that).
        rates=(
            RateStep(16000, 96, 1024),
            RateStep(24000, 144, 1024),
            RateStep(32000, 192, 1024),
            RateStep(48000, 288, 1024),
        ),
        # Pinned rather than left to the version's default so the output does
        # not change silently when ffmpeg changes its default coder.  The native
        # encoder is ABR: on 16 kHz speech it overspends by 10-20% at 16-64 kbps,
        # cannot go below ~12 kbps (8 kbps spends ~12.5) and underspends once
        # nothing is left to code (96 kbps -> ~79 measured), which is why callers
        # should read Encoded.bitrate_kbps rather than trust the label.
        encoder_args=("-aac_coder", "twoloop"),
        # The edit list is what skips the priming samples.  Its length is stored in
        # the movie timescale, 1000 Hz by default: rounded to whole milliseconds, the
        # end could fall before the last frame's start and the demuxer then dropped
        # that frame (3074 samples at 24 kHz came back as 3072, 1 sample at 48 kHz as
        # none).  A timescale equal to the sample rate makes the edit exact.
        muxer_args=("-use_editlist", "1", "-movie_timescale", "{rate}"),
    ),
    "opus": FfmpegFormat(
        name="opus",
        encoder="libopus",
        muxer="ogg",
        suffix=".ogg",
        # 6 kbps is Opus' lowest useful rate; ffmpeg's libopus wrapper caps mono at 256.
        min_kbps=6,
        # libopus accepts 16 kHz input directly (it codes up to wideband; 20 ms frames
        # are 320 samples there); decoding runs at 48 kHz and ffmpeg resamples back.
        rates=(RateStep(16000, 256, 320),),
        # Unconstrained VBR overshot the target by a third on 3.5 s of speech at
        # 64 kbps (85.8 kbps measured); constrained VBR stays within ~2% of the
        # label while still adapting per frame as deployed Opus does.
        encoder_args=("-vbr", "constrained", "-application", "audio", "-frame_duration", "20"),
    ),
}


# ---- locating ffmpeg -------------------------------------------------------------------


def ffmpeg_binary() -> str | None:
    """The ffmpeg to use: ``$CODECFAKE_FFMPEG`` if set (even if it is wrong), else PATH."""
    override = os.environ.get(FFMPEG_ENV)
    return shutil.which(override) if override else shutil.which("ffmpeg")


@lru_cache(maxsize=8)
def _encoders(binary: str, mtime: float) -> frozenset[str]:
    del mtime  # part of the cache key only: a replaced binary is probed again
    try:
        out = subprocess.run(
            [binary, *_QUIET, "-encoders"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names = set()
    for line in out.splitlines():
        parts = line.split()
        # Rows look like " A....D libmp3lame   libmp3lame MP3 ..."; the legend above them
        # has "=" in the second column.
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[1] != "=":
            names.add(parts[1])
    return frozenset(names)


def require_ffmpeg(encoder: str) -> str:
    """Path of an ffmpeg that has ``encoder``, or CodecUnavailableError saying how to get one."""
    override = os.environ.get(FFMPEG_ENV)
    binary = ffmpeg_binary()
    where = f" ({FFMPEG_ENV}={override} is not an executable)" if override else " (not on PATH)"
    if binary is None:
        raise CodecUnavailableError(
            f"ffmpeg with {encoder} not found{where}. Fix: apt-get install ffmpeg"
            + (f", or point {FFMPEG_ENV} at an ffmpeg binary" if override else "")
        )
    if encoder not in _encoders(binary, os.path.getmtime(binary)):
        raise CodecUnavailableError(
            f"ffmpeg with {encoder} not found ({binary} lacks the {encoder} encoder). "
            f"Fix: apt-get install ffmpeg (a build with {encoder}), or point {FFMPEG_ENV} at one"
        )
    return binary


# ---- encode / decode -------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    """What one ffmpeg encode produced; ``bitrate_kbps`` is what was really spent."""

    codec: str
    requested_kbps: float
    #: The bitrate passed to the encoder (differs from requested only for MP3 snapping).
    applied_kbps: float
    sample_rate: int
    n_samples: int
    data: bytes = field(repr=False)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def bitrate_kbps(self) -> float:
        """Encoded file size over duration, container overhead included."""
        return len(self.data) * 8 / self.duration_s / 1000


def _run(binary: str, args: list[str], codec: str, step: str) -> bytes:
    try:
        proc = subprocess.run([binary, *args], capture_output=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise FfmpegError(f"ffmpeg {codec} {step} timed out after {TIMEOUT_S} s") from None
    except OSError as exc:
        raise FfmpegError(f"ffmpeg {codec} {step} could not start: {exc}") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        first = lines[0].strip() if lines else "(no message)"
        raise FfmpegError(f"ffmpeg {codec} {step} failed (exit {proc.returncode}): {first}")
    return proc.stdout


def _roundtrip_native(x: np.ndarray, codec: str, kbps: float, binary: str) -> tuple[np.ndarray, Encoded]:
    """Encode and decode ``x`` already at the codec's working rate for ``kbps``.

    Output is aligned to the input (lag 0, see the module doc) and exactly as long.
    """
    fmt = FORMATS[codec]
    step = fmt.step(kbps)
    applied = fmt.applied_kbps(kbps)
    x = np.ascontiguousarray(x, dtype="<f4").reshape(-1)
    if x.size == 0:
        raise ValueError(f"{codec}: cannot encode an empty waveform")
    rate = str(step.rate)
    with tempfile.TemporaryDirectory(prefix="codecfake_ffmpeg_") as tmp:
        raw = Path(tmp) / "in.f32"
        enc = Path(tmp) / f"enc{fmt.suffix}"
        raw.write_bytes(x.tobytes())
        _run(
            binary,
            [
                *_QUIET,
                "-f", "f32le", "-ar", rate, "-ac", "1", "-i", str(raw),
                "-map", "0:a:0", "-map_metadata", "-1", "-threads", "1",
                "-c:a", fmt.encoder, "-b:a", str(int(round(applied * 1000))), *fmt.encoder_args,
                # -bitexact on codec and muxer: no version strings, and a fixed Ogg
                # stream serial (otherwise random), so identical input gives identical bytes.
                "-flags:a", "+bitexact", "-fflags", "+bitexact",
                "-f", fmt.muxer, *(a.format(rate=rate) for a in fmt.muxer_args), "-y", str(enc),
            ],
            codec,
            "encode",
        )
        data = enc.read_bytes()
        pcm = _run(
            binary,
            [
                *_QUIET, "-threads", "1", "-flags:a", "+bitexact", "-i", str(enc),
                "-map", "0:a:0", "-f", "f32le", "-ac", "1", "-ar", rate, "pipe:1",
            ],
            codec,
            "decode",
        )
    y = np.frombuffer(pcm, dtype="<f4").astype(np.float32)
    # The containers trim the priming samples; only AAC's padded tail remains
    # (trimmed here).  A decode shorter than the input means the gapless info
    # was mis-applied, which would shift the audio: refuse rather than pad.
    if len(y) < len(x):
        raise FfmpegError(
            f"ffmpeg {codec} decode returned {len(y)} samples for {len(x)} input samples "
            f"(this ffmpeg mishandles the container's gapless info)"
        )
    encoded = Encoded(codec, float(kbps), applied, step.rate, len(x), data)
    return fit_length(y, len(x)), encoded


def ffmpeg_encode_decode(x: np.ndarray, sr: int, codec: str, kbps: float) -> tuple[np.ndarray, Encoded]:
    """Like ``ffmpeg_roundtrip`` but also returns the ``Encoded`` record, whose
    ``bitrate_kbps`` is the bitrate actually spent and ``sample_rate`` the rate
    the encoder ran at."""
    if codec not in FORMATS:
        raise ValueError(f"unknown ffmpeg codec '{codec}': choose one of {', '.join(FORMATS)}")
    fmt = FORMATS[codec]
    fmt.check_kbps(kbps)
    binary = require_ffmpeg(fmt.encoder)
    rate = fmt.working_rate(kbps)
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    native = resample(x, sr, rate)
    # A clip shorter than one frame is zero-padded to a frame, as Codec.resynthesize does.
    n = len(native)
    y, encoded = _roundtrip_native(fit_length(native, max(n, fmt.step(kbps).frame_size)), codec, kbps, binary)
    y = resample(y[:n], rate, sr)
    return fit_length(y, len(x)), encoded


def ffmpeg_roundtrip(x: np.ndarray, sr: int, codec: str, kbps: float) -> np.ndarray:
    """Encode ``x`` (mono float, ``sr`` Hz) with ``codec`` in {'mp3', 'aac', 'opus'} at
    ``kbps`` and decode it again: float32 at ``sr``, same length, aligned at lag 0.

    The encoder runs at the same working rate as the registered codec of that
    bitrate (16 kHz unless the bitrate needs more), so this equals
    ``create_codec(f"{codec}@{kbps}kbps").resynthesize([x], sr)`` up to the peak limit.
    """
    return ffmpeg_encode_decode(x, sr, codec, kbps)[0]


# ---- registry members ------------------------------------------------------------------


class FfmpegCodec(Codec):
    """Shared implementation; subclasses set ``fmt`` and the descriptive attributes."""

    fmt: ClassVar[FfmpegFormat]
    weights_source = "none: ffmpeg"
    supports_amp = False
    #: Listed configs; any other ``<N>kbps`` in range is accepted too.
    listed_kbps: ClassVar[tuple[float, ...]] = (16, 32, 64, 128)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "fmt" in cls.__dict__:
            cls.sample_rate = cls.fmt.rates[0].rate
            cls.frame_size = cls.fmt.rates[0].frame_size
            cls.configs = {c.name: c for c in (cls._make_config(k) for k in cls.listed_kbps)}

    @classmethod
    def _make_config(cls, kbps: float) -> CodecConfig:
        fmt = cls.fmt
        step = fmt.step(kbps)
        applied = fmt.applied_kbps(kbps)
        notes = [f"{fmt.encoder} in {fmt.suffix.lstrip('.')}"]
        if applied != kbps:
            notes.append(f"applied as {applied:g} kbps, the nearest bitrate MP3 can signal")
        if step.rate != cls.sample_rate:
            notes.append(f"runs at {step.rate} Hz because {cls.sample_rate} Hz cannot carry it")
        return CodecConfig(
            name=f"{kbps:g}kbps",
            bitrate_kbps=applied,
            params={"sample_rate": step.rate, "frame_size": step.frame_size, "kbps": float(kbps)},
            description="; ".join(notes),
        )

    @classmethod
    def resolve_config(cls, name: str) -> CodecConfig:
        if name in cls.configs:
            return cls.configs[name]
        m = _KBPS_RE.match(str(name))
        if not m or float(m.group(1)) <= 0:
            raise ValueError(
                f"codec '{cls.registry_name}' has no config '{name}': use <N>kbps with N from "
                f"{cls.fmt.min_kbps:g} to {cls.fmt.max_kbps:g}, "
                f"e.g. --codec {cls.registry_name}@{cls.default_config} (listed: {', '.join(cls.configs)})"
            )
        kbps = float(m.group(1))
        cls.fmt.check_kbps(kbps)
        return cls._make_config(kbps)

    @property
    def kbps(self) -> float:
        return float(self.config.params["kbps"])

    def load(self) -> None:
        self._binary = require_ffmpeg(self.fmt.encoder)
        self._loaded = True

    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        self.ensure_loaded()

        def one(x: np.ndarray) -> np.ndarray:
            return _roundtrip_native(x, self.fmt.name, self.kbps, self._binary)[0]

        if len(batch) <= 1:
            return [one(x) for x in batch]
        # Each ffmpeg is single-threaded and waits on its own process, so threads
        # parallelise fine; map() keeps the input order and re-raises the first error.
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(batch), os.cpu_count() or 1)) as pool:
            return list(pool.map(one, batch))


@CODECS.register("mp3")
class Mp3Codec(FfmpegCodec):
    fmt = FORMATS["mp3"]
    paper = "ISO/IEC 11172-3 and 13818-3 (MPEG-1/2 Audio Layer III), LAME encoder"
    licence = "LAME: LGPL-2.0-or-later; FFmpeg: LGPL-2.1-or-later (GPL in GPL builds)"
    default_config = "32kbps"


@CODECS.register("aac")
class AacCodec(FfmpegCodec):
    fmt = FORMATS["aac"]
    paper = "ISO/IEC 14496-3 (MPEG-4 AAC-LC), FFmpeg native encoder"
    licence = "FFmpeg: LGPL-2.1-or-later (GPL in GPL builds)"
    default_config = "32kbps"


@CODECS.register("opus")
class OpusCodec(FfmpegCodec):
    fmt = FORMATS["opus"]
    paper = "RFC 6716 (Opus), libopus encoder"
    licence = "libopus: BSD-3-Clause; FFmpeg: LGPL-2.1-or-later (GPL in GPL builds)"
    default_config = "16kbps"
