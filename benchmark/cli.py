"""``python -m benchmark``: score, evaluate, train, list models, run experiments."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from codecfake_build.argparse_one_line import OneLineParser
from codecfake_build.cli_logging import configure_cli_logging

EPILOG = """\
examples:
  python -m benchmark run demo --out runs/demo           # the whole slice, offline, a few minutes
  python -m benchmark run demo --aasist-weights ../shared/weights/aasist/AASIST.pth \\
      --weights soundstream-lyra=../shared/weights/lyra_v2
  python -m benchmark train --config configs/demo_lcnn.yaml
  python -m benchmark score --model aasist --checkpoint AASIST.pth --out scores.tsv clips/ extra.wav
  python -m benchmark evaluate --scores scores.tsv --keys keys.tsv --out metrics.json
  python -m benchmark models --json

Scores are bona-fide logit minus spoof logit: higher means more bona fide.
EER uses bona fide as the positive class and is never folded.
"""


def _whole_number(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


_non_negative_int = _whole_number(0)
_positive_int = _whole_number(1)


DEVICE_HELP = "auto (cuda if available, else cpu; the default), cpu, cuda or cuda:N"


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m benchmark", epilog=EPILOG,
                                description="Train, score and evaluate audio-deepfake detectors.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("score", help="score audio files or folders with a detector",
                       description="Write a TSV 'filename<TAB>cm-score' (higher = more bona fide). "
                                   "AASIST-family models see the first 64,600 samples at 16 kHz, short "
                                   "clips tiled. Unusable files are skipped and listed.")
    s.add_argument("inputs", nargs="+", help="audio files and/or folders (searched recursively)")
    s.add_argument("--model", required=True, help="registered model name, see 'python -m benchmark models'")
    s.add_argument("--checkpoint", help="official state dict or our training checkpoint (.pt/.pth)")
    s.add_argument("--out", required=True, type=Path, help="output scores TSV")
    s.add_argument("--device", default="auto", help=DEVICE_HELP)
    s.add_argument("--batch-size", type=_positive_int, default=16, help="files per forward pass (default 16)")

    e = sub.add_parser("evaluate", help="EER, AUC, min DCF from score and key TSVs",
                       description="Join scores with keys ('filename<TAB>cm-label', bonafide/spoof) and "
                                   "write metrics.json: eer (percent), auc, min_dcf (ASVspoof5 costs), "
                                   "threshold, accuracy, n_bonafide, n_spoof, and eer_ci95 (the EER's "
                                   "percentile-bootstrap 95 % CI, resampling each class on its own) with "
                                   "n_bootstrap and bootstrap_seed unless --bootstrap 0.")
    # Both files need their header line; a user writing keys.tsv by hand only learns it here.
    e.add_argument("--scores", required=True, type=Path,
                   help="TSV whose first line is 'filename<TAB>cm-score' (as 'score' writes it)")
    e.add_argument("--keys", required=True, type=Path,
                   help="TSV whose first line is 'filename<TAB>cm-label', then one "
                        "'<filename><TAB>bonafide|spoof' per file")
    e.add_argument("--out", required=True, type=Path, help="metrics JSON to write")
    e.add_argument("--score-type", choices=["logit", "probability", "other"], default="logit",
                   help="how to threshold accuracy: logit (score >= 0), probability (>= 0.5), other (none)")
    e.add_argument("--bootstrap", type=_non_negative_int, default=1000, metavar="N",
                   help="bootstrap resamples for the EER's 95%% CI (default 1000, as 'run all'; 0 = no CI)")
    e.add_argument("--bootstrap-seed", type=int, default=0, metavar="SEED",
                   help="seed of the bootstrap resamples: the same seed gives the same CI (default 0)")

    t = sub.add_parser(
        "train", help="train a detector from a YAML config", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Train one detector from a YAML config, with a checkpoint after every epoch.

The YAML (a full, commented example: configs/demo_lcnn.yaml; every key is
checked, a typo is one line naming the file and the key) holds:
  data:            dataset (a folder built by python -m codecfake_build),
                   train_split, dev_split, optional codecs/languages/corpora filters
  model:           name (see python -m benchmark models) and kwargs
  optim:           epochs, batch_size, lr, weight_decay, class_weights, scheduler
                   (cosine/step), grad_accum, sampling, sam, num_workers
  early_stopping:  patience and the dev metric it watches (on: dev_eer, dev_auc, dev_loss)
  seed, device (auto/cpu/cuda), amp (false, fp16, bf16), tensorboard, out_dir

Outputs, all under out_dir:
  checkpoints/last.pt, best.pt (best dev epoch), epoch_NNN.pt (keep_epoch_checkpoints: N keeps the last N)
  train_log.csv        one row per epoch: train_loss, dev_loss, dev_eer, dev_auc, lr, seconds
  train_summary.json   best epoch and dev EER, class counts, skipped (undecodable) files
  config.yaml          the config as trained;  tensorboard/  event files (tensorboard --logdir out_dir)

Resume: rerun the same command.  Training continues after the last finished
epoch in last.pt and ends with the same weights as an uninterrupted run, also
after kill -9 (every file is written atomically).  A finished
run trains nothing more; raise optim.epochs to extend it.  --no-resume refuses
an out_dir that already holds a run (choose a new out_dir to start over).

Mixed precision: amp: bf16 or fp16 in the YAML (CUDA only; ignored on CPU).
Several GPUs (DDP, one process per GPU; gloo on CPU): launch through torchrun,
  torchrun --nproc_per_node N -m benchmark train --config CONFIG.yaml
optim.batch_size is per process (effective batch = batch_size x grad_accum x N);
rank 0 scores the dev set and writes every file.""",
        epilog="""\
examples:
  python -m benchmark train --config configs/demo_lcnn.yaml     # rerun the same line to resume
  torchrun --nproc_per_node 2 -m benchmark train --config configs/demo_lcnn.yaml
  python -m benchmark train --config my.yaml --no-resume        # fail if out_dir already holds a run""")
    t.add_argument("--config", required=True, type=Path, help="training YAML, e.g. configs/demo_lcnn.yaml")
    t.add_argument("--no-resume", action="store_true",
                   help="refuse to continue a run already in out_dir (default: rerunning resumes it)")

    m = sub.add_parser("models", help="list registered detectors and their parameter counts",
                       description="List every registered detector with its parameter count, built on the meta "
                                   "device (no memory, no weights, no network for the built-in SSL models). "
                                   "params = back-end + pretrained front-end; backend_params leaves the pretrained "
                                   "SSL front-end out. An SSL front-end is counted as the detector keeps it: the "
                                   "pretrained model cut above the highest hidden state it reads (e.g. 6 of XLS-R's "
                                   "24 layers for hidden_states[5]); when that differs from the released model, "
                                   "frontend_full_params gives the full pretrained size.")
    m.add_argument("--json", action="store_true",
                   help='print a JSON list of {"name", "params", "backend_params"[, "frontend_full_params"]}')

    r = sub.add_parser(
        "run", help="run the demo or the whole experiment matrix", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Experiments:
  demo  the whole pipeline on the embedded corpus: build a codec dataset, train
        Mel-LCNN, evaluate, leaderboard; offline, a few minutes on 2 CPU cores.
  all   every recipe x protocol x seed of configs/matrix.yaml (recipes in
        configs/recipes/, protocols in configs/protocols/).  Finished runs (same
        run id = same recipe, protocol, seed and data folders) are skipped; runs
        whose datasets are missing are listed with where to download them; a
        failed run is reported and retried (resumed) next time.  Writes one run
        JSON per test set and condition, then the leaderboard.""",
        epilog="""\
examples:
  python -m benchmark run demo --out runs/demo
  python -m benchmark run all --dry-run                       # the matrix and its cost
  python -m benchmark run all --data-root /data --only 'aasist/*19la*'
  python -m benchmark run all --data asvspoof2019-la=/data/LA --data in-the-wild=/data/release_in_the_wild""")
    r.add_argument("experiment", choices=["demo", "all"])
    r.add_argument("--out", type=Path, default=None, help="output folder (default runs/demo or runs/all)")
    r.add_argument("--dry-run", action="store_true", help="all: print the expanded matrix with status and cost; run nothing")
    r.add_argument("--only", metavar="PATTERN",
                   help="all: keep experiments whose label recipe/protocol/sSEED matches this glob or contains it "
                        "(a pattern with '/' from the start of a part: 'aasist/...' is not 'w2v2-aasist/...'), "
                        "or whose group in the matrix has this name")
    r.add_argument("--data", action="append", default=[], metavar="DATASET=PATH",
                   help="all: root folder of a dataset (repeatable); names as in benchmark.data.readers")
    r.add_argument("--data-root", type=Path, help="all: folder holding one sub-folder per dataset, named as the "
                   "dataset (e.g. /data/asvspoof2019-la); --data entries win")
    r.add_argument("--matrix", type=Path, default=None, help="all: matrix YAML (default configs/matrix.yaml)")
    r.add_argument("--bootstrap", type=_non_negative_int, default=1000, metavar="N",
                   help="all: bootstrap resamples for each EER's 95%% CI (default 1000; 0 = no CI). Finished runs "
                        "keep theirs: 'python -m benchmark evaluate' recomputes a CI from a run's scores.tsv")
    r.add_argument("--codec", help="codecs for the demo dataset (default: soundstream-lyra@9.2kbps,mp3@32kbps "
                   "when Lyra's weights are found, else mp3@32kbps,opus@16kbps)")
    r.add_argument("--weights", action="append", default=[], metavar="CODEC=PATH", help="codec weights")
    r.add_argument("--aasist-weights", type=Path, help="official AASIST.pth to evaluate beside Mel-LCNN")
    r.add_argument("--epochs", type=_positive_int, default=4, help="demo training epochs (default 4)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto", help=DEVICE_HELP)

    em = sub.add_parser("embed", help="dump a detector's embeddings of a dataset to .npz (for t-SNE plots)",
                        description="Run model.embed() over a dataset's items (cut as for scoring) and write "
                                    "embeddings, labels, conditions and filenames to an .npz; plot it with "
                                    "python -m leaderboard embeddings --npz X --out Y.png")
    em.add_argument("--model", required=True, help="registered model name with an embed() method (e.g. wavespec)")
    em.add_argument("--checkpoint", help="training checkpoint; its run's train_summary.json gives the model options")
    em.add_argument("--data", required=True, metavar="DATASET=PATH", help="dataset reader name and folder, as for run all")
    em.add_argument("--split", help="only this split of the dataset (default: all items)")
    em.add_argument("--condition-by", default="attack", help="item field that names each spoof condition")
    em.add_argument("--out", required=True, type=Path, help="output .npz")
    em.add_argument("--device", default="auto", help=DEVICE_HELP)
    em.add_argument("--batch-size", type=_positive_int, default=16, help="items per forward pass (default 16)")
    return p


def cmd_score(args) -> int:
    from benchmark.evaluate import write_scores
    from benchmark.models import create_model, load_weights
    from benchmark.scoring import collect_inputs, score_paths
    from benchmark.training import resolve_device

    model = create_model(args.model)
    if args.checkpoint:
        load_weights(model, args.checkpoint)
    else:
        print(f"warning: no --checkpoint: {args.model} has random weights", file=sys.stderr)
    names, scores, skipped = score_paths(model, collect_inputs(args.inputs), str(resolve_device(args.device)), args.batch_size)
    write_scores(args.out, names, scores)
    print(f"scored {len(names)} files into {args.out}; skipped {len(skipped)}"
          + "".join(f"\n  skipped {s['path']}: {s['reason']}" for s in skipped))
    return 0


def cmd_evaluate(args) -> int:
    from benchmark.evaluate import evaluate_files

    m = evaluate_files(args.scores, args.keys, args.out, score_type=args.score_type, n_bootstrap=args.bootstrap,
                       bootstrap_seed=args.bootstrap_seed)
    ci = (f" (95% CI {m['eer_ci95'][0]:.3f}-{m['eer_ci95'][1]:.3f}, {m['n_bootstrap']} bootstrap resamples, "
          f"seed {m['bootstrap_seed']})") if "eer_ci95" in m else ""
    print(f"EER {m['eer']:.3f}%{ci}  AUC {m['auc']:.4f}  minDCF {m['min_dcf']:.4f}  "
          f"({m['n_bonafide']} bona fide, {m['n_spoof']} spoof) -> {args.out}")
    return 0


def cmd_train(args) -> int:
    from benchmark.training import train
    from benchmark.training.loop import DistEnv

    summary = train(args.config, resume=not args.no_resume)
    if not DistEnv.from_env().main:  # under torchrun only rank 0 reports
        return 0
    print(json.dumps({k: summary[k] for k in ("best_epoch", "best_dev_eer", "skipped_files", "out_dir") if k in summary}))
    return 0


def cmd_models(args) -> int:
    import torch

    from benchmark import models
    from benchmark.frontends.ssl import architecture_only

    rows = []
    for name, cls in models.MODELS.items():
        try:
            # Shapes only: no memory, no initialisation cost, fine-tuned SSL front-ends without their weights.
            with torch.device("meta"), architecture_only():
                model = cls()
        except Exception as exc:  # e.g. an SSL front-end whose weights are not downloaded
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"note: {name}: cannot be built here ({first})", file=sys.stderr)
            rows.append({"name": name, "params": None, "backend_params": None, "error": first})
            continue
        registered = sum(p.numel() for p in model.parameters())
        frontend = model.frontend_params() if hasattr(model, "frontend_params") else 0
        backend = model.backend_params() if hasattr(model, "backend_params") else registered - frontend
        row = {"name": name, "params": backend + frontend, "backend_params": backend}
        full = model.frontend_full_params() if hasattr(model, "frontend_full_params") else frontend
        if full != frontend:
            row["frontend_full_params"] = full
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            if r["params"] is None:
                print(f"{r['name']:<16} {'?':>12}              (cannot be built here: {r['error']})")
                continue
            line = f"{r['name']:<16} {r['params']:>12,} parameters ({r['backend_params']:,} without a pretrained front-end"
            if "frontend_full_params" in r:
                line += (f"; its SSL front-end counted as kept, cut above the layer read, "
                         f"{r['frontend_full_params']:,} in full")
            print(line + ")")
    return 0


def dataset_roots(pairs: list[str], data_root: Path | None) -> dict[str, str]:
    from benchmark.data.readers import DATASETS
    from codecfake_build.cli import parse_pairs

    roots = {}
    if data_root is not None:
        if not data_root.is_dir():
            raise ValueError(f"--data-root {data_root}: not a folder. Fix: pass the folder that holds one "
                             f"sub-folder per dataset ({', '.join(DATASETS.names())})")
        roots = {name: str(data_root / name) for name in DATASETS.names() if (data_root / name).is_dir()}
        if not roots:
            found = sorted(p.name for p in data_root.iterdir() if p.is_dir())[:8]
            print(f"note: --data-root {data_root} holds no folder named as a dataset (found: "
                  f"{', '.join(found) or 'nothing'}). Fix: name or symlink each dataset's folder as one of "
                  f"{', '.join(DATASETS.names())}, or pass --data NAME=PATH", file=sys.stderr)
    for name, path in parse_pairs(pairs, "--data", need_value=True):
        DATASETS.get(name)  # unknown names fail with the list of known ones
        roots[name] = path
    return roots


def cmd_run_all(args) -> int:
    from benchmark.matrix import MATRIX_FILE, Matrix
    from benchmark.run_all import dry_run_table, run_all

    matrix = Matrix.load(args.matrix or MATRIX_FILE)
    for w in matrix.warnings:
        print(f"note: {w}", file=sys.stderr)
    roots = dataset_roots(args.data, args.data_root)
    out = args.out or Path("runs/all")
    if args.only and not matrix.experiments(roots, only=args.only):
        every = matrix.experiments(roots)
        groups = sorted({e.group for e in every})
        raise ValueError(f"--only {args.only!r} matches none of the {len(every)} experiments of "
                         f"{args.matrix or MATRIX_FILE}. Fix: match a label recipe/protocol/sSEED (e.g. "
                         f"{every[0].label if every else '-'!r}, or '{every[0].recipe.name if every else 'lcnn'}/*') "
                         f"or a group name ({', '.join(groups[:6])}{', ...' if len(groups) > 6 else ''}); "
                         "'run all --dry-run' lists them all")
    if args.dry_run:
        print(dry_run_table(matrix.experiments(roots, only=args.only), roots, out))
        return 0
    result = run_all(matrix, roots, out, only=args.only, device=args.device, n_bootstrap=args.bootstrap)
    return 1 if result.failed else 0


def cmd_run(args) -> int:
    if args.device != "auto":
        # Up front: the demo would build its dataset, and run all walk its matrix, before training
        # found out that this machine has no such device.
        from codecfake_build.cli import check_device

        check_device(args.device)
    if args.experiment == "all":
        return cmd_run_all(args)
    from benchmark.runner import DemoConfig, run_demo

    from codecfake_build.cli import parse_pairs

    args.out = args.out or Path("runs/demo")
    weights = dict(parse_pairs(args.weights, "--weights", need_value=True))
    run_demo(DemoConfig(out=args.out, codecs=args.codec, weights=weights, aasist_weights=args.aasist_weights,
                        epochs=args.epochs, seed=args.seed, device=args.device))
    return 0


def cmd_embed(args) -> int:
    from benchmark.data.readers.base import ItemSource, open_dataset
    from benchmark.embeddings import dump_embeddings, model_kwargs_for
    from benchmark.models import create_model, load_weights
    from benchmark.training import resolve_device

    ((name, root),) = dataset_roots([args.data], None).items()
    reader = open_dataset(name, root)
    items = reader.items()
    if args.split is not None:
        items = [it for it in items if it.split == args.split]
        if not items:
            raise ValueError(f"{root}: no items in split '{args.split}' of {name} (splits: "
                             f"{', '.join(reader.splits())}). Fix: pass one of those to --split")
    try:
        items[0].get(args.condition_by)
    except KeyError:
        raise ValueError(f"--condition-by {args.condition_by}: {name} items have no such field. "
                         "Fix: use attack, vocoder, vocoder_category or another item field") from None
    label = f"{name}:{args.split}" if args.split else name
    kwargs = model_kwargs_for(args.checkpoint, args.model) if args.checkpoint else {}
    model = create_model(args.model, **kwargs)
    if args.checkpoint:
        load_weights(model, args.checkpoint)
    else:
        print(f"warning: no --checkpoint: {args.model} has random weights", file=sys.stderr)
    out = dump_embeddings(model, ItemSource(items, name=label, condition_by=args.condition_by), args.out,
                          args.batch_size, resolve_device(args.device), data_name=label)
    print(f"embedded {len(items)} items of {label} into {out}")
    return 0


COMMANDS = {"embed": cmd_embed, "score": cmd_score, "evaluate": cmd_evaluate, "train": cmd_train, "models": cmd_models, "run": cmd_run}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_cli_logging(logging.WARNING)
    from benchmark.data import DataError
    from benchmark.evaluate import EvaluationError
    from benchmark.training import ConfigError, TrainingError
    from codecfake_build.audio import AudioError
    from codecfake_build.codecs import CodecUnavailableError
    from codecfake_build.corpora import CorpusError
    from codecfake_build.registry import UnknownNameError
    from codecfake_build.writer import OutputConflictError

    expected = (DataError, EvaluationError, ConfigError, TrainingError, AudioError, CodecUnavailableError,
                CorpusError, UnknownNameError, OutputConflictError, FileNotFoundError, ValueError)
    try:
        return COMMANDS[args.command](args)
    except expected as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
