"""A first-time user's audit of ``python -m leaderboard build``: no runs, broken or foreign
JSON, and runs whose seeds or commits differ must all be said plainly."""

from __future__ import annotations

import json
from pathlib import Path

from leaderboard.cli import main


def _run(path: Path, *, seed: int, commit: str, eer: float, model: str = "lcnn") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "kind": "codecfake-bench-run", "run_id": path.stem, "model": model, "train_data": "tr",
        "test_data": "te", "protocol": "p", "seed": seed, "commit": commit, "date": f"2025-01-0{seed + 1}T00:00:00Z",
        "metrics": {"eer": eer, "auc": 0.9, "min_dcf": 0.1}, "config": {}}))


def _build(runs: Path, out: Path) -> int:
    return main(["build", str(runs), "--out", str(out), "--no-plots", "--date", "2025-03-01"])


def test_no_runs_is_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "other.json").write_text('{"name": "another tool", "version": 3}')
    assert _build(tmp_path / "runs", tmp_path / "out") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no valid run JSON" in err[0] and "1 other JSON" in err[0] and "Fix:" in err[0]
    assert not (tmp_path / "out").exists()


def test_truncated_run_is_skipped_with_a_warning_and_the_rest_builds(tmp_path, capsys):
    _run(tmp_path / "runs" / "good.json", seed=0, commit="a" * 40, eer=3.0)
    text = (tmp_path / "runs" / "good.json").read_text()
    (tmp_path / "runs" / "torn.json").write_text(text[:80])
    assert _build(tmp_path / "runs", tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "torn.json: not valid JSON" in err and "skipped" in err
    assert "| lcnn | tr | 0 | 3.00 |" in (tmp_path / "out" / "leaderboard.md").read_text()


def test_different_seeds_and_commits_are_stated(tmp_path):
    _run(tmp_path / "runs" / "s0.json", seed=0, commit="1" * 40, eer=3.0)
    _run(tmp_path / "runs" / "s1.json", seed=1, commit="2" * 40, eer=5.0)
    _run(tmp_path / "runs" / "b2.json", seed=2, commit="1" * 40, eer=1.0, model="aasist")
    assert _build(tmp_path / "runs", tmp_path / "out") == 0
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "seeds: 0, 1, 2" in md and "commit(s): 1111111111, 2222222222" in md
    # The cell that averages two code versions is marked and its runs' commits named.
    assert "| lcnn | tr | 0, 1 | 4.00 ± 1.41 † |" in md
    assert "| aasist | tr | 2 | 1.00 |" in md
    assert "lcnn / tr → te: 1111111111 (seed 0), 2222222222 (seed 1)" in md


def test_a_missing_runs_folder_is_a_usage_error(tmp_path, capsys):
    assert _build(tmp_path / "nowhere", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nowhere" in err[0]
    assert not (tmp_path / "out").exists()
