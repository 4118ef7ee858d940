#!/usr/bin/env python
"""Whole-build throughput: the same build with the build's CPU pipeline off and on, in one run.

  off  --quality-workers 0 and CODECFAKE_BUILD_PREFETCH=0: the build process decodes and
       resamples each shard only when it reaches it, and encodes and measures every row itself
  on   --quality-workers K and prefetch: the next shard is decoded in a background thread
       while the current shard's codecs run; the K workers encode every row's FLAC and measure
       each fake (each source's log-mel once)

A third build, ``prefetch`` (0 workers + prefetch), separates the two parts of the gain.
All builds must give byte-identical shards and the same manifest (checked; exit 1 if not).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.codec_throughput import (_has_random_init, _loadavg, device_name, git_state,  # noqa: E402
                                         write_results)
from codecfake_build import build as build_module  # noqa: E402
from codecfake_build.build import PREFETCH_ENV, BuildConfig, build  # noqa: E402
from codecfake_build.cli import parse_pairs  # noqa: E402
from codecfake_build.codecs import parse_codec_list  # noqa: E402
from codecfake_build.quality import parse_quality_list, require_measures  # noqa: E402
from codecfake_build.quality_pool import default_quality_workers, usable_cores  # noqa: E402

SCHEMA = "codecfake-bench/build-throughput/1"
DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "en" / "ljspeech"

EPILOG = """\
examples:
  # the committed CPU run: all 32 LJSpeech clips of ../shared, mp3 (a cheap, "GPU-like" codec), 1 worker
  python benchmarks/build_throughput.py --clips 33 --workers 1 --repeats 2

  # a GPU server: a random-init torch codec on CUDA beside mp3, the default worker count
  python benchmarks/build_throughput.py --codec mp3@32kbps,encodec --random-init encodec --device cuda --clips 200

The gain is what the build process no longer does serially (FLAC, quality values, the
next shard's decoding and resampling) and is bounded by the free cores: on a busy
2-core CPU the workers compete with the codec for the same cores.  The 1-minute load
average before and after is recorded; read the ratio against it."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python benchmarks/build_throughput.py", description=__doc__,
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", action="append", default=[], metavar="KIND=PATH",
                   help="sources (repeatable). Default: ../shared's LJSpeech when present, else the embedded corpus")
    p.add_argument("--language", help="language tag for 'folder' corpora")
    p.add_argument("--clips", type=int, default=12, help="sources in the build (--limit; default 12)")
    p.add_argument("--codec", default="mp3@32kbps", help="the build's --codec list (default mp3@32kbps)")
    p.add_argument("--random-init", default="", metavar="NAME[,NAME]",
                   help="codecs of --codec built with seeded random weights (Codec.init_random): no download")
    p.add_argument("--device", default="cpu", help="the build's --device (default cpu)")
    p.add_argument("--workers", type=int, default=None, metavar="K",
                   help=f"quality workers of the 'on' build (default: the build's default, at least 1; here "
                        f"{max(1, default_quality_workers())})")
    p.add_argument("--quality", default="", metavar="pesq,stoi", help="the build's --quality measures (default none)")
    p.add_argument("--shard-size", type=int, default=4, help="sources per shard (default 4: several shards to prefetch)")
    p.add_argument("--repeats", type=int, default=1, help="builds per mode, alternating; the fastest counts")
    p.add_argument("--json", type=Path, default=None,
                   help="where to write the results. Default: benchmarks/results/build_throughput-<device>.json")
    return p


def _with_random_init(names: set[str]):
    """The build's create_codec, giving the named codecs seeded random weights instead of loading any."""
    create = build_module.create_codec

    def create_codec(spec, **kw):
        codec = create(spec, **kw)
        if spec.name in names and _has_random_init(codec):
            codec.init_random(seed=0)
        return codec
    return create_codec


def checksums(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "data").glob("*.parquet"))}


