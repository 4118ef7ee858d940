"""Find run documents under a directory tree.

Run directories also hold other JSON (metrics.json, configs, ...), so files
whose top level is not ``"kind": "codecfake-bench-run"`` are skipped quietly;
files that cannot be parsed, and run documents that break the schema, are
skipped with a one-line warning naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from leaderboard.schema import RUN_KIND, RunRecord, RunSchemaError, parse_date


@dataclass(frozen=True)
class LoadedRun:
    record: RunRecord
    path: Path


@dataclass
class Collection:
    runs: list[LoadedRun] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: JSON files that are not run documents (ignored).
    n_other: int = 0


def _load(path: Path) -> RunRecord | None:
    """The run in ``path``; None when the file is some other JSON document."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RunSchemaError("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise RunSchemaError(f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(data, dict) or data.get("kind") != RUN_KIND:
        return None
    return RunRecord.from_json(data)


def _identity(r: RunRecord) -> tuple[str, str, str, str, int | None]:
    return (r.protocol, r.model, r.train_data, r.test_data, r.seed)


def collect_runs(root: str | Path) -> Collection:
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory. Fix: pass the folder that holds the run JSON files")
    out = Collection()
    by_identity: dict[tuple, LoadedRun] = {}
    for path in sorted(root.rglob("*.json")):
        if not path.is_file():
            continue
        try:
            record = _load(path)
        except (RunSchemaError, OSError) as e:
            out.warnings.append(f"{path}: {e}; skipped. Fix: correct or remove the file")
            continue
        if record is None:
            out.n_other += 1
            continue
        run = LoadedRun(record, path)
        # The same seed twice would shrink the reported std and count one
        # configuration twice, so only the newest run of an identity counts.
        key = _identity(record)
        old = by_identity.get(key)
        if old is not None:
            keep, drop = (run, old) if parse_date(record.date) > parse_date(old.record.date) else (old, run)
            out.warnings.append(
                f"{drop.path}: same protocol/model/train/test/seed as {keep.path}; "
                f"kept the newer ({keep.record.date}). Fix: delete the stale run file"
            )
            by_identity[key] = keep
        else:
            by_identity[key] = run
    out.runs = sorted(by_identity.values(), key=lambda r: (_sort_key(r.record), str(r.path)))
    return out


def _sort_key(r: RunRecord) -> tuple:
    # seed None sorts first, without comparing None to int
    return (r.protocol, r.model, r.train_data, r.test_data, r.seed is not None, r.seed or 0)
