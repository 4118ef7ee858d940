"""The per-run JSON document that training/evaluation writes and the
leaderboard reads.

Example::

    {"kind": "codecfake-bench-run", "run_id": "aasist-codecfake-s0",
     "model": "aasist", "train_data": "codecfake-train", "test_data": "codecfake-A3",
     "protocol": "codecfake", "seed": 0, "commit": "1a2b3c4d5e", "date": "2025-01-31T12:00:00Z",
     "metrics": {"eer": 3.1, "auc": 0.995, "min_dcf": 0.09},
     "config": {"lr": 1e-4}}

``metrics.eer`` is in PERCENT (as :func:`benchmark.metrics.compute_metrics`
returns it).  ``seed`` may be null for runs without one (e.g. an official
checkpoint).  Unknown top-level keys are ignored so newer writers do not
break older readers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Mapping

from codecfake_build.atomic import atomic_write_text

RUN_KIND = "codecfake-bench-run"
REQUIRED_METRICS = ("eer", "auc", "min_dcf")
_TEXT_FIELDS = ("run_id", "model", "train_data", "test_data", "protocol", "commit", "date")
# Ranges catch AUC or EER written on the wrong scale when the value falls
# outside; an EER fraction (e.g. 0.03) is a legal percentage and cannot be caught.
_RANGES = {"eer": (0.0, 100.0), "auc": (0.0, 1.0), "min_dcf": (0.0, math.inf)}


class RunSchemaError(ValueError):
    """A run document that claims to be a run but does not fit the schema."""


def parse_date(text: str) -> datetime:
    """ISO 8601 date or date-time; naive times are taken as UTC."""
    # Python 3.10's fromisoformat does not accept a trailing "Z".
    value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    model: str
    train_data: str
    test_data: str
    protocol: str
    seed: int | None
    commit: str
    date: str
    metrics: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    #: Files beside the run, relative to the run JSON's folder: "scores" and "keys" TSVs
    #: (for DET curves) and optionally the "condition" whose trials (plus all bona fide) it covers.
    artifacts: dict[str, str] = field(default_factory=dict)

    kind: ClassVar[str] = RUN_KIND

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """Validate a parsed JSON object; raise :class:`RunSchemaError` naming the first problem."""
        if not isinstance(data, Mapping):
            raise RunSchemaError(f"top level is {type(data).__name__}, expected an object")
        if data.get("kind") != RUN_KIND:
            raise RunSchemaError(f'"kind" is {data.get("kind")!r}, expected {RUN_KIND!r}')
        missing = [k for k in (*_TEXT_FIELDS, "seed", "metrics") if k not in data]
        if missing:
            raise RunSchemaError(f"missing field(s) {', '.join(missing)}")
        for key in _TEXT_FIELDS:
            if not isinstance(data[key], str) or not data[key].strip():
                raise RunSchemaError(f'"{key}" must be a non-empty string, got {data[key]!r}')
        try:
            parse_date(data["date"])
        except ValueError:
            raise RunSchemaError(f'"date" {data["date"]!r} is not ISO 8601 (e.g. 2025-01-31T12:00:00Z)') from None
        seed = data["seed"]
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise RunSchemaError(f'"seed" must be an integer or null, got {seed!r}')
        config = data.get("config", {})
        if not isinstance(config, Mapping):
            raise RunSchemaError(f'"config" must be an object, got {type(config).__name__}')
        metrics = data["metrics"]
        if not isinstance(metrics, Mapping):
            raise RunSchemaError(f'"metrics" must be an object, got {type(metrics).__name__}')
        _check_metrics(metrics)
        artifacts = data.get("artifacts", {})
        if not isinstance(artifacts, Mapping) or not all(isinstance(v, str) for v in artifacts.values()):
            raise RunSchemaError('"artifacts" must be an object of strings (paths relative to the run file)')
        return cls(
            run_id=data["run_id"],
            model=data["model"],
            train_data=data["train_data"],
            test_data=data["test_data"],
            protocol=data["protocol"],
            seed=seed,
            commit=data["commit"],
            date=data["date"],
            metrics=dict(metrics),
            config=dict(config),
            artifacts=dict(artifacts),
        )

    def to_json(self) -> dict[str, Any]:
        doc = {
            "kind": self.kind,
            "run_id": self.run_id,
            "model": self.model,
            "train_data": self.train_data,
            "test_data": self.test_data,
            "protocol": self.protocol,
            "seed": self.seed,
            "commit": self.commit,
            "date": self.date,
            "metrics": dict(self.metrics),
            "config": dict(self.config),
        }
        if self.artifacts:
            doc["artifacts"] = dict(self.artifacts)
        return doc

    def write(self, path: str | Path) -> None:
        """Validate and write atomically, so a crash never leaves a half run file
        for the leaderboard to trip over."""
        RunRecord.from_json(self.to_json())
        atomic_write_text(path, json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")


def _check_metrics(metrics: Mapping[str, Any]) -> None:
    for key in REQUIRED_METRICS:
        if key not in metrics:
            raise RunSchemaError(f'"metrics" lacks "{key}"')
        value = metrics[key]
        if not _is_number(value) or not math.isfinite(value):
            raise RunSchemaError(f'"metrics.{key}" must be a finite number, got {value!r}')
        lo, hi = _RANGES[key]
        if not lo <= value <= hi:
            raise RunSchemaError(f'"metrics.{key}" = {value} is outside [{lo}, {hi}] (EER is in percent, AUC in [0, 1])')
    for key, value in metrics.items():
        if not _is_scalar(value) and not _is_flat_container(value):
            raise RunSchemaError(f'"metrics.{key}" must be a number, string, null, or a flat list/object of '
                                 f'those (e.g. eer_ci95, confusion), got {type(value).__name__}')


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str) or _is_number(value)


def _is_flat_container(value: Any) -> bool:
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else None
    return items is not None and all(_is_scalar(v) for v in items)
