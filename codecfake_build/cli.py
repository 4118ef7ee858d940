"""``python -m codecfake_build``: build a Codecfake-style dataset, or list codecs."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import re
import sys
from pathlib import Path

from codecfake_build.argparse_one_line import OneLineParser
from codecfake_build.cli_logging import configure_cli_logging
from codecfake_build.codecs import CODECS, CodecUnavailableError, parse_codec_list
from codecfake_build.codecs.precision import AMP_MODES
from codecfake_build.corpora import CORPORA, CorpusError
from codecfake_build.quality import QUALITY_INSTALL, QualityUnavailableError
from codecfake_build.quality_pool import QualityWorkerError, default_quality_workers
from codecfake_build.registry import UnknownNameError
from codecfake_build.splits import parse_ratios
from codecfake_build.writer import OutputConflictError

EPILOG = """\
examples:
  # offline smoke test on the embedded (synthetic espeak-ng) corpus
  python -m codecfake_build --codec mp3@32kbps,opus@16kbps --out runs/demo_ds

  # VCTK through DAC 16 kHz, speaker-disjoint splits, plus the Codecfake file layout
  python -m codecfake_build --codec dac --corpus vctk=/data/VCTK-Corpus-0.92 \\
      --split-by speaker --export codecfake --out runs/vctk_dac

  # VCTK + AISHELL-3 through Lyra v2 (weights from a local folder) and MP3
  python -m codecfake_build --codec soundstream-lyra@9.2kbps,mp3@32kbps \\
      --corpus vctk=/data/VCTK-Corpus-0.92 --corpus aishell3=/data/AISHELL-3 \\
      --weights soundstream-lyra=/models/lyra_v2 --device cuda --out runs/lyra

  # the Codecfake dataset design (Xie et al.): conditions C1-C7 in the paper's order,
  # C7 (DAC) only in test, 80/10/10 utterance splits over VCTK + AISHELL-3 speakers
  python -m codecfake_build --preset codecfake --corpus vctk=/data/VCTK-Corpus-0.92 \\
      --corpus aishell3=/data/AISHELL-3 --device cuda --export codecfake --out runs/codecfake
  # ... the same, building whichever of C1-C7 can run here (the rest is recorded)
  python -m codecfake_build --preset codecfake --skip-unavailable --corpus vctk=... --out runs/cf

  # with wide-band PESQ and STOI columns (pip install pesq==0.0.4 pystoi==0.4.1)
  python -m codecfake_build --codec mp3@32kbps --quality pesq,stoi --out runs/demo_q

  python -m codecfake_build codecs           # what codecs and configs exist
  python -m codecfake_build codecs --json

presets:
{presets}

