"""PNG plots for a leaderboard: an EER heatmap per protocol (rows = model and
training data, columns = test sets) and DET curves per test set for the runs
whose score files are recorded in ``artifacts``.

DET axes are on the normal-deviate (probit) scale, as in the NIST and ASVspoof
plots, so curves of Gaussian-like scores are near-straight lines and the EER
point lies on the diagonal.
"""

from __future__ import annotations

import csv
import functools
import re
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmark.metrics import compute_det_curve
from codecfake_build.atomic import atomic_path
from leaderboard.collect import LoadedRun


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless servers have no display
    import matplotlib.pyplot as plt

    return plt


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def eer_heatmap(runs: Sequence[LoadedRun], protocol: str, path: Path) -> Path:
    """EER (%) per (model, train data) x test set; mean over seeds; blank where not run."""
    plt = _pyplot()
    runs = [r for r in runs if r.record.protocol == protocol]
    rows = sorted({(r.record.model, r.record.train_data) for r in runs})
    cols = sorted({r.record.test_data for r in runs})
    grid = np.full((len(rows), len(cols)), np.nan)
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            vals = [float(r.record.metrics["eer"]) for r in runs
                    if (r.record.model, r.record.train_data) == row and r.record.test_data == col]
            if vals:
                grid[i, j] = statistics.fmean(vals)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(cols), 1.0 + 0.45 * len(rows)))
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis_r", vmin=0.0, vmax=max(50.0, np.nanmax(grid)),
                   aspect="auto")
    ax.set_xticks(range(len(cols)), [c.rsplit(":", 1)[-1] for c in cols], rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), [f"{m} ({t})" for m, t in rows])
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center",
                        color="white" if grid[i, j] > 25 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, label="EER (%)")
    ax.set_title(f"EER (%) per condition: {protocol}")
    return _save(fig, path)


def _read_tsv(path: Path) -> list[list[str]]:
    # Every per-condition run of a test set points at the same score and key files.
    return _read_tsv_cached(str(path.resolve()), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_tsv_cached(path: str, mtime_ns: int) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    return rows[1:]


def det_points(run: LoadedRun) -> tuple[np.ndarray, np.ndarray] | None:
    """(false acceptance rate, false rejection rate) of the run's recorded scores, or None."""
    art = run.record.artifacts
    if "scores" not in art or "keys" not in art:
        return None
    base = run.path.parent
    scores = {r[0]: float(r[1]) for r in _read_tsv(base / art["scores"])}
    condition = art.get("condition")
    bona, spoof = [], []
    for row in _read_tsv(base / art["keys"]):
        if row[0] not in scores:
            continue
        if row[1] == "bonafide":
            bona.append(scores[row[0]])
        elif condition is None or (len(row) > 2 and row[2] == condition):
            spoof.append(scores[row[0]])
    if not bona or not spoof:
        return None
    det = compute_det_curve(bona, spoof)
    return det.far, det.frr


def det_curves(runs: Sequence[LoadedRun], protocol: str, test_data: str, path: Path) -> Path | None:
    """DET curves of every run of ``protocol`` on ``test_data`` that recorded its scores."""
    from scipy.stats import norm

    plt = _pyplot()
    curves = []
    for run in sorted((r for r in runs if r.record.protocol == protocol and r.record.test_data == test_data),
                      key=lambda r: (r.record.model, r.record.train_data, r.record.seed or 0)):
        pts = det_points(run)
        if pts is not None:
            curves.append((run, pts))
    if not curves:
        return None
    eps = 1e-4  # probit of 0 or 1 is infinite; clip to the plot's range
    fig, ax = plt.subplots(figsize=(5, 5))
    for run, (far, frr) in curves:
        r = run.record
        seed = "" if r.seed is None else f", seed {r.seed}"
        ax.plot(norm.ppf(np.clip(far, eps, 1 - eps)), norm.ppf(np.clip(frr, eps, 1 - eps)),
                label=f"{r.model} ({r.train_data}{seed}): EER {float(r.metrics['eer']):.2f}%")
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95])
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    lim = norm.ppf([eps, 1 - eps])
    ax.plot(lim, lim, color="grey", lw=0.5, ls="--")
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.set_xlabel("False acceptance rate, spoof accepted (%)")
    ax.set_ylabel("False rejection rate, bona fide rejected (%)")
    ax.set_title(f"DET: {protocol} / {test_data}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(True, lw=0.3)
    return _save(fig, path)
