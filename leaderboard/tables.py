"""Runs -> Markdown tables (one set per protocol) and a long-format CSV."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from leaderboard.collect import LoadedRun
from leaderboard.schema import REQUIRED_METRICS


@dataclass(frozen=True)
class MetricView:
    key: str
    title: str
    decimals: int
    note: str


METRIC_VIEWS = (
    MetricView("eer", "EER (%)", 2, "lower is better"),
    MetricView("auc", "AUC", 4, "higher is better"),
    MetricView("min_dcf", "min DCF", 4, "ASVspoof5 normalised, π_spoof 0.05, C_miss 1, C_fa 10; lower is better"),
)

CSV_FIXED = ("run_id", "protocol", "model", "train_data", "test_data", "seed", "commit", "date", "source")


def format_mean_std(values: Sequence[float], decimals: int) -> str:
    """One value as is; several as mean ± sample std (ddof 1, as for a handful of seeds)."""
    if len(values) == 1:
        return f"{values[0]:.{decimals}f}"
    return f"{statistics.fmean(values):.{decimals}f} ± {statistics.stdev(values):.{decimals}f}"


def _seed_text(seeds: Iterable[int | None]) -> str:
    ordered = sorted(set(seeds), key=lambda s: (s is not None, s or 0))
    return ", ".join("none" if s is None else str(s) for s in ordered) or "none"


def _short_commit(commit: str) -> str:
    short = commit[:10]
    return short + "+dirty" if "dirty" in commit and "dirty" not in short else short


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _header_line(runs: Sequence[LoadedRun], protocol: str, build_date: str) -> str:
    recs = [r.record for r in runs]
    return (
        f"_Protocol {_md(protocol)} · seeds: {_seed_text(r.seed for r in recs)}"
        f" · train data: {_md(', '.join(sorted({r.train_data for r in recs})))}"
        f" · test data: {_md(', '.join(sorted({r.test_data for r in recs})))}"
        f" · commit(s): {', '.join(sorted({_short_commit(r.commit) for r in recs}))}"
        f" · {len(recs)} run(s) · built {build_date}_"
    )


def _table(runs: Sequence[LoadedRun], view: MetricView) -> list[str]:
    tests = sorted({r.record.test_data for r in runs})
    rows = sorted({(r.record.model, r.record.train_data) for r in runs})
    lines = [
        "| Model | Train data | Seeds | " + " | ".join(_md(t) for t in tests) + " |",
        "|---|---|---|" + "---:|" * len(tests),
    ]
    mixed: list[str] = []
    for model, train in rows:
        row_runs = [r.record for r in runs if (r.record.model, r.record.train_data) == (model, train)]
        row_seeds = {r.seed for r in row_runs}
        cells = []
        for test in tests:
            cell_runs = [r for r in row_runs if r.test_data == test]
            if not cell_runs:
                cells.append("–")
                continue
            text = format_mean_std([float(r.metrics[view.key]) for r in cell_runs], view.decimals)
            cell_seeds = {r.seed for r in cell_runs}
            # Name the seeds only where a cell does not cover the row's seeds,
            # so a reader never averages unlike things by accident.
            if cell_seeds != row_seeds:
                text += f" (seeds {_seed_text(cell_seeds)})"
            # A mean over different code versions is not one measurement: mark it and say which.
            if len({r.commit for r in cell_runs}) > 1:
                text += " †"
                per_run = ", ".join(f"{_short_commit(r.commit)} (seed {_seed_text([r.seed])})"
                                    for r in sorted(cell_runs, key=lambda r: (r.seed is not None, r.seed or 0)))
                mixed.append(f"{_md(model)} / {_md(train)} → {_md(test)}: {per_run}")
            cells.append(text)
        lines.append(f"| {_md(model)} | {_md(train)} | {_seed_text(row_seeds)} | " + " | ".join(cells) + " |")
    if mixed:
        lines += ["", "† pools runs of different commits (rerun them on one commit to compare like with like): "
                  + "; ".join(mixed)]
    return lines


def render_markdown(runs: Sequence[LoadedRun], build_date: str, source: str) -> str:
    protocols = sorted({r.record.protocol for r in runs})
    out = [
        "# codecfake-bench leaderboard",
        "",
        f"Built {build_date} from {len(runs)} run(s) under `{source}`. "
        "Bona fide is the positive class. EER follows the ASVspoof evaluation package (not folded). "
        "Where a cell has several seeds it shows mean ± sample standard deviation over them.",
    ]
    for protocol in protocols:
        pruns = [r for r in runs if r.record.protocol == protocol]
        out += ["", f"## Protocol: {_md(protocol)}"]
        for view in METRIC_VIEWS:
            out += ["", f"### {view.title} ({view.note})", "", _header_line(pruns, protocol, build_date), ""]
            out += _table(pruns, view)
    return "\n".join(out) + "\n"


def render_csv(runs: Sequence[LoadedRun], source_root: str | None = None) -> str:
    extra = sorted({k for r in runs for k in r.record.metrics} - set(REQUIRED_METRICS))
    # A metric named like a fixed column (say "seed") must not overwrite it.
    column_of = {k: f"metric_{k}" if k in CSV_FIXED else k for k in (*REQUIRED_METRICS, *extra)}
    columns = [*CSV_FIXED, *column_of.values()]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for run in runs:
        r = run.record
        path = run.path
        if source_root is not None:
            try:
                path = path.relative_to(source_root)
            except ValueError:
                pass
        row = {
            "run_id": r.run_id,
            "protocol": r.protocol,
            "model": r.model,
            "train_data": r.train_data,
            "test_data": r.test_data,
            "seed": "" if r.seed is None else r.seed,
            "commit": r.commit,
            "date": r.date,
            "source": path.as_posix(),
        }
        for key, column in column_of.items():
            value = r.metrics.get(key)
            row[column] = "" if value is None else value
        writer.writerow(row)
    return buf.getvalue()
