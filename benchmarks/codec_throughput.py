#!/usr/bin/env python
"""Codec throughput: seconds of audio re-synthesised per wall-clock second.

Every codec is timed twice over the same clips in the same run: the plain
baseline (one ``Codec.resynthesize([clip])`` call per clip) and length-bucketed
batches (clips sorted by length, ``--batch-size`` per call).  The batched
outputs are compared with the one-at-a-time outputs, so a speed-up that changes
the audio shows up next to the number it produced.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from codecfake_build.audio import AudioError, load_audio
from codecfake_build.cli import parse_pairs
from codecfake_build.codecs import CODECS, Codec, CodecSpec, CodecUnavailableError, create_codec, parse_codec_list
from codecfake_build.codecs.precision import AMP_MODES, DEFAULT_TOLERANCE, AmpCheckError, choose_amp, max_abs_diff
from codecfake_build.corpora import CORPORA, CorpusError, open_corpus
from codecfake_build.registry import UnknownNameError
from codecfake_build.splits import rank_key

#: Every clip is loaded at this rate and every codec returns this rate (the dataset's
#: storage rate), so "audio seconds" means the same thing for every codec.
RATE = 16000
SCHEMA = "codecfake-bench/codec-throughput/1"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent

DESCRIPTION = """\
Measure codec throughput as x real time (seconds of audio re-synthesised per
wall-clock second) in two modes over the same clips in the same run:

  baseline  one clip per call:  codec.resynthesize([clip], sr, 16000)
  batched   clips sorted by length (bucketing), --batch-size clips per call

and check that both modes give the same audio (max |batched - unbatched|).
Each mode runs --repeats times (modes alternating) and the fastest pass is
reported.  Loading the codec and one warm-up call (the two shortest clips as
a batch) are excluded from the timing.  Clips are loaded at 16 kHz and every
codec returns 16 kHz, as in the dataset builder.  A codec that cannot load
here (package, binary or weights missing) is reported as "skipped: <reason>"
and the run goes on.  Results are printed as a table and written as JSON with
the device name, date, commit and torch version."""

EPILOG = """\
examples:
  # every registered codec at its default config, embedded (synthetic) clips
  python benchmarks/codec_throughput.py

  # the CPU run committed in benchmarks/results/ (offline; random-weight EnCodec/DAC)
  python benchmarks/codec_throughput.py --codec mp3,aac,opus,soundstream-lyra,encodec,dac \\
      --weights soundstream-lyra=../shared/weights/lyra_v2 --random-init --clips 12 --repeats 2

  # on a GPU with the real EnCodec/DAC weights, real speech, bigger batches
  python benchmarks/codec_throughput.py --codec encodec,dac@24khz --device cuda \\
      --corpus vctk=/data/VCTK-Corpus-0.92 --clips 200 --batch-size 32

  # one codec config, results to a chosen file
  python benchmarks/codec_throughput.py --codec mp3@64kbps --json /tmp/mp3.json

Without --codec every registered codec runs at its default config; each one
that cannot run here says why ("skipped: <reason>") and the run goes on.

--random-init builds every codec that defines Codec.init_random (the torch
codecs) from the official architecture of the chosen config with random
weights: the same arithmetic as the real checkpoint, so the timing holds, but
the output is not speech.  Codecs without it (ffmpeg, TFLite Lyra) load their
real binary/weights, and the row says so.  A codec given --weights uses those
weights instead.  Exit status: 0 when every codec ran
or was skipped, 1 when one failed or batched and unbatched outputs differ by more
than --tolerance, 2 for bad arguments."""


# ---- small helpers ---------------------------------------------------------------------------------


def _one_line(text: object) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """HEAD, and whether the codec code differs from it: a commit only identifies what
    was timed if codecfake_build/ had no uncommitted or untracked changes."""
    commit = _git("rev-parse", "HEAD") or None
    status = _git("status", "--porcelain", "--", "codecfake_build") if commit else None
    return commit, (None if status is None else bool(status))


def cpu_name() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 0
    return f"{model}, {cores} cores" if cores else model


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return cpu_name()


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def write_results(result: dict[str, Any], kind: str, device: str, path: Path | None = None) -> Path:
    """Write a benchmark's JSON atomically to ``path`` or ``benchmarks/results/<kind>-<device slug>.json``."""
    from codecfake_build.atomic import atomic_write_json

    out = path or RESULTS_DIR / f"{kind}-{slug(device)}.json"
    atomic_write_json(out, result)
    return out


