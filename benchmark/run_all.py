"""``python -m benchmark run all``: train and evaluate every experiment of the
matrix (``benchmark.matrix``), skipping finished ones, and rebuild the leaderboard.

Layout under ``--out`` (default ``runs/all``)::

    <run_id>/train/...            trainer output (checkpoints, logs, TensorBoard)
    <run_id>/eval/<test>/...      scores.tsv, keys.tsv, metrics.json per test set
    <run_id>/runs/*.json          one run JSON per test set and per condition
    <run_id>/done.json            written last; its presence means "finished"
    leaderboard/                  tables and plots over every finished run

A missing dataset does not stop the matrix: its experiments are listed with
where to get the data, and the others run.  An experiment that fails is
logged, counted and left unfinished, so the next invocation retries it (the
trainer resumes from its last epoch).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from benchmark.cost import DataSizes
from benchmark.matrix import Experiment, Matrix
from benchmark.protocols import missing_datasets, resolve
from codecfake_build.atomic import atomic_write_text, remove_killed_writes

log = logging.getLogger(__name__)


@dataclass
class RunAllResult:
    planned: int = 0
    finished: list[str] = field(default_factory=list)
    skipped_done: list[str] = field(default_factory=list)
    missing_data: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{self.planned} experiment(s): {len(self.finished)} run now, {len(self.skipped_done)} already "
                f"finished, {len(self.missing_data)} waiting for data, {len(self.failed)} failed")


def _data_sizes(exp: Experiment, roots: Mapping[str, Any]) -> DataSizes:
    """Counted from the data when present, else from official release sizes cut by the
    protocol's split rule (``benchmark.cost.protocol_sizes``), else unknown."""
    from benchmark.cost import protocol_sizes

    return protocol_sizes(exp.protocol, roots, seed=exp.seed)


