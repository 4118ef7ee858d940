#!/usr/bin/env python
"""Quality-measure throughput: the builder's per-fake quality values computed one after
another in one process (``--quality-workers 0``) versus in the pool of K worker
processes (``codecfake_build.quality_pool``), over the same clips in the same run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.codec_throughput import (RATE, _loadavg, cpu_name, git_state, load_clips,  # noqa: E402
                                         write_results)
from codecfake_build.cli import parse_pairs  # noqa: E402
from codecfake_build.quality import parse_quality_list, require_measures, row_quality  # noqa: E402
from codecfake_build.quality_pool import QualityPool, default_quality_workers, usable_cores  # noqa: E402

SCHEMA = "codecfake-bench/quality-throughput/1"
DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "en" / "ljspeech"

DESCRIPTION = """\
Time the builder's per-fake quality values (logmel_distance and si_snr_db, plus
the --measures, default pesq,stoi when installed) on N real clips two ways in
the same run:

  serial  one fake after another in this process (--quality-workers 0)
  pool    the same requests through QualityPool(K) (--quality-workers K)

and print the ratio serial/pool.  Each fake is its clip plus white noise at
20 dB SNR (seeded): the measures cost the same whatever made the fake, and no
codec time is mixed in.  The pool is timed twice: "cold" includes starting its
K workers (imports: what a build pays once), "warm" reuses them.  Both modes
run --repeats times, alternating, and the fastest pass counts.  The values of
both modes are compared exactly (they must be equal floats).  Results go to
benchmarks/results/quality_throughput-<device>.json with the device name, the
1-minute load average before and after, the date and the commit."""

EPILOG = """\
examples:
  # the committed CPU run: 16 LJSpeech clips from ../shared, 2 workers
  python benchmarks/quality_throughput.py --clips 16 --workers 2 --repeats 3

  # a many-core server: the build's default worker count, more clips
  python benchmarks/quality_throughput.py --corpus vctk=/data/VCTK-Corpus-0.92 --clips 200

Read the ratio against the cores: K workers can at best give min(K, free cores)
times the serial rate, less the pickling of two arrays per fake and the pool's
own thread in the build process."""


def fake_of(wave: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(wave))
    energy = float(wave.astype(np.float64) @ wave) or 1.0
    noise *= np.sqrt(energy / float(noise @ noise) / 10 ** (20 / 10))
    return (wave + noise).astype(np.float32)


def run_pass(pool: QualityPool, pairs: list[tuple[np.ndarray, np.ndarray]], measures: list[str],
             ) -> tuple[float, list[Any]]:
    t0 = time.perf_counter()
    futures = [pool.submit(ref, fake, measures, RATE) for ref, fake in pairs]
    values = [f.result() for f in futures]
    return time.perf_counter() - t0, values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python benchmarks/quality_throughput.py", description=DESCRIPTION,
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", action="append", default=[], metavar="KIND=PATH",
                   help="clips to measure (repeatable). Default: ../shared's LJSpeech clips when present, "
                        "else the embedded synthetic corpus")
    p.add_argument("--language", help="language tag for 'folder' corpora")
    p.add_argument("--clips", type=int, default=16, help="number of clips (default 16)")
    p.add_argument("--workers", type=int, default=None, metavar="K",
                   help=f"pool size (default: the build's default, at least 2; here "
                        f"{max(2, default_quality_workers())})")
    p.add_argument("--measures", default=None, metavar="pesq,stoi",
                   help="--quality measures on top of the always-on two (default pesq,stoi when installed; "
                        "'none' for the always-on ones only)")
    p.add_argument("--repeats", type=int, default=2, help="passes per mode, alternating; the fastest counts (default 2)")
    p.add_argument("--json", type=Path, default=None,
                   help="where to write the results. Default: benchmarks/results/quality_throughput-<device>.json")
    return p


def default_measures() -> list[str]:
    try:
        require_measures(["pesq", "stoi"])
    except Exception:
        return []
    return ["pesq", "stoi"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    measures = (default_measures() if args.measures is None
                else [] if args.measures == "none" else parse_quality_list(args.measures))
    require_measures(measures)
    workers = args.workers if args.workers is not None else max(2, default_quality_workers())
    if workers < 1 or args.clips < 1 or args.repeats < 1:
        print("error: --workers, --clips and --repeats must be at least 1", file=sys.stderr)
        return 2
    corpora = parse_pairs(args.corpus, "--corpus", need_value=False) or (
        [("folder", str(DEFAULT_SHARED))] if DEFAULT_SHARED.is_dir() else [("embedded", None)])
    language = args.language or ("en" if corpora[0][0] == "folder" else None)
    clips, problems = load_clips(corpora, args.clips, language)
    for line in problems:
        print(f"skipped: {line}", file=sys.stderr)
    pairs = [(wave, fake_of(wave, k)) for k, (_, wave) in enumerate(clips)]
    audio_s = sum(len(w) for w, _ in pairs) / RATE
    load_before = _loadavg()
    row_quality(*pairs[0], measures, RATE)  # imports, filterbank and PESQ worker of this process: not timed

    serial_s, pool_s, cold_s = [], [], None
    with QualityPool(workers) as pool:
        cold_s, pooled = run_pass(pool, pairs, measures)
        for _ in range(args.repeats):
            seconds, serial = run_pass(QualityPool(0), pairs, measures)
            serial_s.append(seconds)
            seconds, pooled = run_pass(pool, pairs, measures)
            pool_s.append(seconds)
    identical = all(repr(a) == repr(b) for a, b in zip(serial, pooled))
    load_after = _loadavg()
    best_serial, best_pool = min(serial_s), min(pool_s)
    commit, dirty = git_state()
    device = cpu_name()
    result = {
        "schema": SCHEMA, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit, "codecfake_build_dirty": dirty, "python": platform.python_version(),
        "device": device, "usable_cores": usable_cores(), "load_avg_1min": {"before": load_before, "after": load_after},
        "corpora": [[k, r] for k, r in corpora], "clips": [cid for cid, _ in clips], "audio_seconds": round(audio_s, 3),
        "fake": "clip + white noise at 20 dB SNR (seeded per clip)",
        "measures": ["logmel_distance", "si_snr_db", *measures], "workers": workers, "repeats": args.repeats,
        "serial_seconds": serial_s, "pool_seconds": pool_s, "pool_cold_seconds": cold_s,
        "serial_ms_per_audio_second": 1000 * best_serial / audio_s,
        "pool_ms_per_audio_second": 1000 * best_pool / audio_s,
        "ratio_serial_over_pool": best_serial / best_pool,
        "ratio_serial_over_pool_cold": best_serial / cold_s,
        "identical_values": identical,
        "command": "python benchmarks/quality_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(f"{device}; load {load_before} -> {load_after}; {len(pairs)} clips, {audio_s:.1f} s of audio; "
          f"measures {', '.join(result['measures'])}")
    print(f"serial     {best_serial:7.2f} s  ({result['serial_ms_per_audio_second']:.1f} ms per audio second)")
    print(f"pool K={workers}   {best_pool:7.2f} s  ({result['pool_ms_per_audio_second']:.1f} ms per audio second); "
          f"first pass with worker start {cold_s:.2f} s")
    print(f"ratio serial/pool {result['ratio_serial_over_pool']:.2f}x (cold {result['ratio_serial_over_pool_cold']:.2f}x); "
          f"values identical: {identical}")
    out = write_results(result, "quality_throughput", device, args.json)
    print(f"wrote {out}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
