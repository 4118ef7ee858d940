"""Score and key TSV files -> ``metrics.json``.

Scores: header ``filename<TAB>cm-score``, one row per utterance, higher = more
bona fide.  Keys: header ``filename<TAB>cm-label`` with labels ``bonafide`` /
``spoof``.  Extra columns after the first two are allowed (and ignored) so key
files can carry condition columns (codec, attack, ...).

Every problem is an :class:`EvaluationError` whose message is one line naming
the file and the fix, because these files are hand-made often enough that the
user needs to know which one to open.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.metrics import ScoreType, compute_metrics
from codecfake_build.atomic import atomic_write_text

SCORE_HEADER = ("filename", "cm-score")
KEY_HEADER = ("filename", "cm-label")
LABELS = {"bonafide": 1, "spoof": 0}


class EvaluationError(ValueError):
    """A scores/keys file problem; the message names the file and the fix."""


def _fail(path: Path | str, problem: str, fix: str) -> EvaluationError:
    return EvaluationError(f"{path}: {problem}. Fix: {fix}")


def _read_rows(path: Path, header: tuple[str, str], kind: str) -> list[tuple[int, str, str]]:
    """(line number, filename, value) for each data row, header checked."""
    if not path.is_file():
        raise _fail(path, f"{kind} file not found", f"pass the path of an existing {kind} TSV")
    # utf-8-sig: spreadsheet exports often start with a BOM that would break the header.
    with path.open(encoding="utf-8-sig", newline="") as f:
        lines = f.read().splitlines()
    want = "\t".join(header)
    first = lines[0].split("\t")[:2] if lines else []
    if tuple(c.strip() for c in first) != header:
        got = repr(lines[0][:60]) if lines else "an empty file"
        raise _fail(path, f"bad header, expected {want!r} got {got}", f"make the first line {want!r} (tab-separated)")
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2:
            raise _fail(path, f"line {lineno} has {len(cols)} column(s): {line[:60]!r}", f"write '<filename><TAB><{header[1]}>'")
        rows.append((lineno, cols[0].strip(), cols[1].strip()))
    if not rows:
        raise _fail(path, f"no {kind} rows after the header", f"add one '<filename><TAB><{header[1]}>' row per utterance")
    _check_unique(path, [name for _, name, _ in rows])
    return rows


def _check_unique(path: Path, names: Sequence[str]) -> None:
    dupes = [n for n, c in Counter(names).items() if c > 1]
    if dupes:
        raise _fail(path, f"{len(dupes)} duplicate filename(s), first {dupes[0]!r}", "keep one row per filename")


def read_scores(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Return ``(filenames, scores)``; raise on bad header, duplicates, non-finite scores."""
    path = Path(path)
    rows = _read_rows(path, SCORE_HEADER, "scores")
    values = []
    for lineno, name, text in rows:
        try:
            v = float(text)
        except ValueError:
            raise _fail(path, f"line {lineno} ({name}): score {text!r} is not a number", "write a decimal score") from None
        if not math.isfinite(v):
            raise _fail(path, f"line {lineno} ({name}): score is {text}", "re-score; NaN/inf usually means a failed forward pass or empty audio")
        values.append(v)
    return [name for _, name, _ in rows], np.asarray(values, dtype=np.float64)


