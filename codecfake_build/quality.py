"""How far each fake is from its source: per-row quality columns of a built dataset.

Both measures compare a codec copy with the bona fide row of the same
utterance, i.e. the two 16 kHz waveforms exactly as they are stored (same
length: the codec framework trims and pads every output to its source).
They say how *hard* a fake is: a copy close to its source is harder to detect.

``logmel_distance`` (lower = closer; 0 for identical signals)
    STFT with n_fft 1024, hop 256, a periodic Hann window of 1024 samples, zero
    padding of 512 samples at both ends (so every sample is centred in a frame
    and clips shorter than one window still work); magnitude |X| (power 1);
    80 Slaney-normalised mel bands from 0 to 8000 Hz (librosa's default
    filterbank at 16 kHz); ``log10(max(mel, 1e-5))``; the mean absolute
    difference over all bands and frames.  The floor 1e-5 (-100 dB) keeps
    digital silence from dominating.  This is the single-resolution form of the
    mel distance used to train and compare neural codecs (DAC, Codec-SUPERB).

``si_snr_db`` (higher = closer; scale-invariant)
    Scale-invariant signal-to-noise ratio in dB: both signals are made zero
    mean, the estimate is projected on the reference, ``s = <y, x> x / |x|^2``,
    ``e = y - s``, and ``10 log10(|s|^2 / |e|^2)``.  Rescaling the fake does not
    change it; an identical copy gives a very large value (> 100 dB), white
    noise added at SNR d dB gives about d.  NaN when either signal has no
    energy (undefined), +inf when the copy is an exact multiple of the source.

Both are NaN (null in the parquet) on bona fide rows.  Computed in float64.

Optional measures (``--quality pesq,stoi``; off by default, each needs its
PyPI package, see ``QUALITY_INSTALL``).  Both are perceptual models defined on
speech at a fixed rate; our stored waveforms are already 16 kHz, any other rate
is first resampled to 16 kHz with ``audio.resample`` (soxr).  The fake is
aligned to its source as for the columns above (same length, codec delay
already removed); PESQ also runs its own time alignment.

``pesq_wb`` (higher = closer; about 1.04 to 4.64)
    ITU-T P.862.2 wide-band PESQ, MOS-LQO, through the ``pesq`` package (the
    ITU reference C code) at 16 kHz, mode ``wb``.  An identical copy scores
    4.644.  The package scales both signals by their common peak, and P.862
    levels them itself, so a gain change of the fake hardly matters.
    Failures (null + reason): a clip shorter than 0.25 s (P.862's minimum), a
    silent source or fake, or "No utterances detected" (no speech activity).
    The ITU C code has fixed-size tables and kills its process on some long
    inputs (segfault, "stack smashing": ludlows/PESQ issues #15 and #18; here a
    120 s clip of 360 syllables); so it runs in one long-lived worker process
    (``IsolatedPesq``, a plain subprocess), where a crash costs that clip's
    value (null + reason) and a restarted worker, never the build.

``stoi`` (higher = closer; 0 to 1)
    Short-time objective intelligibility (Taal et al. 2011, not the extended
    ESTOI) through ``pystoi``, called at 16 kHz: pystoi resamples to its
    10 kHz internally with its own MATLAB-compatible resampler, so the values
    equal pystoi's on 16 kHz files.  Identical signals give 1.  Failure (null +
    reason): fewer than 30 frames (about 0.4 s) of speech left after STOI's
    40 dB silence removal -- pystoi would return 1e-5 with a warning, which is
    not a score -- or a silent source.

Only wide-band PESQ is offered: narrow-band (P.862 at 8 kHz) would discard the
4-8 kHz band where codecs differ most.  A silent fake gets STOI 0 (defined:
nothing intelligible) but no PESQ.  Cost on one CPU core: about 10 ms per
second of audio for each measure; STOI of a 600 s clip needs about 1 GB.

The builder computes every value of a codec row with ``row_quality``, in a pool
of worker processes (``quality_pool``, ``--quality-workers``) or, with 0
workers, in the build process; numpy's BLAS runs single-threaded inside each
measure (``single_threaded_blas``) so the floats are the same either way.

Licences: ``pystoi`` is MIT; the ``pesq`` wrapper is MIT, but the P.862 C code
it bundles states that all rights in the PESQ algorithm remain with its owners
(ITU-T / the PESQ rights holders).  Both stay optional (the ``quality`` extra).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from codecfake_build.schema import OPTIONAL_QUALITY

SAMPLE_RATE = 16000
N_FFT = 1024
HOP = 256
N_MELS = 80
F_MAX = 8000.0
LOG_FLOOR = 1e-5
_BLOCK_FRAMES = 2048  # frames per STFT block: bounds memory on clips of many minutes

#: A source is flagged ``clipped`` when its peak exceeds full scale, or when at
#: least CLIP_RUN consecutive samples sit at |x| >= CLIP_LEVEL: a natural peak
#: touches full scale for one sample; a flat top of several is hard clipping.
CLIP_LEVEL = 0.999
CLIP_RUN = 3


@lru_cache(maxsize=4)
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmax: float = F_MAX) -> np.ndarray:
    import librosa.filters  # imported here: librosa is slow to import and only this needs it

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=fmax,
                               htk=False, norm="slaney").astype(np.float64)


def log_mel(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """(frames, 80) log10 mel magnitudes with the settings in the module doc."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    padded = np.pad(x, (N_FFT // 2, N_FFT // 2))
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    window = np.hanning(N_FFT + 1)[:-1]  # periodic Hann
    fb = mel_filterbank(sr)
    out = np.empty((n_frames, fb.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    for start in range(0, n_frames, _BLOCK_FRAMES):
        block = frames[start:start + _BLOCK_FRAMES] * window
        mag = np.abs(np.fft.rfft(block, axis=1))
        out[start:start + len(block)] = np.log10(np.maximum(mag @ fb.T, LOG_FLOOR))
    return out


def logmel_distance(reference: np.ndarray, estimate: np.ndarray, sr: int = SAMPLE_RATE,
                    reference_logmel: np.ndarray | None = None) -> float:
    """Mean |log10 mel(reference) - log10 mel(estimate)|; the signals must have equal length.
    ``reference_logmel``: ``log_mel(reference, sr)`` computed once for all copies of a source
    (the builder's quality pool), the same array so the same float."""
    if len(reference) != len(estimate):
        raise ValueError(f"logmel_distance needs equal lengths, got {len(reference)} and {len(estimate)}")
    if len(reference) == 0:
        return float("nan")
    ref = log_mel(reference, sr) if reference_logmel is None else reference_logmel
    return float(np.mean(np.abs(ref - log_mel(estimate, sr))))


def si_snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SNR of ``estimate`` against ``reference`` in dB (see module doc)."""
    if len(reference) != len(estimate):
        raise ValueError(f"si_snr_db needs equal lengths, got {len(reference)} and {len(estimate)}")
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(estimate, dtype=np.float64)
    x = x - x.mean() if x.size else x
    y = y - y.mean() if y.size else y
    ref_energy = float(np.dot(x, x))
    if ref_energy == 0.0 or float(np.dot(y, y)) == 0.0:
        return float("nan")
    target = (np.dot(y, x) / ref_energy) * x
    noise = y - target
    noise_energy = float(np.dot(noise, noise))
    target_energy = float(np.dot(target, target))
    if noise_energy == 0.0:
        return float("inf")
    if target_energy == 0.0:  # the copy is orthogonal to its source
        return float("-inf")
    return float(10.0 * np.log10(target_energy / noise_energy))


@lru_cache(maxsize=1)
def _numpy_blas() -> Any:
    """threadpoolctl's handle on the BLAS that numpy itself calls (not torch's)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """numpy's BLAS on one thread for the duration.  OpenBLAS sums a long dot product or
    a matrix product in another order on one thread than on several (values 1 ulp apart,
    measured here), so a measure's float would otherwise depend on the thread count of the
    process that computed it -- and a build's bytes on --quality-workers, whose worker
    processes run single-threaded to share the cores.  Costs about 20 us per call."""
    with _numpy_blas().limit(limits=1):
        yield


def fake_quality(reference: np.ndarray, estimate: np.ndarray, sr: int = SAMPLE_RATE,
                 reference_logmel: np.ndarray | None = None) -> dict[str, float]:
    """The quality columns of one codec row (``reference_logmel``: see ``logmel_distance``)."""
    with single_threaded_blas():
        return {"logmel_distance": logmel_distance(reference, estimate, sr, reference_logmel),
                "si_snr_db": si_snr_db(reference, estimate)}


def is_clipped(x: np.ndarray, level: float = CLIP_LEVEL, run: int = CLIP_RUN) -> bool:
    """True for audio over full scale or with a flat top of ``run`` samples at ``level``."""
    a = np.abs(np.asarray(x, dtype=np.float32))
    if a.size == 0:
        return False
    if float(a.max()) > 1.0:
        return True
    hot = a >= level
    if int(hot.sum()) < run:
        return False
    # Longest run of consecutive True values, without a Python loop.
    edges = np.diff(np.concatenate(([0], hot.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return bool(np.max(ends - starts) >= run)


# ---------------------------------------------------------------- optional measures

#: The exact pins these measures are tested with.
QUALITY_INSTALL = "pip install pesq==0.0.4 pystoi==0.4.1"
PESQ_RATE = 16000
PESQ_MIN_SECONDS = 0.25
_PACKAGE = {"pesq": "pesq", "stoi": "pystoi"}


class QualityUnavailableError(RuntimeError):
    """A --quality measure whose package is not installed."""


class MeasureFailed(ValueError):
    """A measure has no value on this clip; the message is the one-line reason."""


def parse_quality_list(text: str | Iterable[str] | None) -> list[str]:
    """``"stoi,pesq"`` (or a list) -> the measures in canonical order, each once."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    chosen = {t.strip().lower() for t in items if t.strip()}
    unknown = sorted(chosen - set(OPTIONAL_QUALITY))
    if unknown:
        raise ValueError(f"--quality {','.join(unknown)}: unknown measure; choose from "
                         f"{', '.join(OPTIONAL_QUALITY)} (comma-separated)")
    return [m for m in OPTIONAL_QUALITY if m in chosen]


def require_measures(measures: Iterable[str]) -> None:
    """Import each measure's package now, so a missing one stops the build before any work."""
    measures = list(measures)
    missing = []
    for m in measures:
        try:
            __import__(_PACKAGE[m])
        except ImportError:
            missing.append(m)
    if missing:
        raise QualityUnavailableError(
            f"--quality {','.join(missing)} needs the package(s) {', '.join(_PACKAGE[m] for m in missing)}. "
            f"Fix: {QUALITY_INSTALL} (or pip install 'codecfake-bench[quality]'), or drop --quality")
    if "pesq" in measures:
        _isolated_pesq().ensure_started()  # its worker process too, before any audio is decoded


def _at_rate(x: np.ndarray, sr: int, rate: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if sr == rate:
        return x
    from codecfake_build.audio import resample

    return np.asarray(resample(x.astype(np.float32), sr, rate), dtype=np.float64)


def _check_pair(reference: np.ndarray, estimate: np.ndarray, measure: str) -> None:
    if len(reference) != len(estimate):
        raise ValueError(f"{measure} needs equal lengths, got {len(reference)} and {len(estimate)}")
    if not np.any(reference):
        raise MeasureFailed("the source is silent")


class IsolatedPesq:
    """Wide-band PESQ computed in one long-lived worker process (``_pesq_worker``),
    started on first use and restarted after a crash.  Piping two 16 kHz arrays costs
    far less than the measure itself; the start (numpy + pesq imports) well under a second."""

    def __init__(self, command: list[str] | None = None):
        self.command = command or [sys.executable, "-m", "codecfake_build._pesq_worker"]
        self._proc: subprocess.Popen | None = None
        self._stderr: Any = None

    def _start(self) -> subprocess.Popen:
        from codecfake_build._pesq_worker import READY

        env = dict(os.environ)
        # The worker imports this package by name, installed or not.
        package_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: it can never fill up and block the worker
        proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                env=env)
        if proc.stdout.readline() != READY:
            proc.wait()
            self._stderr.seek(0)
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
            self.close()
            raise QualityUnavailableError(f"the PESQ worker ({' '.join(self.command)}) did not start: "
                                          f"{lines[-1] if lines else f'exit code {proc.returncode}'}. "
                                          f"Fix: {QUALITY_INSTALL}")
        self._proc = proc
        return proc

    def ensure_started(self) -> subprocess.Popen:
        """The running worker, started now if there is none; QualityUnavailableError if it cannot start."""
        return self._proc if self._proc is not None and self._proc.poll() is None else self._start()

    def __call__(self, reference: np.ndarray, degraded: np.ndarray) -> float:
        from codecfake_build._pesq_worker import encode_request

        proc = self.ensure_started()
        try:
            proc.stdin.write(encode_request(reference, degraded, PESQ_RATE))
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = b""
        if not line:  # the worker died on this clip
            code = proc.wait()
            self.close()
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            raise MeasureFailed(f"the PESQ C code crashed on this clip ({how}; its fixed-size tables overflow on "
                                "some long inputs); the worker was restarted")
        status, value = json.loads(line)
        if status != "ok":
            raise MeasureFailed(str(value))
        return float(value)

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.stdin.close()  # end of input: the worker exits by itself
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


_ISOLATED_PESQ: IsolatedPesq | None = None


def _isolated_pesq() -> IsolatedPesq:
    global _ISOLATED_PESQ
    if _ISOLATED_PESQ is None:
        _ISOLATED_PESQ = IsolatedPesq()
        atexit.register(_ISOLATED_PESQ.close)
    return _ISOLATED_PESQ


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sr: int = PESQ_RATE) -> float:
    """Wide-band PESQ (P.862.2) of ``estimate`` against ``reference``; raises MeasureFailed."""
    _check_pair(reference, estimate, "pesq_wb")
    ref, deg = _at_rate(reference, sr, PESQ_RATE), _at_rate(estimate, sr, PESQ_RATE)
    if len(ref) < PESQ_MIN_SECONDS * PESQ_RATE:
        raise MeasureFailed(f"shorter than {PESQ_MIN_SECONDS} s, the PESQ minimum ({len(ref) / PESQ_RATE:.3f} s)")
    if not np.any(deg):  # the C code divides by the fake's level
        raise MeasureFailed("the codec output is silent")
    value = _isolated_pesq()(ref, deg)
    if not np.isfinite(value):
        raise MeasureFailed("PESQ returned a non-finite value")
    return value


def stoi_score(reference: np.ndarray, estimate: np.ndarray, sr: int = PESQ_RATE) -> float:
    """STOI of ``estimate`` against ``reference`` (0..1); raises MeasureFailed."""
    from pystoi import stoi

    _check_pair(reference, estimate, "stoi")
    ref, deg = _at_rate(reference, sr, PESQ_RATE), _at_rate(estimate, sr, PESQ_RATE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(stoi(ref, deg, PESQ_RATE, extended=False))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise MeasureFailed("fewer than 30 frames (about 0.4 s) of speech after STOI's 40 dB silence removal")
    if not np.isfinite(value):
        raise MeasureFailed("STOI returned a non-finite value")
    return value


MEASURES: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {"pesq": pesq_wb, "stoi": stoi_score}


def optional_quality(reference: np.ndarray, estimate: np.ndarray, measures: Iterable[str],
                     sr: int = SAMPLE_RATE) -> tuple[dict[str, float | None], dict[str, str]]:
    """The optional columns of one codec row: (column -> value or None, measure -> failure reason).
    A failure on one clip never raises: the value is None and the reason is returned."""
    values: dict[str, float | None] = {}
    failures: dict[str, str] = {}
    for m in measures:
        try:
            with single_threaded_blas():  # see there: the same floats in every process
                values[OPTIONAL_QUALITY[m]] = MEASURES[m](reference, estimate, sr)
        except MeasureFailed as err:
            values[OPTIONAL_QUALITY[m]] = None
            failures[m] = str(err)
        except QualityUnavailableError:  # not about this clip: every clip would fail alike
            raise
        except Exception as err:  # an unforeseen fault in a third-party measure costs one value, not the build
            values[OPTIONAL_QUALITY[m]] = None
            failures[m] = f"{m}: {type(err).__name__}: {' '.join(str(err).split())}"
    return values, failures


@dataclass(frozen=True)
class RowQuality:
    """Every quality value of one codec row: the always-on columns (``fake_quality``; NaN
    kept, the builder stores it as null), the --quality columns (None where a measure
    failed) and each failed measure's one-line reason."""

    columns: dict[str, float]
    optional: dict[str, float | None]
    failures: dict[str, str]


def reference_log_mel(reference: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The source side of ``logmel_distance``, computed once per source rather than once per
    codec; single-threaded BLAS as inside ``fake_quality``, so the array (and each distance
    computed from it) is bit-identical to the one ``row_quality`` would compute itself."""
    with single_threaded_blas():
        return log_mel(reference, sr)


def row_quality(reference: np.ndarray, estimate: np.ndarray, measures: Iterable[str] = (),
                sr: int = SAMPLE_RATE, reference_logmel: np.ndarray | None = None) -> RowQuality:
    """The unit of work of the builder's quality pass, the same in the build process and in
    a ``quality_pool`` worker: only the arguments decide the result.  ``reference_logmel``
    (``reference_log_mel(reference, sr)``) saves recomputing the source's log-mel per codec."""
    values, failures = optional_quality(reference, estimate, list(measures), sr)
    return RowQuality(fake_quality(reference, estimate, sr, reference_logmel), values, failures)