Interrupted builds resume: rerun the same command with the same --out.
Every row has a condition column (C<k> = k-th codec, "real" = bona fide), and codec rows
carry logmel_distance and si_snr_db against their source (see the dataset card);
--quality pesq,stoi adds pesq_wb (P.862.2 wide-band, 16 kHz) and stoi columns, null where
the measure has no value on a clip (silence, < 0.25 s for PESQ, < ~0.4 s of speech for STOI).
Bad input never stops a build; each case is listed in <out>/build_report.json:
unreadable, empty, silent or NaN files are skipped; clips shorter than a codec frame are
padded for the codec and trimmed back; clipped sources are kept and flagged (clipped=True);
sources longer than --max-seconds are skipped; long clips are coded in 30 s windows.
"""


def presets_help() -> str:
    from codecfake_build.presets import PRESETS

    lines = []
    for p in PRESETS.values():
        conds = ", ".join(f"{c.label}={c.spec_text}" + (" (test only)" if c.test_only else "") for c in p.conditions)
        lines.append(f"  {p.name}: {conds}")
    return "\n".join(lines)


def parse_pairs(values: list[str], flag: str, need_value: bool) -> list[tuple[str, str | None]]:
    """``KIND=PATH`` arguments (``--corpus``, ``--weights``); a bare ``KIND`` is allowed unless ``need_value``."""
    out = []
    for v in values:
        k, sep, p = (s.strip() for s in v.partition("="))
        if not k:
            raise ValueError(f"{flag} {v}: no name before '='. Fix: use {flag} NAME=PATH")
        if sep and not p:
            # An empty path would silently mean the current directory.
            raise ValueError(f"{flag} {v}: empty PATH after '='. Fix: use {flag} {k}=PATH")
        if not sep and need_value:
            raise ValueError(f"{flag} {v}: expected NAME=PATH")
        out.append((k, p if sep else None))
    return out


def build_parser() -> argparse.ArgumentParser:
    corpora = ", ".join(CORPORA.names())
    p = OneLineParser(
        prog="python -m codecfake_build",
        description="Re-synthesise real speech through codecs and write a Hugging Face dataset "
                    "(bona fide rows plus one spoof row per codec, 16 kHz FLAC).",
        epilog=EPILOG.format(presets=presets_help()), formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--codec", metavar="NAME[@CONFIG],...",
                      help="codecs to apply, e.g. 'dac' or 'soundstream-lyra@9.2kbps,mp3@32kbps'; the k-th is "
                           "condition C<k>; see 'python -m codecfake_build codecs'")
    what.add_argument("--preset", metavar="NAME",
                      help="a paper's dataset design instead of --codec: 'codecfake' = Codecfake's C1-C7 "
                           "(SoundStream, SpeechTokenizer, FunCodec, EnCodec, AudioDec, HiFi-Codec; DAC as the "
                           "unseen test-only C7) with 80/10/10 utterance splits; pass --corpus vctk=... "
                           "--corpus aishell3=...; the checkpoints chosen are listed in the dataset card")
    p.add_argument("--skip-unavailable", action="store_true",
                   help="build the codecs that can run here and record the others in build_report.json and "
                        "the card (default: stop before any work, naming every unavailable codec and its fix)")
    p.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="skip sources longer than S seconds, with the reason in build_report.json "
                        "(default 600; 0 = no limit). Shorter long clips are coded in 30 s windows")
    p.add_argument("--quality", metavar="pesq,stoi", default=None,
                   help="also compute these per-fake measures against the source: 'pesq' (column pesq_wb, "
                        "ITU-T P.862.2 wide-band at 16 kHz) and/or 'stoi' (column stoi). Off by default; the "
                        f"columns exist only in builds that ask for them. Needs: {QUALITY_INSTALL}")
    p.add_argument("--quality-workers", type=int, default=None, metavar="N",
                   help="processes that compute each fake's quality values (logmel_distance, si_snr_db and the "
                        "--quality measures) beside the build, so the CPU measures overlap the codecs instead of "
                        f"following them. Default: min(8, cores - 1), or 0 below 3 cores: {default_quality_workers()} "
                        "here; 0 = in the build process, one fake after another. Values and dataset bytes are the same for every N, "
                        "and a resumed build may use another N. Raise it on a many-core GPU server, where PESQ and "
                        "STOI (about 17 ms of CPU per second of audio per fake) outlast the codecs; lower it when "
                        "the CPU is shared or memory is short (STOI of a 600 s clip needs about 1 GB per worker)")
    p.add_argument("--corpus", action="append", default=[], metavar="KIND=PATH",
                   help=f"corpus to read (repeatable); KIND is one of: {corpora}. "
                        "Default: the embedded synthetic corpus")
    p.add_argument("--out", type=Path, default=Path("runs/dataset"),
                   help="output dataset directory (default runs/dataset); created if missing. Rerunning the "
                        "same command there resumes; a different build there is refused unless --overwrite")
    p.add_argument("--language", help="language tag for 'folder' corpora (e.g. en, cmn, ja)")
    p.add_argument("--weights", action="append", default=[], metavar="CODEC=PATH",
                   help="local weights for a codec (file or directory); repeatable")
    p.add_argument("--device", default="auto",
                   help="auto (cuda if torch sees a GPU, else cpu; the default), cpu, cuda or cuda:N for the "
                        "neural codecs (ffmpeg codecs and Lyra run on the CPU anyway)")
    p.add_argument("--amp", choices=list(AMP_MODES), default="off",
                   help="reduced precision for the torch codecs, kept only where it is harmless: the first 4 "
                        "sources are re-synthesised in strict float32 and in the mode, and the mode is used only "
                        "if every sample stays within 1e-3. auto tries bf16, fp16, then tf32 (float32 on TF32 "
                        "tensor cores) on CUDA and falls back to strict float32 (logged); an explicit mode that "
                        "fails stops the build. The checks go to build_report.json (amp_checks). Default off: "
                        "strict float32, TF32 disabled, on every device")
    p.add_argument("--batch-size", type=int, default=8, help="utterances per codec batch (default 8)")
    p.add_argument("--limit", type=int, help="use at most N (>= 1) utterances per corpus, chosen by a hash "
                                             "of --seed so they spread over speakers (default: all)")
    p.add_argument("--split-by", choices=["utterance", "speaker"], default=None,
                   help="utterance-level splits (Codecfake; the default) or speaker-disjoint splits")
    p.add_argument("--ratios", default=None, metavar="TRAIN/VAL/TEST",
                   help="train/validation/test ratios, three non-negative numbers normalised to sum to 1 "
                        "(80/10/10 = 0.8,0.1,0.1; 1/1/1 = thirds); default 80/10/10 (a preset's own otherwise)")
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0); the same seed gives the same bytes")
    p.add_argument("--shard-size", type=int, default=200,
                   help="source utterances per parquet shard (default 200); a shard is the unit a killed "
                        "build resumes from")
    p.add_argument("--export", action="append", default=[], choices=["codecfake"],
                   help="also write the official Codecfake layout in <out>/codecfake (wav files + "
                        "label/*.txt), rewritten from the dataset on every run")
    p.add_argument("--overwrite", action="store_true", help="rebuild even if --out holds a different build")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log every skipped file as it happens")
    return p


def codecs_main(argv: list[str]) -> int:
    p = OneLineParser(prog="python -m codecfake_build codecs",
                                description="List the registered codecs with their configs and weights.")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    args = p.parse_args(argv)
    infos = [cls.describe() for _, cls in CODECS.items()]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    for info in infos:
        cfgs = ", ".join(f"{k}{' (default)' if k == info['default_config'] else ''}" for k in info["configs"])
        delays = sorted({c["delay_samples"] for c in info["configs"].values()})
        print(f"{info['name']:<18} {info['sample_rate']:>6} Hz  frame {info['frame_size']:>5}  "
              f"delay {'/'.join(map(str, delays))}  configs: {cfgs}")
        if info["paper"]:
            print(f"{'':<18} paper: {info['paper']}")
        print(f"{'':<18} weights: {info['weights_source']}  licence: {info['licence']}")
    return 0


def resolve_build_device(device: str) -> str:
    """``auto`` -> ``cuda`` where torch sees a GPU, else ``cpu`` (a GPU server should not re-synthesise a
    corpus on its CPU by default); any other value is checked by ``check_device``."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    check_device(device)
    return device