def effective_device(codec: Any) -> str:
    """Where the codec really computes: a torch model's parameters say so; ffmpeg and the
    TFLite interpreter always run on the host CPU whatever --device says."""
    model = getattr(codec, "model", None)
    params = getattr(model, "parameters", None)
    if callable(params):
        try:
            return str(next(params()).device)
        except StopIteration:
            pass
    return "cpu"


# ---- clips -----------------------------------------------------------------------------------------


def load_clips(corpora: list[tuple[str, str | None]], n: int | None, language: str | None,
               ) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """(id, 16 kHz wave) for the chosen clips, and one line per unreadable file."""
    utts = []
    for kind, root in corpora:
        utts.extend(open_corpus(kind, root, language=language).utterances())
    if n is not None:
        # Hash-ranked like the builder's --limit, so a few clips still span speakers and languages.
        utts = sorted(utts, key=lambda u: rank_key(0, f"{u.corpus}/{u.source_id}"))[:n]
        utts.sort(key=lambda u: (u.corpus, u.source_id))
    clips, problems = [], []
    for u in utts:
        try:
            wave, _ = load_audio(u.path, target_sr=RATE)
        except AudioError as err:
            problems.append(str(err))
            continue
        clips.append((f"{u.corpus}/{u.source_id}", wave))
    return clips, problems