def read_keys(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Return ``(filenames, labels)`` with labels 1 = bona fide, 0 = spoof."""
    path = Path(path)
    rows = _read_rows(path, KEY_HEADER, "keys")
    labels = []
    for lineno, name, text in rows:
        if text not in LABELS:
            raise _fail(path, f"line {lineno} ({name}): unknown label {text!r}", "use exactly 'bonafide' or 'spoof'")
        labels.append(LABELS[text])
    y = np.asarray(labels, dtype=np.int64)
    present = {lab for lab, v in LABELS.items() if (y == v).any()}
    if len(present) < 2:
        raise _fail(path, f"only {present.pop()!r} trials", "EER needs both bonafide and spoof trials; use the full protocol key file")
    return [name for _, name, _ in rows], y


def _check_names(path: Path, filenames: Sequence[str], n_values: int, what: str) -> None:
    if len(filenames) != n_values:
        raise ValueError(f"{path}: {len(filenames)} filenames but {n_values} {what}")
    bad = next((n for n in filenames if not n or "\t" in n or "\n" in n or "\r" in n or n != n.strip()), None)
    if bad is not None:
        raise ValueError(f"{path}: filename {bad!r} is empty or has tabs/newlines/outer spaces, which the TSV cannot hold")
    _check_unique(path, filenames)


def write_scores(path: str | Path, filenames: Sequence[str], scores: Sequence[float] | np.ndarray) -> None:
    """Write a scores TSV atomically.  NaN/inf are written as-is so a scoring
    run keeps its output; :func:`read_scores` then reports them."""
    path = Path(path)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    _check_names(path, filenames, scores.size, "scores")
    # repr() round-trips a float64 exactly, so re-reading gives identical metrics.
    body = "".join(f"{n}\t{float(s)!r}\n" for n, s in zip(filenames, scores))
    atomic_write_text(path, "\t".join(SCORE_HEADER) + "\n" + body)


def write_keys(path: str | Path, filenames: Sequence[str], bonafide: Sequence[bool] | np.ndarray,
               conditions: Sequence[str] | None = None) -> None:
    """Write a keys TSV atomically; an optional third column names each trial's condition."""
    path = Path(path)
    flags = np.asarray(bonafide, dtype=bool).ravel()
    _check_names(path, filenames, flags.size, "labels")
    header = [*KEY_HEADER, "condition"] if conditions is not None else list(KEY_HEADER)
    rows = []
    for i, (n, b) in enumerate(zip(filenames, flags)):
        cols = [n, "bonafide" if b else "spoof"] + ([conditions[i]] if conditions is not None else [])
        rows.append("\t".join(cols) + "\n")
    atomic_write_text(path, "\t".join(header) + "\n" + "".join(rows))


def _join(scores_path: Path, names: list[str], keys_path: Path, key_names: list[str]) -> np.ndarray:
    """Index into the keys for each score row; both sides must match exactly,
    since silently dropping trials would change the EER."""
    key_index = {n: i for i, n in enumerate(key_names)}
    extra = [n for n in names if n not in key_index]
    if extra:
        raise _fail(
            scores_path,
            f"{len(extra)} filename(s) not in keys file {keys_path}, first {extra[0]!r}",
            "score the utterances listed in the keys file (same names, no extension changes)",
        )
    scored = set(names)
    missing = [n for n in key_names if n not in scored]
    if missing:
        raise _fail(
            scores_path,
            f"{len(missing)} filename(s) of keys file {keys_path} have no score, first {missing[0]!r}",
            "score every utterance in the keys file, or pass a keys file for the subset you scored",
        )
    return np.fromiter((key_index[n] for n in names), dtype=np.int64, count=len(names))


def evaluate_files(
    scores_path: str | Path,
    keys_path: str | Path,
    out_path: str | Path | None,
    score_type: ScoreType = "logit",
    n_bootstrap: int = 0,
    bootstrap_seed: int = 0,
) -> dict[str, Any]:
    """Compute metrics (see :func:`benchmark.metrics.compute_metrics`) and write
    them as JSON to ``out_path`` (atomically; skipped when None).  ``n_bootstrap`` > 0 adds
    the EER's bootstrap 95 % CI from that many resamples drawn with ``bootstrap_seed``."""
    scores_path, keys_path = Path(scores_path), Path(keys_path)
    names, scores = read_scores(scores_path)
    key_names, labels = read_keys(keys_path)
    idx = _join(scores_path, names, keys_path, key_names)
    metrics = compute_metrics(scores, labels[idx], score_type=score_type, n_bootstrap=n_bootstrap,
                              seed=bootstrap_seed)
    if out_path is not None:
        atomic_write_text(Path(out_path), json.dumps(metrics, indent=2) + "\n")
    return metrics
