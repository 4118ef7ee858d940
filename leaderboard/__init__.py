"""Collect per-run JSON documents into leaderboard tables (``python -m leaderboard build``)."""

from leaderboard.build import BuildResult, NoRunsError, build
from leaderboard.collect import Collection, LoadedRun, collect_runs
from leaderboard.schema import RUN_KIND, RunRecord, RunSchemaError

__all__ = [
    "RUN_KIND",
    "BuildResult",
    "Collection",
    "LoadedRun",
    "NoRunsError",
    "RunRecord",
    "RunSchemaError",
    "build",
    "collect_runs",
]
