"""The build's quality pass off its critical path: ``quality.row_quality`` for each
fake, in a pool of worker processes (``--quality-workers N``).

Why.  On a GPU server the codec pass is fast and these CPU measures are not:
wide-band PESQ costs about 12 ms and STOI about 5 ms per second of audio on one
core, the always-on log-mel distance and SI-SNR about 1 ms, all computed one
row after another while the other cores idle.  With a pool the build process
submits a codec's fakes as soon as that codec has made them, goes on with the
next codec, and collects the values only when it writes each row (FLAC
encoding of the rows overlaps the measures still running).

What the workers do per shard (``build.build_shard``): ``submit_source`` once
per source -- the bona fide row's FLAC bytes and the source's log-mel (the
reference side of ``logmel_distance``, otherwise recomputed for every codec) --
then ``submit_fake`` for each copy: its quality values against that log-mel and
its FLAC bytes.  So with N workers the build process encodes no audio and
measures nothing; it decodes, runs the codecs and writes shards.

What does not change.  The values: every process computes them with the same
function on the same arrays, and numpy's BLAS runs single-threaded inside the
measures everywhere (``quality.single_threaded_blas``), so a float does not
depend on which process or how many threads computed it; rows are assembled in
the same order.  Hence the shards, their checksums and the fingerprint are the
same for any worker count, and a build may be resumed with another
``--quality-workers``.  The manifest and shard writes stay in the build process,
one shard at a time, so crash safety (kill -9, resume) is as before.

Workers.  Each worker is a fresh interpreter (``python -m
codecfake_build._quality_worker``), i.e. the *spawn* start method's semantics,
never a fork: forking the build process would copy torch's thread pools (and on
a GPU its CUDA context) into children that then deadlock or fail.  It is a
plain subprocess rather than a ``multiprocessing`` spawn/forkserver child for
the reasons ``_pesq_worker`` gives: multiprocessing re-imports the caller's
main script in every child (a build started from a script without an
``if __name__ == "__main__"`` guard would re-run itself there), and a
multiprocessing child outlives a parent killed with -9 while it waits on its
queue; a worker reading its stdin pipe sees end of input instead and exits.
One thread per worker in the build process feeds it requests from a shared
queue (the pickling and pipe I/O release the GIL; the measures run in the
workers).  Workers start on the first fake of a build (a resume with nothing
left to do starts none) and each runs numpy's BLAS on one thread, one worker
per core.

Crashes.  PESQ keeps its own crash-isolated child inside each worker
(``quality.IsolatedPesq``): a segfault of the ITU code costs that clip's value
(null + reason, counted as without a pool), never the worker or the pool.  A
worker that dies itself (killed, or out of memory on a clip of many minutes)
is replaced; its clip is measured again in the build process, with the same
result the worker would have given.

Default worker count (``default_quality_workers``): one worker per usable core
beyond the one the build process keeps, at most 8 (eight workers already
measure faster than one GPU codec pass produces fakes, see
benchmarks/quality_throughput.py; more only add memory: STOI of a 600 s clip
needs about 1 GB per worker).  With fewer than 3 usable cores the default is 0:
a lone worker would share the build's cores with the codecs' own threads and
costs about 2 s of CPU to start (imports), more than it saves on a small build.
``0`` computes in the build process, one fake after another, as before the
pool existed.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from codecfake_build.audio import encode_flac
from codecfake_build.quality import SAMPLE_RATE, RowQuality, reference_log_mel, row_quality

log = logging.getLogger("codecfake_build")

MAX_DEFAULT_WORKERS = 8
MIN_CORES_FOR_WORKERS = 3
#: Thread pools a worker must not start: one worker is meant to use one core.
_SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's share), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def default_quality_workers(cores: int | None = None) -> int:
    """``min(8, cores - 1)``: every core but the build process's own, at most 8; 0 below 3 cores."""
    cores = usable_cores() if cores is None else cores
    return min(MAX_DEFAULT_WORKERS, cores - 1) if cores >= MIN_CORES_FOR_WORKERS else 0


