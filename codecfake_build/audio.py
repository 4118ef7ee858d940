"""Audio I/O shared by the builder and the benchmark.

Every problem with an input file becomes an ``AudioError`` whose message is a
single line naming the file, what is wrong, and what to do about it.  Long jobs
catch ``AudioError``, record it and move on; nothing else is swallowed.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

#: Peak level that stored audio never exceeds, so 16-bit FLAC never clips.
PEAK_LIMIT = 0.99


class AudioError(ValueError):
    """A one-line, actionable problem with one audio file."""

    def __init__(self, path: str | Path, problem: str, fix: str):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}. Fix: {fix}")

    @property
    def reason(self) -> str:
        return self.problem


@dataclass(frozen=True)
class AudioCheck:
    """What ``load_audio`` accepts.  Silence is a skip reason for the builder
    (a codec copy of silence is not a meaningful fake) but scoring may allow it."""

    allow_silence: bool = False
    min_samples: int = 1


#: For scoring and reading back datasets: silence is a valid input to a detector.
ALLOW_SILENCE = AudioCheck(allow_silence=True)


def load_audio(
    path: str | Path,
    target_sr: int | None = None,
    check: AudioCheck = AudioCheck(),
) -> tuple[np.ndarray, int]:
    """Read any soundfile-supported file (wav, flac, ogg, mp3 ...) as mono float32.

    Stereo and multichannel input is down-mixed by averaging.  If ``target_sr``
    is given the audio is resampled to it with soxr (VHQ).
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found", "check the path or the corpus root you passed")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)", "re-download or remove this file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types; all mean "unreadable".
        if path.suffix.lower() not in FFMPEG_DECODED:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AudioError(path, f"cannot decode audio ({msg})", "re-download or re-encode it as WAV/FLAC") from None
        data, sr = _decode_with_ffmpeg(path)
    return validate_audio(data, sr, path, target_sr=target_sr, check=check)


#: Containers libsndfile cannot read but speech corpora ship in (VoxCeleb2 is AAC in .m4a): these
#: are decoded by the real ffmpeg binary (the same one the mp3/aac/opus codecs use).
FFMPEG_DECODED = (".m4a", ".aac", ".mp4", ".wma", ".webm")


def _decode_with_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    """Decode ``path`` with ffmpeg to float WAV in a temp dir (every channel, native rate)."""
    import subprocess
    import tempfile

    from codecfake_build.codecs.ffmpeg import ffmpeg_binary

    binary = ffmpeg_binary()
    if binary is None:
        raise AudioError(path, f"cannot decode audio (libsndfile does not read {path.suffix} files and ffmpeg "
                               "is not installed)", "install ffmpeg (apt-get install ffmpeg) or convert the file "
                                                    "to WAV/FLAC")
    with tempfile.TemporaryDirectory(prefix="codecfake-decode-") as tmp:
        wav = Path(tmp) / "decoded.wav"
        try:
            run = subprocess.run([binary, "-nostdin", "-v", "error", "-i", str(path), "-vn", "-c:a", "pcm_f32le",
                                  str(wav)], capture_output=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise AudioError(path, "cannot decode audio (ffmpeg took over 600 s)",
                             "convert the file to WAV/FLAC") from None
        if run.returncode != 0 or not wav.exists():
            lines = run.stderr.decode("utf-8", "replace").strip().splitlines()
            raise AudioError(path, f"cannot decode audio (ffmpeg: {lines[-1] if lines else run.returncode})",
                             "re-download or re-encode it as WAV/FLAC")
        data, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    return data, sr


def decode_audio_bytes(data: bytes, name: str = "<bytes>", target_sr: int | None = None,
                       check: AudioCheck = ALLOW_SILENCE) -> tuple[np.ndarray, int]:
    """Decode encoded audio bytes (e.g. the FLAC stored in a dataset row)."""
    try:
        arr, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:
        # libsndfile's message embeds the buffer's repr (an address): keep the message stable per file.
        msg = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "the bytes", str(exc).splitlines()[0] if str(exc)
                     else type(exc).__name__)
        raise AudioError(name, f"cannot decode embedded audio ({msg})", "rebuild the dataset") from None
    return validate_audio(arr, sr, name, target_sr=target_sr, check=check)


def validate_audio(
    data: np.ndarray,
    sr: int,
    name: str | Path,
    target_sr: int | None = None,
    check: AudioCheck = AudioCheck(),
) -> tuple[np.ndarray, int]:
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if data.size < check.min_samples:
        raise AudioError(name, "audio has no samples", "re-download or remove this file")
    if not np.all(np.isfinite(data)):
        raise AudioError(name, "audio contains NaN or Inf samples", "re-export the file from its source")
    if not check.allow_silence and not np.any(data):
        raise AudioError(name, "audio is digital silence (all samples are zero)", "remove this file from the corpus")
    if target_sr is not None and sr != target_sr:
        data = resample(data, sr, target_sr)
        sr = target_sr
    return np.ascontiguousarray(data, dtype=np.float32), int(sr)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    return soxr.resample(np.asarray(x, dtype=np.float32), sr_in, sr_out, quality="VHQ").astype(np.float32)


def peak_safe(x: np.ndarray, limit: float = PEAK_LIMIT) -> np.ndarray:
    """Scale down (never up) so that |x| <= limit."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > limit:
        x = x * (limit / peak)
    return x.astype(np.float32)


def encode_flac(x: np.ndarray, sr: int) -> bytes:
    """16-bit FLAC bytes; deterministic for identical input."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad to exactly n samples."""
    if len(x) >= n:
        return x[:n]
    return np.pad(x, (0, n - len(x)))


def tile_to_length(x: np.ndarray, n: int) -> np.ndarray:
    """The ASVspoof/AASIST convention: take the first n samples, repeating short input."""
    if len(x) >= n:
        return x[:n]
    reps = int(np.ceil(n / max(len(x), 1)))
    return np.tile(x, reps)[:n]


def chunk_starts(n: int, window: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``window`` samples covering n samples, each
    overlapping the next by ``overlap``; the last window may be shorter (but is
    always longer than ``overlap``).  One window when n <= window."""
    if not 0 <= overlap < window:
        raise ValueError(f"overlap {overlap} must be in [0, window={window})")
    starts = [0]
    while starts[-1] + window < n:
        starts.append(starts[-1] + window - overlap)
    return starts


def overlap_add(chunks: list[np.ndarray], starts: list[int], n: int, overlap: int) -> np.ndarray:
    """Join processed windows (as laid out by ``chunk_starts``) into n samples,
    cross-fading each overlap linearly: the two weights sum to one, so a signal
    that every window reproduces exactly comes back exactly."""
    out = np.zeros(n, dtype=np.float64)
    ramp = (np.arange(overlap, dtype=np.float64) + 0.5) / max(overlap, 1)
    for i, (chunk, start) in enumerate(zip(chunks, starts)):
        y = np.asarray(chunk, dtype=np.float64)[: n - start].copy()
        if i > 0 and overlap:
            y[:overlap] *= ramp[: len(y)]
        if i < len(chunks) - 1 and overlap:
            y[-overlap:] *= ramp[::-1]
        out[start:start + len(y)] += y
    return out.astype(np.float32)
