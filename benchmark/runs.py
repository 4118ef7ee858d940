"""Evaluate a model on a source and record the result as a run JSON that the
leaderboard reads.  Shared by ``run demo`` and (later) ``run all``."""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from benchmark.data import TARGET_BONAFIDE, AudioSource, make_loader
from benchmark.embeddings import write_embeddings
from benchmark.evaluate import evaluate_files, write_keys, write_scores
from benchmark.metrics import compute_metrics
from benchmark.training import score_loader
from leaderboard.schema import RunRecord

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


def git_commit() -> str:
    """The checkout's commit (with ``+dirty`` for uncommitted changes), else 'unknown'."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def conditions_of(source: AudioSource) -> list[str]:
    """Per-row condition: ``codec@config`` for built datasets, else the protocol's system id."""
    out = []
    for i in range(len(source)):
        meta = source.meta(i)
        if "codec" in meta:
            out.append("bonafide" if meta["codec"] == "none" else f"{meta['codec']}@{meta['codec_config']}")
        else:
            out.append(str(meta.get("system", "all")))
    return out


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    by_condition: dict[str, dict[str, Any]]
    scores_path: Path
    embeddings_path: Path | None = None


def evaluate_model(model: nn.Module, source: AudioSource, out_dir: Path, *, device: str = "cpu",
                   batch_size: int = 16, amp: bool = False, progress: bool = True,
                   n_bootstrap: int = 1000, bootstrap_seed: int = 0,
                   embeddings_npz: Path | None = None, data_name: str = "") -> Evaluation:
    """Score ``source`` and write ``scores.tsv``, ``keys.tsv`` and ``metrics.json`` to ``out_dir``.
    ``by_condition`` pools all bona fide trials with each spoof condition's trials (Codecfake's
    per-codec columns).  Every metric set carries a bootstrap 95 % CI of its EER from ``n_bootstrap``
    resamples seeded with ``bootstrap_seed`` (0 resamples = no CI).  With ``embeddings_npz`` (and a
    model with ``embed``), the same pass also writes the embeddings file of ``benchmark.embeddings``
    (titled ``data_name``)."""
    loader = make_loader(source, batch_size=batch_size, train=False, num_samples=getattr(model, "num_samples", None),
                         crop=getattr(model, "crop", "tile"))
    model.to(device)
    chunks: list[np.ndarray] | None = [] if embeddings_npz is not None else None
    skipped: dict[str, str] = {}
    names, scores, targets = score_loader(model, loader, device, amp=amp, progress=progress, return_targets=True,
                                          embeddings_out=chunks, skipped_out=skipped)
    for name, problem in skipped.items():
        log.warning("%s: not scored: %s", name, problem)
    if chunks is not None:
        embeddings_npz = write_embeddings(embeddings_npz, names, np.concatenate(chunks), targets, source,
                                          model=getattr(model, "registry_name", type(model).__name__),
                                          data_name=data_name)
    index = {n: i for i, n in enumerate(source.filenames)}
    conds_all = conditions_of(source)
    conds = [conds_all[index[n]] for n in names]
    bona = targets == TARGET_BONAFIDE
    out_dir.mkdir(parents=True, exist_ok=True)
    write_scores(out_dir / "scores.tsv", names, scores)
    write_keys(out_dir / "keys.tsv", names, bona, conds)
    metrics = evaluate_files(out_dir / "scores.tsv", out_dir / "keys.tsv", out_dir / "metrics.json",
                             n_bootstrap=n_bootstrap, bootstrap_seed=bootstrap_seed)
    if skipped:  # the run JSON says how many test files were left out (logged above)
        metrics["n_skipped_files"] = len(skipped)
    by_condition = {}
    for cond in sorted(set(c for c, b in zip(conds, bona) if not b)):
        keep = bona | (np.asarray(conds) == cond)
        by_condition[cond] = compute_metrics(scores[keep], bona[keep].astype(int), n_bootstrap=n_bootstrap,
                                             seed=bootstrap_seed)
    return Evaluation(metrics, by_condition, out_dir / "scores.tsv", embeddings_npz)


def write_run(path: Path, *, model: str, train_data: str, test_data: str, protocol: str, seed: int | None,
              metrics: dict[str, Any], config: dict[str, Any], evaluation: Evaluation | None = None,
              condition: str | None = None, embeddings: Path | None = None) -> RunRecord:
    """Write one run JSON; with ``evaluation`` it records where its score and key files are
    (relative to the run file) so the leaderboard can draw DET curves, and with ``embeddings``
    the npz of ``benchmark.embeddings`` it draws the t-SNE map from."""
    artifacts: dict[str, str] = {}
    if embeddings is not None:
        artifacts["embeddings"] = os.path.relpath(Path(embeddings).resolve(), path.parent.resolve())
    if evaluation is not None:
        base = path.parent.resolve()
        for kind, f in (("scores", evaluation.scores_path), ("keys", evaluation.scores_path.with_name("keys.tsv"))):
            artifacts[kind] = os.path.relpath(f.resolve(), base)
        if condition is not None:
            artifacts["condition"] = condition
    record = RunRecord(
        run_id=path.stem, model=model, train_data=train_data, test_data=test_data, protocol=protocol, seed=seed,
        commit=git_commit(), date=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), metrics=metrics,
        config=config, artifacts=artifacts,
    )
    record.write(path)
    return record