def check_device(device: str) -> None:
    """A typo or a CUDA device this machine lacks fails here, in one line, not as a torch
    traceback after the codecs have loaded."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", device):
        raise ValueError(f"--device {device}: unknown device. Fix: use cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise ValueError(f"--device {device}: torch sees {count} CUDA device(s) here. "
                             "Fix: use --device cpu, or a cuda:N below that count")


def os_error_line(err: OSError, out: Path) -> str:
    """One line for a file-system failure (unwritable --out, disk full) with what to do next."""
    where = err.filename or out
    what = err.strerror or str(err)
    if err.errno == errno.ENOSPC or err.errno == errno.EDQUOT:
        fix = "free disk space, then rerun the same command to resume (finished shards are kept)"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose a writable --out (or fix the permissions)"
    else:
        fix = "check --out and the --corpus paths; rerun the same command to resume"
    return f"{where}: {what}. Fix: {fix}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["codecs"]:
        return codecs_main(argv[1:])
    args = build_parser().parse_args(argv)
    configure_cli_logging(logging.WARNING if args.verbose else logging.ERROR)
    from codecfake_build.build import DEFAULT_MAX_SECONDS, BuildConfig, build
    from codecfake_build.presets import get_preset
    from codecfake_build.quality import parse_quality_list

    try:
        if args.batch_size < 1 or args.shard_size < 1:
            raise ValueError("--batch-size and --shard-size must be at least 1")
        if args.max_seconds is not None and not args.max_seconds >= 0:  # also refuses nan
            raise ValueError(f"--max-seconds {args.max_seconds:g}: must be a positive number of seconds "
                             "(or 0 for no limit)")
        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit {args.limit}: must be at least 1 (utterances per corpus). "
                             "Fix: leave --limit out to use every utterance")
        device = resolve_build_device(args.device)
        corpora = parse_pairs(args.corpus, "--corpus", need_value=False)
        common = dict(
            out=args.out, language=args.language,
            weights=dict(parse_pairs(args.weights, "--weights", need_value=True)),
            device=device, batch_size=args.batch_size, limit=args.limit, seed=args.seed,
            shard_size=args.shard_size, export=args.export, overwrite=args.overwrite,
            progress=not args.no_progress, skip_unavailable=args.skip_unavailable,
            max_seconds=DEFAULT_MAX_SECONDS if args.max_seconds is None else (args.max_seconds or None),
            quality=parse_quality_list(args.quality), amp=args.amp, quality_workers=args.quality_workers,
        )
        if args.split_by is not None:
            common["split_by"] = args.split_by
        if args.ratios is not None:
            common["ratios"] = parse_ratios(args.ratios)
        if args.preset:
            preset = get_preset(args.preset)
            if not corpora:
                raise ValueError(f"--preset {preset.name} needs the paper's corpora: "
                                 + " ".join(f"--corpus {k}=PATH" for k in preset.corpora))
            cfg = BuildConfig.from_preset(preset.name, corpora=corpora, **common)
        else:
            cfg = BuildConfig(corpora=corpora or [("embedded", None)], codecs=parse_codec_list(args.codec),
                              **common)
        unknown = [k for k in cfg.weights if k not in {c.name for c in cfg.codecs}]
        if unknown:
            raise ValueError(f"--weights {unknown[0]}=...: that codec is not in "
                             f"{'--preset ' + args.preset if args.preset else '--codec ' + args.codec}")
        result = build(cfg)
    except KeyboardInterrupt:
        print(f"error: interrupted; finished shards in {args.out} are kept. Fix: rerun the same command "
              "to resume", file=sys.stderr)
        return 130
    except OSError as err:
        print(f"error: {os_error_line(err, args.out)}", file=sys.stderr)
        return 2
    except (ValueError, CorpusError, CodecUnavailableError, OutputConflictError, UnknownNameError,
            QualityUnavailableError, QualityWorkerError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0
