"""``python -m leaderboard build RUNS_DIR --out DIR``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leaderboard.build import NoRunsError, build
from leaderboard.schema import RUN_KIND

DESCRIPTION = f"""\
Build leaderboard tables from per-run JSON files.

`build` searches RUNS_DIR recursively for *.json files whose top level has
"kind": "{RUN_KIND}" (other JSON files are ignored) and writes
  leaderboard.md   per protocol: EER (%), AUC and min DCF tables;
                   rows = model + train data, columns = test data;
                   several seeds -> mean ± sample std, seeds listed
  leaderboard.csv  long format, one row per run, every metric a column
  paper/*.{{md,csv,tex,html}}
                   the papers' layouts where a protocol fits one:
                   Codecfake (19LA, ITW, C1-C7, CAVG, AVG; EER),
                   FD-ADD (AUC / EER per synthesizer, Average),
                   ASVspoof 2021 DF (EER per vocoder category, pooled)
  plots/heatmap-<protocol>.png      EER per model x test set
  plots/det-<protocol>-<test>.png   DET curves of runs that recorded
                   their score files ("artifacts": {{"scores", "keys"}})
Every table states its seeds, data, commit(s) and build date.
Broken or invalid run files are skipped with a one-line warning naming them.

A run file looks like (eer in PERCENT, seed may be null):
  {{"kind": "{RUN_KIND}", "run_id": "aasist-s0", "model": "aasist",
   "train_data": "codecfake-train", "test_data": "codecfake-A3",
   "protocol": "codecfake", "seed": 0, "commit": "1a2b3c4d5e",
   "date": "2025-01-31T12:00:00Z",
   "metrics": {{"eer": 3.1, "auc": 0.995, "min_dcf": 0.09}}, "config": {{}},
   "artifacts": {{"scores": "eval/scores.tsv", "keys": "eval/keys.tsv"}}}}
test_data names "<dataset>:<condition>" (e.g. codecfake:C3) place a run in a
paper column; see leaderboard/layouts.py.
From Python, leaderboard.schema.RunRecord(...).write(path) validates and
writes one.
"""

EPILOG = """\
example:
  python -m leaderboard build runs/ --out out/leaderboard
  # -> out/leaderboard/leaderboard.md and out/leaderboard/leaderboard.csv
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m leaderboard",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser(
        "build",
        help="collect run JSONs into leaderboard.md and leaderboard.csv",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("runs_dir", metavar="RUNS_DIR", help="folder searched recursively for run JSON files")
    b.add_argument("--out", required=True, metavar="DIR", help="folder for leaderboard.md and leaderboard.csv (created)")
    b.add_argument("--no-plots", action="store_true", help="skip the PNG plots (tables only)")
    b.add_argument("--date", default=None, help="build date to print in the tables (default: now, UTC); fix it for reproducible output")
    e = sub.add_parser("embeddings", help="t-SNE/UMAP PNG of an embeddings .npz (python -m benchmark embed)",
                       description="2-D map of a detector's embeddings: bona fide and each attack coloured.")
    e.add_argument("--npz", required=True, help="embeddings file written by python -m benchmark embed")
    e.add_argument("--out", required=True, help="PNG to write")
    e.add_argument("--method", choices=["tsne", "umap"], default="tsne", help="umap needs umap-learn installed")
    e.add_argument("--max-per-class", type=int, default=500, help="at most N points per class (0 = all)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--perplexity", type=float, default=30.0)
    e.add_argument("--title", default=None)
    return parser


def cmd_embeddings(args) -> int:
    from leaderboard.embeddings_plot import EmbeddingsError, plot_embeddings

    try:
        path = plot_embeddings(args.npz, args.out, max_per_class=args.max_per_class or None, seed=args.seed,
                               method=args.method, perplexity=args.perplexity, title=args.title)
    except EmbeddingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "embeddings":
        return cmd_embeddings(args)
    try:
        result = build(args.runs_dir, args.out, build_date=args.date, plots=not args.no_plots)
    except NoRunsError as e:
        for warning in e.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"error: {e}", file=sys.stderr)
        return 1
    except NotADirectoryError as e:  # a bad argument, as in the other CLIs (no runs found stays 1)
        print(f"error: {e}", file=sys.stderr)
        return 2
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{result.n_runs} run(s), {result.n_protocols} protocol(s)")
    print(f"wrote {result.markdown_path}")
    print(f"wrote {result.csv_path}")
    print(f"wrote {len(result.paper_tables)} paper-layout table file(s) and {len(result.plots)} plot(s) under {args.out}")
    return 0
