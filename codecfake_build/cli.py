"""``python -m codecfake_build``: build a Codecfake-style dataset, or list codecs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from codecfake_build.codecs import CODECS, CodecUnavailableError, parse_codec_list
from codecfake_build.corpora import CORPORA, CorpusError
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

  python -m codecfake_build codecs           # what codecs and configs exist
  python -m codecfake_build codecs --json

Interrupted builds resume: rerun the same command with the same --out.
Unreadable, empty, silent or NaN files are skipped and listed in <out>/build_report.json.
"""


def parse_pairs(values: list[str], flag: str, need_value: bool) -> list[tuple[str, str | None]]:
    """``KIND=PATH`` arguments (``--corpus``, ``--weights``); a bare ``KIND`` is allowed unless ``need_value``."""
    out = []
    for v in values:
        if "=" in v:
            k, p = v.split("=", 1)
            out.append((k.strip(), p.strip()))
        elif need_value:
            raise ValueError(f"{flag} {v}: expected NAME=PATH")
        else:
            out.append((v.strip(), None))
    return out


def build_parser() -> argparse.ArgumentParser:
    corpora = ", ".join(CORPORA.names())
    p = argparse.ArgumentParser(
        prog="python -m codecfake_build",
        description="Re-synthesise real speech through codecs and write a Hugging Face dataset "
                    "(bona fide rows plus one spoof row per codec, 16 kHz FLAC).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codec", required=True, metavar="NAME[@CONFIG],...",
                   help="codecs to apply, e.g. 'dac' or 'soundstream-lyra@9.2kbps,mp3@32kbps'; "
                        "see 'python -m codecfake_build codecs'")
    p.add_argument("--corpus", action="append", default=[], metavar="KIND=PATH",
                   help=f"corpus to read (repeatable); KIND is one of: {corpora}. "
                        "Default: the embedded synthetic corpus")
    p.add_argument("--out", type=Path, default=Path("runs/dataset"), help="output dataset directory")
    p.add_argument("--language", help="language tag for 'folder' corpora (e.g. en, cmn, ja)")
    p.add_argument("--weights", action="append", default=[], metavar="CODEC=PATH",
                   help="local weights for a codec (file or directory); repeatable")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N for neural codecs")
    p.add_argument("--batch-size", type=int, default=8, help="utterances per codec batch (default 8)")
    p.add_argument("--limit", type=int, help="use at most N utterances per corpus (spread over speakers)")
    p.add_argument("--split-by", choices=["utterance", "speaker"], default="utterance",
                   help="utterance-level splits (Codecfake) or speaker-disjoint splits")
    p.add_argument("--ratios", default="80/10/10", help="train/validation/test ratios (default 80/10/10)")
    p.add_argument("--seed", type=int, default=0, help="split seed; the same seed gives the same bytes")
    p.add_argument("--shard-size", type=int, default=200, help="source utterances per parquet shard")
    p.add_argument("--export", action="append", default=[], choices=["codecfake"],
                   help="also write the official Codecfake layout (wav files + label/*.txt)")
    p.add_argument("--overwrite", action="store_true", help="rebuild even if --out holds a different build")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log every skipped file as it happens")
    return p


def codecs_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m codecfake_build codecs",
                                description="List the registered codecs with their configs and weights.")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    args = p.parse_args(argv)
    infos = [cls.describe() for _, cls in CODECS.items()]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    for info in infos:
        cfgs = ", ".join(f"{k}{' (default)' if k == info['default_config'] else ''}" for k in info["configs"])
        print(f"{info['name']:<18} {info['sample_rate']:>6} Hz  frame {info['frame_size']:>5}  configs: {cfgs}")
        if info["paper"]:
            print(f"{'':<18} paper: {info['paper']}")
        print(f"{'':<18} weights: {info['weights_source']}  licence: {info['licence']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["codecs"]:
        return codecs_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR,
                        format="%(levelname)s %(message)s")
    from codecfake_build.build import BuildConfig, build

    try:
        if args.batch_size < 1 or args.shard_size < 1:
            raise ValueError("--batch-size and --shard-size must be at least 1")
        cfg = BuildConfig(
            corpora=parse_pairs(args.corpus, "--corpus", need_value=False) or [("embedded", None)],
            codecs=parse_codec_list(args.codec), out=args.out, language=args.language,
            weights=dict(parse_pairs(args.weights, "--weights", need_value=True)),  # type: ignore[arg-type]
            device=args.device, batch_size=args.batch_size, limit=args.limit, split_by=args.split_by,
            ratios=parse_ratios(args.ratios), seed=args.seed, shard_size=args.shard_size,
            export=args.export, overwrite=args.overwrite, progress=not args.no_progress,
        )
        unknown = [k for k in cfg.weights if k not in {c.name for c in cfg.codecs}]
        if unknown:
            raise ValueError(f"--weights {unknown[0]}=...: that codec is not in --codec {args.codec}")
        result = build(cfg)
    except (ValueError, CorpusError, CodecUnavailableError, OutputConflictError, UnknownNameError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0
