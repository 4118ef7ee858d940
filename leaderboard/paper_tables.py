"""Runs -> one table in a paper's layout, rendered as Markdown, CSV, LaTeX and HTML.

Rows are (model, training data); cells are mean ± sample std over the seeds
of that row (a single seed prints its value alone).  Every rendering carries
the same provenance line: protocol, seeds, train and test data, commit(s) and
build date, because a table copied out of context must still say what it is.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from leaderboard.collect import LoadedRun
from leaderboard.layouts import Average, Column, Layout
from leaderboard.tables import METRIC_VIEWS, _seed_text, _short_commit

_DECIMALS = {v.key: v.decimals for v in METRIC_VIEWS}
_TITLES = {"eer": "EER (%)", "auc": "AUC", "min_dcf": "min DCF"}
#: Sub-column suffixes of layouts with one column per metric.
_SHORT = {"eer": "EER", "auc": "AUC", "min_dcf": "minDCF"}


@dataclass(frozen=True)
class PaperTable:
    layout: Layout
    protocol: str
    headers: list[str]
    rows: list[list[str]]
    provenance: str

    @property
    def metric_text(self) -> str:
        if self.layout.metric_columns:
            return " and ".join(_TITLES.get(m, m) for m in self.layout.metrics) + ", one column each"
        return " / ".join(_TITLES.get(m, m) for m in self.layout.metrics)


def _cell(values: Sequence[float], decimals: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{decimals}f}"
    return f"{statistics.fmean(values):.{decimals}f} ± {statistics.stdev(values):.{decimals}f}"


def _column_runs(runs: Sequence[LoadedRun], column: Column) -> list[LoadedRun]:
    """Runs named exactly as the column; only if there are none, runs whose condition part
    matches (a pooled "C1" run must not be averaged with its own per-condition "C1:<attack>")."""
    exact = [r for r in runs if r.record.test_data in column.aliases]
    return exact or [r for r in runs if column.matches(r.record.test_data)]


def _averaged(avg: Average, columns: Sequence[Column]) -> tuple[str, ...]:
    """Headers of the columns an average covers (see ``Average``)."""
    if avg.of:
        return avg.of
    return tuple(c.header for c in columns if not avg.conditions_only or any(":" in a for a in c.aliases))


def provenance(runs: Sequence[LoadedRun], protocol: str, build_date: str) -> str:
    recs = [r.record for r in runs]
    return (f"Protocol {protocol}; seeds: {_seed_text(r.seed for r in recs)}; "
            f"train data: {', '.join(sorted({r.train_data for r in recs}))}; "
            f"test data: {', '.join(sorted({r.test_data for r in recs}))}; "
            f"commit(s): {', '.join(sorted({_short_commit(r.commit) for r in recs}))}; "
            f"{len(recs)} run(s); built {build_date}")


def paper_table(layout: Layout, runs: Sequence[LoadedRun], protocol: str, build_date: str) -> PaperTable:
    runs = [r for r in runs if r.record.protocol == protocol]
    columns = layout.columns_for(runs)
    used = [r for r in runs if any(c.matches(r.record.test_data) for c in columns)]
    covered = {a.header: _averaged(a, columns) for a in layout.averages}
    if layout.metric_columns:
        heads = [*(c.header for c in columns), *(a.header for a in layout.averages)]
        headers = ["Model", "Train data", "Seeds", *(f"{h} {_SHORT.get(m, m)}" for h in heads for m in layout.metrics)]
    else:
        headers = ["Model", "Train data", "Seeds", *(c.header for c in columns), *(a.header for a in layout.averages)]
    rows = []
    for model, train in sorted({(r.record.model, r.record.train_data) for r in used}):
        mine = [r for r in used if (r.record.model, r.record.train_data) == (model, train)]
        means: dict[str, dict[str, float]] = {}
        cells = []
        for column in columns:
            cruns = _column_runs(mine, column)
            if not cruns:
                cells += ["–"] * (len(layout.metrics) if layout.metric_columns else 1)
                continue
            parts = []
            for metric in layout.metrics:
                values = [float(r.record.metrics[metric]) for r in cruns]
                means.setdefault(column.header, {})[metric] = statistics.fmean(values)
                parts.append(_cell(values, _DECIMALS.get(metric, 3)))
            cells += parts if layout.metric_columns else [" / ".join(parts)]
        for avg in layout.averages:
            over = covered[avg.header]
            if over and all(h in means for h in over):
                parts = [f"{statistics.fmean(means[h][m] for h in over):.{_DECIMALS.get(m, 3)}f}"
                         for m in layout.metrics]
                cells += parts if layout.metric_columns else [" / ".join(parts)]
            else:
                cells += ["–"] * (len(layout.metrics) if layout.metric_columns else 1)
        rows.append([model, train, _seed_text(r.record.seed for r in mine), *cells])
    return PaperTable(layout, protocol, headers, rows, provenance(used, protocol, build_date))


def _note(table: PaperTable) -> str:
    avg = (" Averages are means of the column means, shown only when every column they cover is filled."
           if table.layout.averages else "")
    return (f"{table.metric_text}; several seeds: mean ± sample std. Bona fide is the positive class; "
            f"EER is not folded.{avg}")


def to_markdown(table: PaperTable) -> str:
    esc = lambda t: t.replace("|", "\\|")  # noqa: E731
    lines = [f"## {esc(table.layout.title)} — {esc(table.protocol)}", "",
             f"_{esc(table.provenance)}_", "", f"Layout of: {esc(table.layout.paper)}. {_note(table)}", "",
             "| " + " | ".join(esc(h) for h in table.headers) + " |",
             "|---|---|---|" + "---:|" * (len(table.headers) - 3)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def to_csv(table: PaperTable) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.headers)
    w.writerows(table.rows)
    # A trailing comment row keeps the provenance with the numbers when the file travels alone.
    w.writerow([f"# {table.provenance}"])
    return buf.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return out.replace("±", r"$\pm$").replace("–", "--")


def to_latex(table: PaperTable) -> str:
    spec = "lll" + "r" * (len(table.headers) - 3)
    lines = [r"% " + table.provenance.replace("\n", " "),
             r"\begin{table}[t]", r"\centering",
             rf"\caption{{{latex_escape(table.layout.title)} ({latex_escape(table.protocol)}). "
             rf"{latex_escape(_note(table))} {latex_escape(table.provenance)}.}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in table.headers) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_html(table: PaperTable) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>\n" for row in table.rows)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(table.layout.title)}</title>"
            "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
            "td:nth-child(n+4){text-align:right}</style></head><body>\n"
            f"<h2>{e(table.layout.title)} — {e(table.protocol)}</h2>\n<p><em>{e(table.provenance)}</em></p>\n"
            f"<p>Layout of: {e(table.layout.paper)}. {e(_note(table))}</p>\n"
            f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n</body></html>\n")


RENDERERS = {"md": to_markdown, "csv": to_csv, "tex": to_latex, "html": to_html}