# ---- timing ----------------------------------------------------------------------------------------


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _buckets(clips: list[np.ndarray], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(clips)), key=lambda i: (len(clips[i]), i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def run_baseline(codec: Any, clips: list[np.ndarray], device: str) -> tuple[float, list[np.ndarray]]:
    _sync(device)
    t0 = time.perf_counter()
    outs = [codec.resynthesize([x], RATE, RATE)[0] for x in clips]
    _sync(device)
    return time.perf_counter() - t0, outs


def run_batched(codec: Any, clips: list[np.ndarray], batch_size: int, device: str,
                ) -> tuple[float, list[np.ndarray]]:
    outs: list[np.ndarray] = [np.empty(0, np.float32)] * len(clips)
    buckets = _buckets(clips, batch_size)
    _sync(device)
    t0 = time.perf_counter()
    for bucket in buckets:
        for i, y in zip(bucket, codec.resynthesize([clips[i] for i in bucket], RATE, RATE)):
            outs[i] = y
    _sync(device)
    return time.perf_counter() - t0, outs


def _has_random_init(codec: Any) -> bool:
    """True if the codec overrides ``Codec.init_random`` (ffmpeg and TFLite codecs cannot)."""
    return type(codec).init_random is not Codec.init_random


def default_specs() -> list[CodecSpec]:
    """Every registered codec at its default config: what runs without --codec."""
    return [CodecSpec(name, cls.default_config) for name, cls in CODECS.items()]


def bench_codec(spec: CodecSpec, clips: list[np.ndarray], args: argparse.Namespace,
                weights: dict[str, str]) -> dict[str, Any]:
    """Time one codec; never raises for a codec that cannot load or fails to run."""
    row: dict[str, Any] = {"codec": str(spec), "status": "ok", "reason": None, "device": None,
                           "weights": weights.get(spec.name), "random_init": False, "note": None}
    try:
        codec = create_codec(spec, device=args.device, weights=weights.get(spec.name))
        t0 = time.perf_counter()
        if args.random_init and spec.name not in weights and _has_random_init(codec):
            row["weights"] = codec.init_random(seed=0)
            row["random_init"] = True
        else:
            if args.random_init and spec.name not in weights:
                row["note"] = "no random init for this codec (not a torch model here): real weights/binary"
            codec.ensure_loaded()
        row["load_seconds"] = time.perf_counter() - t0
    except (CodecUnavailableError, ImportError) as exc:
        row.update(status="skipped", reason=_one_line(exc))
        return row
    except Exception as exc:  # a load that breaks unexpectedly is a failure, not a skip
        row.update(status="failed", reason=f"{type(exc).__name__}: {_one_line(exc)}")
        return row
    row["device"] = effective_device(codec)
    try:
        # One warm-up call on the two shortest clips as a batch runs the padded-batch path
        # once (lazy init, allocator, kernel selection) at the cost of little audio.
        t0 = time.perf_counter()
        codec.resynthesize([clips[i] for i in _buckets(clips, min(2, args.batch_size))[0]], RATE, RATE)
        row["warmup_seconds"] = time.perf_counter() - t0
        base_times, batch_times, diffs = [], [], []
        ref_peak = 0.0
        for _ in range(args.repeats):
            # Modes alternate within each repeat so slow drift (thermal, other load)
            # hits both alike.
            tb, ref = run_baseline(codec, clips, args.device)
            tt, got = run_batched(codec, clips, args.batch_size, args.device)
            base_times.append(tb)
            batch_times.append(tt)
            diffs.append(max_abs_diff(ref, got))
            ref_peak = max(ref_peak, max(float(np.max(np.abs(y))) if y.size else 0.0 for y in ref))
    except Exception as exc:  # one broken codec must not end the benchmark of the others
        row.update(status="failed", reason=f"{type(exc).__name__}: {_one_line(exc)}")
        return row
    audio_s = sum(len(x) for x in clips) / RATE
    # Best of the repeats, as timeit does: other load only ever adds time, so the fastest
    # pass is the closest to what the codec itself costs.  All times are kept in the JSON.
    base_s, batch_s = min(base_times), min(batch_times)
    row.update(
        audio_seconds=audio_s,
        baseline={"seconds": base_times, "best_seconds": base_s, "median_seconds": statistics.median(base_times),
                  "x_realtime": audio_s / base_s},
        batched={"seconds": batch_times, "best_seconds": batch_s, "median_seconds": statistics.median(batch_times),
                 "x_realtime": audio_s / batch_s, "batch_size": args.batch_size},
        ratio_batched_over_baseline=base_s / batch_s,
        max_abs_diff=max(diffs),
        # The diff is absolute; the output peak says how large it is next to the signal
        # (random-weight models can be far quieter than speech).
        output_peak=ref_peak,
        matches=max(diffs) <= args.tolerance,
    )
    if not row["matches"]:
        row["status"] = "mismatch"
        row["reason"] = f"batched and unbatched outputs differ by {max(diffs):.3g} > --tolerance {args.tolerance:g}"
    if args.amp != "off":
        row["amp"] = bench_amp(codec, clips, args, base_s, audio_s)
    return row


def bench_amp(codec: Any, clips: list[np.ndarray], args: argparse.Namespace, base_s: float,
              audio_s: float) -> dict[str, Any]:
    """The builder's AMP check on this run's clips, then the batched timing under the dtype it keeps."""
    try:
        decision = choose_amp(codec, clips, RATE, args.amp, args.amp_tolerance).to_dict()
    except AmpCheckError as exc:
        return {"requested": args.amp, "chosen": None, "reason": _one_line(exc)}
    if decision["chosen"] is None:
        return decision
    try:
        times = [run_batched(codec, clips, args.batch_size, args.device)[0] for _ in range(args.repeats)]
    finally:
        codec.amp = None
    decision.update(batched={"seconds": times, "best_seconds": min(times), "x_realtime": audio_s / min(times)},
                    ratio_amp_batched_over_baseline=base_s / min(times))
    return decision


# ---- output ----------------------------------------------------------------------------------------


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'codec':<26} {'device':<7} {'audio s':>8} {'baseline xRT':>13} {'batched xRT':>12} " \
           f"{'batched/base':>13} {'max|diff|':>10} {'out peak':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        name = r["codec"] + (" *" if r.get("random_init") else "")
        if "baseline" not in r:
            reason = r["reason"] or ""
            lines.append(f"{name:<26} {r['status']}: {reason if len(reason) <= 100 else reason[:97] + '...'}")
            continue
        flag = "" if r["matches"] else "  MISMATCH"
        lines.append(
            f"{name:<26} {r['device']:<7} {r['audio_seconds']:>8.1f} {r['baseline']['x_realtime']:>13.2f} "
            f"{r['batched']['x_realtime']:>12.2f} {r['ratio_batched_over_baseline']:>12.2f}x "
            f"{r['max_abs_diff']:>10.2g} {r['output_peak']:>9.3g}{flag}")
    if any(r.get("random_init") for r in rows):
        lines.append("* random weights (--random-init): the official architecture of that config, so the "
                     "same compute as the real weights; the output is not speech")
    lines.append("xRT = seconds of audio per wall-clock second, fastest repeat (higher is faster); max|diff| = largest "
                 "|batched - unbatched| sample over all clips; out peak = largest |sample| of the output")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    corpora = ", ".join(CORPORA.names())
    p = argparse.ArgumentParser(prog="python benchmarks/codec_throughput.py", description=DESCRIPTION,
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codec", metavar="NAME[@CONFIG],...",
                   help="codecs to time, e.g. 'mp3,opus@16kbps,dac'. Default: every registered codec at its "
                        "default config (see 'python -m codecfake_build codecs')")
    p.add_argument("--corpus", action="append", default=[], metavar="KIND=PATH",
                   help=f"speech to feed the codecs (repeatable), as in the builder; KIND is one of: {corpora}. "
                        "Default: the embedded corpus (36 SYNTHETIC espeak-ng clips, 1.6-2.8 s)")
    p.add_argument("--language", help="language tag for 'folder' corpora (e.g. en, cmn, ja)")
    p.add_argument("--clips", type=int, metavar="N",
                   help="use N clips (hash-ranked over all corpora, so they span speakers). Default: all")
    p.add_argument("--weights", action="append", default=[], metavar="CODEC=PATH",
                   help="local weights for a codec (file or directory), as in the builder; repeatable")
    p.add_argument("--random-init", action="store_true",
                   help="build every codec that defines init_random (the torch codecs) without --weights from "
                        "its official architecture with random weights: offline, same compute, output not "
                        "speech; ffmpeg and Lyra load their real binary/weights")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N for the torch codecs (default cpu); "
                                                   "ffmpeg and Lyra (TFLite) always run on the CPU")
    p.add_argument("--batch-size", type=int, default=8, help="clips per batched call (default 8)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed passes per mode; the fastest is reported, all are kept in the JSON (default 3)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed max |batched - unbatched| (default 1e-4)")
    p.add_argument("--amp", choices=AMP_MODES, default="off",
                   help="also time batched re-synthesis in reduced precision: the builder's check runs first (output "
                        "within --amp-tolerance of float32 on these clips) and only a dtype that passes is timed; "
                        "auto tries bf16, fp16, then tf32 on CUDA; the baseline is strict float32 (default off)")
    p.add_argument("--amp-tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"largest allowed max |amp - float32| (default {DEFAULT_TOLERANCE:g}, as the builder)")
    p.add_argument("--json", type=Path, metavar="PATH",
                   help="where to write the results. Default: benchmarks/results/codec_throughput-<device>.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.batch_size < 1 or args.repeats < 1:
            raise ValueError("--batch-size and --repeats must be at least 1")
        if args.clips is not None and args.clips < 1:
            raise ValueError("--clips must be at least 1")
        specs = parse_codec_list(args.codec) if args.codec else default_specs()
        weights: dict[str, str] = dict(parse_pairs(args.weights, "--weights", need_value=True))  # type: ignore[arg-type]
        unknown = [k for k in weights if k not in {s.name for s in specs}]
        if unknown:
            raise ValueError(f"--weights {unknown[0]}=...: that codec is not among the benchmarked codecs "
                             f"({', '.join(str(s) for s in specs)})")
        if args.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"--device {args.device}: CUDA is not available here. Fix: use --device cpu")
        elif args.device != "cpu":
            raise ValueError(f"--device {args.device}: use cpu, cuda or cuda:N")
        corpora = parse_pairs(args.corpus, "--corpus", need_value=False) or [("embedded", None)]
        clips, problems = load_clips(corpora, args.clips, args.language)
        if not clips:
            raise ValueError("no readable clips: " + (problems[0] if problems else "the corpus is empty"))
    except (ValueError, CorpusError, UnknownNameError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2

    import torch

    try:
        import transformers

        # Per-shard progress bars of save/load would interleave with the table.
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass
    dev_name = device_name(args.device)
    # Taken before the run: others may commit while a long benchmark runs.
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    commit, dirty = git_state()
    load_start = _loadavg()
    waves = [w for _, w in clips]
    lengths = [len(w) / RATE for w in waves]
    print(f"device: {args.device} ({dev_name}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    if load_start is not None:
        print(f"load average at start: {load_start:.2f} (other processes on this machine slow every "
              f"number down alike)")
    print(f"clips: {len(waves)} from {', '.join(k + (f'={r}' if r else '') for k, r in corpora)}, "
          f"{sum(lengths):.1f} s of audio ({min(lengths):.2f}-{max(lengths):.2f} s each); "
          f"batch size {args.batch_size}, {args.repeats} repeat(s)")
    for line in problems:
        print(f"skipped clip: {line}")

    rows = []
    for spec in specs:
        row = bench_codec(spec, waves, args, weights)
        rows.append(row)
        if row["note"]:
            print(f"{spec}: {row['note']}")
        if row["status"] == "skipped":
            print(f"{spec}: skipped: {row['reason']}")
        elif "baseline" not in row:
            print(f"{spec}: {row['status']}: {row['reason']}")
        else:
            print(f"{spec}: baseline {row['baseline']['x_realtime']:.2f}x, batched "
                  f"{row['batched']['x_realtime']:.2f}x real time, max|diff| {row['max_abs_diff']:.2g}"
                  + (f" [{row['weights']}]" if row["random_init"] else ""))
    print()
    print(format_table(rows))

    result = {
        "schema": SCHEMA,
        "date": started,
        "commit": commit,
        "codecfake_build_uncommitted_changes": dirty,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": args.device,
        "device_name": dev_name,
        # 1-minute load average before and after: a busy shared machine explains slow numbers.
        "load_average": {"start": load_start, "end": _loadavg()},
        "settings": {"batch_size": args.batch_size, "repeats": args.repeats, "random_init": args.random_init,
                     "tolerance": args.tolerance, "sample_rate": RATE,
                     "command": "python benchmarks/codec_throughput.py " + " ".join(
                         sys.argv[1:] if argv is None else argv)},
        "clips": {"count": len(waves), "audio_seconds": sum(lengths), "min_seconds": min(lengths),
                  "max_seconds": max(lengths), "corpora": [{"kind": k, "root": r} for k, r in corpora],
                  "ids": [i for i, _ in clips], "unreadable": problems},
        "codecs": rows,
    }
    out = write_results(result, "codec_throughput", dev_name, args.json)
    print(f"\nwrote {out}")
    return 1 if any(r["status"] in ("failed", "mismatch") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