def _fmt(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def dry_run_table(experiments: list[Experiment], roots: Mapping[str, Any], out: Path) -> str:
    """The matrix as a Markdown table with each run's data sizes and estimated hours (see
    ``benchmark.cost`` for where the rates come from), then the totals."""
    from benchmark.cost import epoch_utterances, estimate, load_measurements, recipe_rates

    measured = load_measurements()
    # Recipes share protocols: list each (protocol, seed)'s data once, not once per recipe.
    sizes: dict[tuple[str, int], DataSizes] = {}
    lines = ["| # | recipe | protocol | seed | status | train utts | utt-epochs | eval utts | sizes | est. h | rate source "
             "| run id |",
             "|---:|---|---|---:|---|---:|---:|---:|---|---:|---|---|"]
    total_h, total_ue, estimated, unknown, partial = 0.0, 0, 0, 0, 0
    for i, exp in enumerate(experiments, 1):
        missing = missing_datasets(exp.protocol, roots)
        status = "done" if (out / exp.run_id / "done.json").is_file() else (
            "needs " + ", ".join(m.split(":")[0] for m in missing) if missing else "ready")
        key = (exp.protocol.name, exp.seed)
        if key not in sizes:
            sizes[key] = _data_sizes(exp, roots)
        n = sizes[key]
        rates = recipe_rates(exp.recipe.name, exp.recipe.cost, measured)
        # An epoch's utterances follow the recipe's sampling (oversampling grows it; grad_accum never does).
        per_epoch, at_least = epoch_utterances(n, exp.recipe.train.get("optim") or {})
        cost = estimate(rates, epochs=exp.recipe.epochs, train_items=per_epoch, dev_items=n.dev, eval_items=n.test)
        if at_least and cost.seconds is not None:
            cost = dataclasses.replace(cost, partial=True)
        ue = None if per_epoch is None else per_epoch * exp.recipe.epochs
        if status != "done":
            if ue is not None:
                total_ue += ue
            if cost.seconds is None:
                unknown += 1
            else:
                total_h += cost.hours or 0.0
                estimated += 1
                partial += cost.partial
        lines.append(f"| {i} | {exp.recipe.name} | {exp.protocol.name} | {exp.seed} | {status} | {_fmt(n.train)} | "
                     f"{_fmt(ue)} | {_fmt(n.test)} | {n.source or '?'} | {cost.format()} | {rates.source} | {exp.run_id} |")
    lines.append("")
    lines.append(f"{len(experiments)} experiment(s). Cost of the unfinished ones:")
    lines.append(f"- {total_ue:,} utterance-epochs (max epochs x utterances per epoch where the training size is "
                 "known: every training item once, twice the larger class under sampling: oversample; early "
                 "stopping usually ends sooner)")
    lines.append(f"- {'>=' if partial else ''}{total_h:.1f} hours for the {estimated} with an estimate (training "
                 f"at max epochs, dev scoring every epoch, each test set once); {partial} of them lack a dev/test "
                 "size or scoring rate, or (oversampled) the training set's bona-fide count ('>=')")
    lines.append(f"- {unknown} of unknown cost ('?': training size or training rate unknown)")
    lines.append("Sizes: 'disk' = counted in the data on disk; 'release' = the datasets' official release sizes "
                 "(benchmark/release_sizes.py, sources cited there) cut by the protocol's split rule; "
                 "'disk+release' = some datasets each way; '?' = neither (e.g. ASVspoof 2021 DF per subset, "
                 "a count no release publishes). Data on disk always wins.")
    if measured is not None:
        lines.append(f"Rates: {measured.path} ({measured.label}); recipes it lacks use their cost: entry")
    else:
        lines.append("Rates: no train_throughput measurement for this device (run benchmarks/train_throughput.py, "
                     "or set CODECFAKE_COST_FILE=path); recipes' cost: entries where set")
    return "\n".join(lines)


def run_experiment(exp: Experiment, roots: Mapping[str, Any], out: Path, *, device: str = "auto",
                   progress: bool = True, n_bootstrap: int = 1000) -> list[Path]:
    """Train, evaluate every test set (and each condition), write run JSONs and ``done.json``."""
    from benchmark.models import create_model, load_weights
    from benchmark.runs import evaluate_model, write_run
    from benchmark.training import resolve_device, train

    base = out / exp.run_id
    remove_killed_writes(base, recursive=True)
    resolved = resolve(exp.protocol, roots, seed=exp.seed)
    cfg = exp.recipe.train_config(base / "train", seed=exp.seed, data_label=f"protocol:{exp.protocol.name}")
    if device != "auto":
        cfg.device = device  # type: ignore[assignment]
    summary = train(cfg, sources=(resolved.train_source(), resolved.dev_source()), progress=progress)
    # summary["model_kwargs"]: the kwargs trained, with anything the trainer filled in (FD-ADD's systems).
    model = load_weights(create_model(cfg.model.name, **summary["model_kwargs"]), Path(summary["checkpoints"]["best"]))
    dev = str(resolve_device(cfg.device))
    train_data = f"{exp.protocol.name}:train"
    config = {"recipe": exp.recipe.name, "recipe_train": exp.recipe.train, "protocol": exp.protocol.to_dict(),
              "run_id": exp.run_id, "best_epoch": summary["best_epoch"], "data": resolved.summary()}
    written = []
    for test in resolved.tests:
        eval_dir = base / "eval" / test.name.replace(":", "_")
        source = test.source()
        # Models with an embedding space get a t-SNE map, from the scoring pass itself.
        wants_map = callable(getattr(model, "embed", None))
        ev = evaluate_model(model, source, eval_dir, device=dev, progress=progress, n_bootstrap=n_bootstrap,
                            embeddings_npz=eval_dir / "embeddings.npz" if wants_map else None, data_name=test.name)
        embeddings = ev.embeddings_path
        common = dict(model=exp.recipe.name, train_data=train_data, protocol=exp.protocol.name, seed=exp.seed,
                      config=config, evaluation=ev)
        path = base / "runs" / f"{test.name.replace(':', '_')}.json"
        write_run(path, test_data=test.name, metrics=ev.metrics, embeddings=embeddings, **common)
        written.append(path)
        for cond, metrics in ev.by_condition.items():
            cpath = base / "runs" / f"{test.name.replace(':', '_')}__{cond.replace('/', '_')}.json"
            write_run(cpath, test_data=f"{test.name}:{cond}", metrics=metrics, condition=cond, **common)
            written.append(cpath)
    atomic_write_text(base / "done.json", json.dumps(
        {"run_id": exp.run_id, "label": exp.label, "runs": [str(p.relative_to(base)) for p in written]}, indent=2) + "\n")
    return written


def run_all(matrix: Matrix, roots: Mapping[str, Any], out: Path, *, only: str | None = None, device: str = "auto",
            progress: bool = True, say: Callable[[str], None] = print,
            runner: Callable[..., list[Path]] = run_experiment, n_bootstrap: int = 1000) -> RunAllResult:
    """Run every experiment of ``matrix`` not finished in ``out``; ``n_bootstrap`` resamples give
    each EER its 95 % CI (0 = none; finished runs keep the CI they were written with)."""
    experiments = matrix.experiments(roots, only=only)
    result = RunAllResult(planned=len(experiments))
    for i, exp in enumerate(experiments, 1):
        head = f"[{i}/{len(experiments)}] {exp.label}"
        if (out / exp.run_id / "done.json").is_file():
            result.skipped_done.append(exp.run_id)
            say(f"{head}: finished before, skipped ({exp.run_id})")
            continue
        missing = missing_datasets(exp.protocol, roots)
        if missing:
            result.missing_data[exp.run_id] = missing
            say(f"{head}: skipped, missing data:")
            for line in missing:
                say(f"    {line}")
            continue
        say(f"{head}: running ({exp.run_id})")
        t0 = time.time()
        try:
            runner(exp, roots, out, device=device, progress=progress, n_bootstrap=n_bootstrap)
        except Exception as exc:  # one broken experiment must not end the matrix
            result.failed[exp.run_id] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.debug("experiment %s failed:\n%s", exp.run_id, traceback.format_exc())
            say(f"{head}: FAILED ({result.failed[exp.run_id]}); rerun to retry, it resumes")
            continue
        result.finished.append(exp.run_id)
        say(f"{head}: done in {time.time() - t0:.0f}s")
    if any((out / e.run_id / "done.json").is_file() for e in experiments):
        from leaderboard.build import build as build_leaderboard

        remove_killed_writes(out / "leaderboard", recursive=True)
        board = build_leaderboard(out, out / "leaderboard")
        say(f"leaderboard: {board.markdown_path} ({board.n_runs} run(s))")
    say(result.summary())
    return result
