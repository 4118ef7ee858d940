"""Collect runs and write ``leaderboard.md`` + ``leaderboard.csv``, the papers'
table layouts (``paper/<layout>-<protocol>.{md,csv,tex,html}``) and PNG plots
(``plots/heatmap-<protocol>.png``, ``plots/det-<protocol>-<test>.png``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from leaderboard.collect import LoadedRun, collect_runs
from leaderboard.layouts import LAYOUTS
from leaderboard.paper_tables import RENDERERS, paper_table
from leaderboard.plots import det_curves, eer_heatmap, safe_name
from leaderboard.tables import render_csv, render_markdown
from codecfake_build.atomic import atomic_write_text


class NoRunsError(ValueError):
    def __init__(self, message: str, warnings: Sequence[str] = ()) -> None:
        super().__init__(message)
        #: Why files were skipped: usually the real reason nothing was found.
        self.warnings = tuple(warnings)


@dataclass(frozen=True)
class BuildResult:
    markdown_path: Path
    csv_path: Path
    n_runs: int
    n_protocols: int
    warnings: tuple[str, ...]
    paper_tables: tuple[Path, ...] = ()
    plots: tuple[Path, ...] = ()


def build(runs_dir: str | Path, out_dir: str | Path, build_date: str | None = None,
          plots: bool = True) -> BuildResult:
    """Write the leaderboard; ``build_date`` defaults to now (UTC)."""
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    collection = collect_runs(runs_dir)
    if not collection.runs:
        raise NoRunsError(
            f"{runs_dir}: no valid run JSON found ({collection.n_other} other JSON file(s), "
            f"{len(collection.warnings)} skipped). Fix: point at the folder holding files with "
            f'"kind": "codecfake-bench-run"',
            collection.warnings,
        )
    date = build_date or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, csv_path = out_dir / "leaderboard.md", out_dir / "leaderboard.csv"
    atomic_write_text(md_path, render_markdown(collection.runs, date, runs_dir.as_posix()))
    atomic_write_text(csv_path, render_csv(collection.runs, source_root=str(runs_dir)))
    protocols = sorted({r.record.protocol for r in collection.runs})
    tables = []
    for layout in LAYOUTS:
        for protocol in filter(layout.applies_to, protocols):
            table = paper_table(layout, collection.runs, protocol, date)
            if not table.rows:
                continue
            for ext, render in RENDERERS.items():
                path = out_dir / "paper" / f"{layout.name}-{safe_name(protocol)}.{ext}"
                atomic_write_text(path, render(table))
                tables.append(path)
    pngs: list[Path] = []
    warnings = list(collection.warnings)
    if plots:
        for protocol in protocols:
            pngs.append(eer_heatmap(collection.runs, protocol, out_dir / "plots" / f"heatmap-{safe_name(protocol)}.png"))
            for test in sorted({r.record.test_data for r in collection.runs if r.record.protocol == protocol}):
                det = det_curves(collection.runs, protocol, test,
                                 out_dir / "plots" / f"det-{safe_name(protocol)}-{safe_name(test)}.png")
                if det is not None:
                    pngs.append(det)
        maps, map_warnings = _embedding_maps(collection.runs, out_dir / "plots")
        pngs += maps
        warnings += map_warnings
    return BuildResult(
        markdown_path=md_path,
        csv_path=csv_path,
        n_runs=len(collection.runs),
        n_protocols=len({r.record.protocol for r in collection.runs}),
        warnings=tuple(warnings),
        paper_tables=tuple(tables),
        plots=tuple(pngs),
    )


def _embedding_maps(runs: Sequence[LoadedRun], folder: Path) -> tuple[list[Path], list[str]]:
    """t-SNE maps of the runs that recorded an embeddings npz (``run all`` does for models with
    ``embed()``), as ``plots/embeddings-<model>-<protocol>-<test>-<seed>.png``; an unreadable
    npz becomes a warning, not a failed build."""
    from leaderboard.embeddings_plot import EmbeddingsError, plot_embeddings

    out, warnings = [], []
    for run in sorted(runs, key=lambda r: str(r.path)):
        rel = run.record.artifacts.get("embeddings")
        if rel is None:
            continue
        r = run.record
        seed = "" if r.seed is None else f", seed {r.seed}"
        title = f"t-SNE of {r.model} embeddings ({r.protocol}{seed})\ntest: {r.test_data}, commit {r.commit[:10]}"
        name = safe_name(f"{r.model}-{r.protocol}-{r.test_data}-{r.seed}")
        try:
            out.append(plot_embeddings(run.path.parent / rel, folder / f"embeddings-{name}.png", title=title))
        except EmbeddingsError as exc:
            warnings.append(f"{run.path}: embeddings map skipped: {exc}")
    return out, warnings
