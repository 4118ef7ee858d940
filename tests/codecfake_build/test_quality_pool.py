"""--quality-workers: the quality values computed in worker processes are the serial ones, bit
for bit; crashes cost one value; the pool stops cleanly; the worker count changes no byte."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecfake_build.build import BuildConfig, build, fingerprint, list_utterances
from codecfake_build.codecs import parse_codec_list
from codecfake_build.quality import QUALITY_INSTALL, fake_quality, row_quality
from codecfake_build.quality_pool import QualityPool, QualityWorkerError, default_quality_workers, resolve_workers

from .test_quality_optional import speechlike, with_noise

SR = 16000
HAVE_EXTRA = all(importlib.util.find_spec(m) is not None for m in ("pesq", "pystoi"))
needs_extra = pytest.mark.skipif(not HAVE_EXTRA, reason=f"the optional quality extra is not installed: "
                                                        f"{QUALITY_INSTALL}")
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def same(a, b) -> bool:
    """Equal floats, not approximately: repr round-trips a float exactly (and NaN equals NaN)."""
    return repr(a) == repr(b)


def pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    x = speechlike(1.5)
    return [(x, with_noise(x, 20)), (x, with_noise(x, 0, seed=3)), (x, 0.5 * x),
            (np.zeros_like(x), x),  # silent source: NaN SI-SNR, null PESQ/STOI with reasons
            (x[:3000], x[:3000])]   # too short for both optional measures


def test_default_worker_count():
    assert [default_quality_workers(c) for c in (1, 2, 3, 4, 9, 16, 128)] == [0, 0, 2, 3, 8, 8, 8]
    assert resolve_workers(None) == default_quality_workers() and resolve_workers(3) == 3
    with pytest.raises(ValueError, match=r"--quality-workers -1: must be 0"):
        resolve_workers(-1)
    with pytest.raises(ValueError, match=r"--quality-workers -2"):
        BuildConfig(corpora=[], codecs=[], out=Path("x"), quality_workers=-2)


def test_measures_do_not_depend_on_the_blas_thread_count():
    """The reason a worker (one BLAS thread) and the build process (several) agree."""
    from threadpoolctl import threadpool_limits

    x = np.random.default_rng(0).standard_normal(SR * 40).astype(np.float32)
    y = with_noise(x, 10)
    with threadpool_limits(1, user_api="blas"):
        one = fake_quality(x, y)
    with threadpool_limits(4, user_api="blas"):
        four = fake_quality(x, y)
    assert same(one, four)


@pytest.fixture(scope="module")
def pool2():
    """Two workers shared by the tests below (starting them costs seconds here)."""
    with QualityPool(2) as pool:
        yield pool


def test_pool_values_equal_the_serial_values(pool2):
    measures = ["pesq", "stoi"] if HAVE_EXTRA else []
    serial = [row_quality(r, e, measures) for r, e in pairs()]
    futures = [pool2.submit(r, e, measures) for r, e in pairs()]
    pooled = [f.result() for f in futures]
    assert all(same(a, b) for a, b in zip(serial, pooled)), (serial, pooled)
    with QualityPool(0) as pool:  # the in-process path: computed at once
        assert all(same(a, pool.submit(r, e, measures).result()) for a, (r, e) in zip(serial, pairs()))


@needs_extra
def test_a_pesq_crash_in_a_worker_costs_one_value(pool2):
    """The ITU code overflows on 120 s of 360 syllables (SIGSEGV) inside a worker's own PESQ
    child; the worker answers null + reason and serves the next clips from a new PESQ child."""
    x = speechlike(1.0)
    long = np.tile(x, 120)
    for future in [pool2.submit(x, x) for _ in range(4)]:  # both workers up
        future.result()
    pids = {w._proc.pid for w in pool2._workers if w._proc is not None}
    crashed = pool2.submit(long, long, ["pesq"]).result()
    after = [pool2.submit(x, x, ["pesq"]) for _ in range(4)]
    assert crashed.optional == {"pesq_wb": None} and "PESQ C code crashed" in crashed.failures["pesq"]
    assert crashed.columns["si_snr_db"] > 100  # the always-on values are still there
    for future in after:
        assert future.result().optional["pesq_wb"] == pytest.approx(4.644, abs=1e-3)
    # The same worker processes, all alive: no worker was lost or replaced.
    assert {w._proc.pid for w in pool2._workers if w._proc is not None} == pids
    assert all(w._proc.poll() is None for w in pool2._workers)


def test_sources_and_fakes_from_workers_are_the_in_process_bytes_and_floats(pool2):
    """A source's FLAC and log-mel once, each copy's values against that log-mel and its FLAC:
    from a worker they equal encode_flac and row_quality (no cached log-mel) in this process."""
    from codecfake_build.audio import encode_flac
    from codecfake_build.quality_pool import fake_work, source_work

    measures = ["pesq", "stoi"] if HAVE_EXTRA else []
    for reference, estimates in ((pairs()[0][0], [e for _, e in pairs()[:3]]), (np.zeros(SR, np.float32),
                                 [speechlike(1.0)]), (speechlike(0.2), [speechlike(0.2)[::-1].copy()])):
        source = pool2.submit_source(reference)
        fakes = [pool2.submit_fake(source, reference, e, measures) for e in estimates]
        assert source.result().flac == encode_flac(reference, SR) == source_work(reference).flac
        assert np.array_equal(source.result().logmel, source_work(reference).logmel)
        for estimate, fake in zip(estimates, fakes):
            got = fake.result()
            assert got.flac == encode_flac(estimate, SR)
            assert same(got.quality, row_quality(reference, estimate, measures))
            assert same(fake_work(source_work(reference).logmel, reference, estimate, measures).quality, got.quality)


#: A worker that starts like the real one and dies on its first request.
DYING_WORKER = [sys.executable, "-c", "import os, sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); "
                "sys.stdin.buffer.read(8); os.kill(os.getpid(), 9)"]


def test_a_dead_worker_costs_nothing_its_clip_is_measured_here(caplog):
    r, e = pairs()[0]
    with QualityPool(1, command=DYING_WORKER) as pool:
        results = [pool.submit(r, e).result() for _ in range(2)]  # a new (dying) worker for the second
    assert all(same(q, row_quality(r, e)) for q in results)
    assert "a quality worker died (signal SIGKILL)" in caplog.text


def test_a_worker_that_cannot_start_names_the_fix():
    broken = [sys.executable, "-c", "raise SystemExit('No module named numpy')"]
    with QualityPool(1, command=broken) as pool:
        future = pool.submit(*pairs()[0])
        with pytest.raises(QualityWorkerError) as err:
            future.result()
    msg = str(err.value)
    assert "\n" not in msg and "did not start: No module named numpy" in msg and "--quality-workers 0" in msg


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_exception_cancels_the_queue_and_kills_the_workers():
    x = speechlike(3.0)
    with pytest.raises(KeyboardInterrupt):
        with QualityPool(2) as pool:
            first = pool.submit(x, x)
            first.result()  # the workers are up
            pids = [w._proc.pid for w in pool._workers if w._proc is not None]
            queued = [pool.submit(x, with_noise(x, 5)) for _ in range(40)]
            raise KeyboardInterrupt
    assert pids and not any(_alive(p) for p in pids)
    assert any(f.cancelled() for f in queued)
    assert all(not t.is_alive() for t in pool._threads)


SCRIPT_KILLED = """
import sys, time
import numpy as np
from codecfake_build.quality_pool import QualityPool
pool = QualityPool(1)
x = np.sin(np.arange(16000) / 7).astype(np.float32)
pool.submit(x, x).result()
print(pool._workers[0]._proc.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads process state via kill(pid, 0)")
def test_workers_exit_when_the_build_process_is_killed(tmp_path):
    """kill -9 of the build process: the worker reads end of input and exits by itself."""
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT_KILLED], stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        worker = int(proc.stdout.readline())
        assert _alive(worker)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 10
        while _alive(worker) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- whole builds


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("poolcorpus")
    (root / "spk").mkdir()
    sf.write(root / "spk" / "a.wav", speechlike(1.5), SR)
    sf.write(root / "spk" / "b.wav", speechlike(1.2)[::-1].copy(), SR)
    sf.write(root / "spk" / "c.wav", np.zeros(SR // 2, dtype=np.float32) + 1e-3 * speechlike(0.5), SR)
    sf.write(root / "spk" / "tiny.wav", speechlike(0.5)[1000:1000 + int(0.2 * SR)], SR)
    return root


def cfg_for(corpus: Path, out: Path, workers: int, quality: list[str]) -> BuildConfig:
    return BuildConfig(corpora=[("folder", str(corpus))], codecs=parse_codec_list("mp3@32kbps,opus@16kbps"),
                       out=out, language="en", progress=False, ratios=(0, 0, 1), shard_size=2,
                       quality=quality, quality_workers=workers)


def checksums(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "data").glob("*.parquet"))}