def resolve_workers(workers: int | None) -> int:
    """None = the default for this machine; a count must be 0 or more."""
    if workers is None:
        return default_quality_workers()
    if workers < 0:
        raise ValueError(f"--quality-workers {workers}: must be 0 (in the build process) or more")
    return int(workers)


@dataclass(frozen=True)
class SourceWork:
    """What a build needs of one stored bona fide waveform, computed once however many codecs
    copy it: its FLAC bytes (the real row's audio) and its log-mel (``logmel_distance``'s
    reference side, otherwise recomputed for every codec)."""

    flac: bytes
    logmel: np.ndarray


@dataclass(frozen=True)
class FakeWork:
    """One codec row's quality values and FLAC bytes."""

    quality: RowQuality
    flac: bytes


def source_work(real: np.ndarray, sr: int = SAMPLE_RATE) -> SourceWork:
    return SourceWork(encode_flac(real, sr), reference_log_mel(real, sr))


def fake_work(reference_logmel: np.ndarray, reference: np.ndarray, estimate: np.ndarray,
              measures: tuple[str, ...] = (), sr: int = SAMPLE_RATE) -> FakeWork:
    # encode_flac is a pure function of the array (libsndfile writes no timestamps), so the
    # bytes are the ones the build process would have encoded itself.
    return FakeWork(row_quality(reference, estimate, measures, sr, reference_logmel), encode_flac(estimate, sr))


#: What a worker may be asked to run: a request is ``(task name, args)``.
TASKS: dict[str, Callable[..., Any]] = {"row_quality": row_quality, "source": source_work, "fake": fake_work}


@dataclass(frozen=True)
class _LogmelOf:
    """An argument still to come: the log-mel of a submitted source, resolved by the feeding
    thread just before the request is sent (so only the array travels, not the source's FLAC)."""

    source: "Future[SourceWork]"


def _resolve(args: tuple) -> tuple:
    return tuple(a.source.result().logmel if isinstance(a, _LogmelOf) else a for a in args)


class QualityWorkerError(RuntimeError):
    """A quality worker process could not start."""


class _WorkerDied(Exception):
    """The worker process ended while it held a request."""