def timed_build(cfg: BuildConfig, prefetch: bool, cpu: list[float] | None = None) -> float:
    """Wall seconds of one build; appends to ``cpu`` the build process's own CPU seconds (all its
    threads, not its children: ffmpeg and the quality workers), the serial work a fast codec waits on."""
    os.environ[PREFETCH_ENV] = "1" if prefetch else "0"
    t0, c0 = time.perf_counter(), time.process_time()
    build(cfg)
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workers = args.workers if args.workers is not None else max(1, default_quality_workers())
    if workers < 1 or args.clips < 1 or args.repeats < 1:
        print("error: --workers, --clips and --repeats must be at least 1", file=sys.stderr)
        return 2
    quality = parse_quality_list(args.quality)
    require_measures(quality)
    corpora = parse_pairs(args.corpus, "--corpus", need_value=False) or (
        [("folder", str(DEFAULT_SHARED))] if DEFAULT_SHARED.is_dir() else [("embedded", None)])
    language = args.language or ("en" if corpora[0][0] == "folder" else None)
    names = {n.strip() for n in args.random_init.split(",") if n.strip()}
    if names:
        build_module.create_codec = _with_random_init(names)

    def config(out: Path, n_workers: int) -> BuildConfig:
        return BuildConfig(corpora=corpora, codecs=parse_codec_list(args.codec), out=out, language=language,
                           device=args.device, limit=args.clips, ratios=(0, 0, 1), shard_size=args.shard_size,
                           quality=quality, quality_workers=n_workers, progress=False, overwrite=True)

    load_before = _loadavg()
    times: dict[str, list[float]] = {"off": [], "prefetch": [], "on": []}
    cpu: dict[str, list[float]] = {mode: [] for mode in times}
    with tempfile.TemporaryDirectory(prefix="build_throughput-") as tmp:
        outs = {mode: Path(tmp) / mode for mode in times}
        timed_build(config(Path(tmp) / "warm", 0), prefetch=False)  # imports, codec loads, filterbank: untimed
        for _ in range(args.repeats):
            times["off"].append(timed_build(config(outs["off"], 0), False, cpu["off"]))
            times["prefetch"].append(timed_build(config(outs["prefetch"], 0), True, cpu["prefetch"]))
            times["on"].append(timed_build(config(outs["on"], workers), True, cpu["on"]))
        manifests = {m: json.loads((outs[m] / "manifest.json").read_text()) for m in times}
        identical = all(checksums(outs["off"]) == checksums(outs[m]) and all(
            manifests["off"][key] == manifests[m][key] for key in ("fingerprint", "shards")) for m in times)
        report = json.loads((outs["on"] / "build_report.json").read_text())
    os.environ.pop(PREFETCH_ENV, None)
    load_after = _loadavg()
    best_off, best_on, best_prefetch = min(times["off"]), min(times["on"]), min(times["prefetch"])
    commit, dirty = git_state()
    device = device_name(args.device)
    result: dict[str, Any] = {
        "schema": SCHEMA, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit, "codecfake_build_dirty": dirty, "python": platform.python_version(),
        "device": device, "build_device": args.device, "usable_cores": usable_cores(),
        "load_avg_1min": {"before": load_before, "after": load_after},
        # "clips" is the --limit asked for; "sources" what the corpora held (fewer when they are smaller).
        "corpora": [[k, r] for k, r in corpora], "clips": args.clips, "sources": report["bonafide"],
        "rows": report["rows"],
        "codecs": args.codec, "random_init": sorted(names), "quality": quality, "shard_size": args.shard_size,
        "workers_on": workers, "repeats": args.repeats,
        "seconds": {mode: [round(t, 3) for t in ts] for mode, ts in times.items()},
        "build_process_cpu_s": {mode: [round(t, 3) for t in ts] for mode, ts in cpu.items()},
        "best_off_s": round(best_off, 3), "best_prefetch_only_s": round(best_prefetch, 3),
        "best_on_s": round(best_on, 3), "speedup_prefetch_only_over_off": round(best_off / best_prefetch, 3),
        "speedup_on_over_off": round(best_off / best_on, 3), "identical_output": identical,
    }
    print(f"{device}: {report['rows']} rows ({report['bonafide']} sources, {args.codec}); "
          f"off {best_off:.2f} s, prefetch only {best_prefetch:.2f} s ({best_off / best_prefetch:.2f}x), "
          f"on ({workers} workers + prefetch) {best_on:.2f} s: {best_off / best_on:.2f}x; "
          f"build-process CPU off {min(cpu['off']):.2f} s, on {min(cpu['on']):.2f} s; "
          f"identical output: {identical}; load average {load_before:.2f} -> {load_after:.2f}")
    path = write_results(result, "build_throughput", device, args.json)
    print(f"wrote {path}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