@needs_ffmpeg
def test_the_worker_count_changes_no_byte_and_a_resume_may_change_it(corpus, tmp_path, monkeypatch):
    from codecfake_build import quality_pool

    starts = []
    real_start = quality_pool._Worker._start
    monkeypatch.setattr(quality_pool._Worker, "_start", lambda self: starts.append(1) or real_start(self))
    quality = ["pesq", "stoi"] if HAVE_EXTRA else []
    serial, pooled = tmp_path / "w0", tmp_path / "w2"
    build(cfg_for(corpus, serial, 0, quality))
    assert starts == []  # 0 = in the build process
    result = build(cfg_for(corpus, pooled, 2, quality))
    assert len(starts) == 2  # two shards, one pool: each worker started once per build
    assert len(checksums(serial)) == 2 and checksums(serial) == checksums(pooled)
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (serial, pooled)]
    assert manifests[0] == manifests[1]  # fingerprint, shard sha256s, skips and quality failures
    utts, _ = list_utterances(cfg_for(corpus, serial, 0, quality))
    assert fingerprint(cfg_for(corpus, serial, 0, quality), utts) == \
        fingerprint(cfg_for(corpus, serial, 5, quality), utts)
    if quality:
        # tiny.wav through both codecs (both measures), c.wav (0.5 s: STOI only)
        assert result.quality_failure_counts() == {"pesq": 2, "stoi": 4}
    # A resume with another worker count: allowed; the torn shard is rebuilt with the same bytes.
    torn = sorted((pooled / "data").glob("*.parquet"))[1]
    torn.write_bytes(torn.read_bytes()[:100])
    build(cfg_for(corpus, pooled, 0, quality))
    assert checksums(pooled) == checksums(serial)


def test_cli_flag(capsys, tmp_path):
    from codecfake_build.cli import build_parser, main

    text = " ".join(build_parser().format_help().split())
    assert "--quality-workers N" in text and "0 = in the build process" in text
    assert main(["--codec", "mp3", "--quality-workers", "-1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--quality-workers -1: must be 0" in err