class _Worker:
    """One worker process, owned by one feeding thread of the pool."""

    def __init__(self, command: list[str]):
        self.command = command
        self._proc: subprocess.Popen | None = None
        self._stderr: Any = None

    def _start(self) -> subprocess.Popen:
        from codecfake_build._quality_worker import READY

        env = {**os.environ, **_SINGLE_THREAD_ENV}
        package_root = str(Path(__file__).resolve().parents[1])  # importable, installed or not
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self._stderr = tempfile.TemporaryFile()  # a file, never a pipe that fills up and blocks the worker
        proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                env=env)
        if proc.stdout.readline() != READY:
            proc.wait()
            reason = self._last_stderr_line() or f"exit code {proc.returncode}"
            self.close()
            raise QualityWorkerError(f"a quality worker ({' '.join(self.command)}) did not start: {reason}. "
                                     "Fix: the message above, or --quality-workers 0 to measure in the build process")
        self._proc = proc
        return proc

    def _last_stderr_line(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def ask(self, request: tuple) -> tuple[str, Any]:
        from codecfake_build._quality_worker import read_message, write_message

        proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
        try:
            write_message(proc.stdin, request)
            return read_message(proc.stdout)
        except (BrokenPipeError, OSError, EOFError):
            code = proc.wait()
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            last = self._last_stderr_line()
            self.close()
            raise _WorkerDied(how + (f": {last}" if last else "")) from None

    def stop_now(self, grace: float = 1.0) -> None:
        """SIGTERM (the worker exits at once, closing its PESQ child), SIGKILL after ``grace`` s."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.stdin.close()  # end of input: the worker exits by itself
                except OSError:
                    pass
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


class QualityPool:
    """``submit(reference, estimate, measures)`` -> a Future of ``RowQuality``.

    ``workers=0`` computes at once in this process (the serial path, the same values).
    Use it as a context manager around a whole build: leaving the block shuts the workers
    down; leaving it by an exception (KeyboardInterrupt included) cancels queued requests
    and stops the workers without waiting for their running requests."""

    def __init__(self, workers: int = 0, command: list[str] | None = None):
        self.workers = resolve_workers(workers)
        self.command = command or [sys.executable, "-m", "codecfake_build._quality_worker"]
        self._jobs: queue.Queue = queue.Queue()
        self._workers: list[_Worker] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._stopping = False
        #: Serialises recomputations in this process (they share its one IsolatedPesq).
        self._here = threading.Lock()

    def __enter__(self) -> "QualityPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(cancel=exc_type is not None)

    def submit(self, reference: np.ndarray, estimate: np.ndarray, measures: Iterable[str] = (),
               sr: int = SAMPLE_RATE) -> "Future[RowQuality]":
        return self._submit("row_quality", (reference, estimate, tuple(measures), sr))

    def submit_source(self, real: np.ndarray, sr: int = SAMPLE_RATE) -> "Future[SourceWork]":
        """The bona fide row's FLAC and log-mel; submit it before the source's fakes."""
        return self._submit("source", (real, sr))

    def submit_fake(self, source: "Future[SourceWork]", reference: np.ndarray, estimate: np.ndarray,
                    measures: Iterable[str] = (), sr: int = SAMPLE_RATE) -> "Future[FakeWork]":
        """One codec row's quality values (against ``source``'s log-mel) and FLAC bytes.
        ``source`` must have been submitted earlier: the queue is first in, first out, so
        a feeding thread that waits for it waits for a request already being computed."""
        return self._submit("fake", (_LogmelOf(source), reference, estimate, tuple(measures), sr))

    def _submit(self, task: str, args: tuple) -> Future:
        if self._closed:
            raise RuntimeError("this QualityPool is closed")
        future: Future = Future()
        if self.workers == 0:
            try:
                future.set_result(TASKS[task](*_resolve(args)))
            except Exception as err:  # raised by result(), as from a worker
                future.set_exception(err)
            return future
        request = (task, args)
        if not self._threads:
            self._start_threads()
        self._jobs.put((future, request))
        return future

    def _start_threads(self) -> None:
        for k in range(self.workers):
            worker = _Worker(self.command)
            thread = threading.Thread(target=self._feed, args=(worker,), name=f"quality-worker-{k}", daemon=True)
            self._workers.append(worker)
            self._threads.append(thread)
            thread.start()

    def _feed(self, worker: _Worker) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, (task, args) = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                request = (task, _resolve(args))
                status, value = worker.ask(request)
            except _WorkerDied as died:
                if self._stopping:
                    future.set_exception(CancelledError())
                    continue
                log.warning("a quality worker died (%s); its clip is measured in the build process and the "
                            "worker replaced", died)
                status, value = self._measure_here(request)
            except BaseException as err:  # e.g. QualityWorkerError: the build stops at this row
                future.set_exception(err)
                continue
            if status == "ok":
                future.set_result(value)
            else:
                future.set_exception(value)

    def _measure_here(self, request: tuple) -> tuple[str, Any]:
        with self._here:
            try:
                task, args = request
                return "ok", TASKS[task](*args)
            except Exception as err:
                return "error", err

    def close(self, cancel: bool = False) -> None:
        """Stop the workers.  ``cancel``: drop queued requests and stop running workers at once."""
        if self._closed:
            return
        self._closed = True
        if cancel:
            self._stopping = True
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
            for worker in self._workers:
                worker.stop_now()
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        for worker in self._workers:
            worker.close()
