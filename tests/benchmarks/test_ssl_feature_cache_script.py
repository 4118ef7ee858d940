"""benchmarks/ssl_feature_cache.py writes its result where --json says, so a smoke run never
overwrites the committed benchmarks/results file (it had no --json and always did).  The
smallest run: one XLS-R-shaped layer, one clip.  No speed is asserted."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ssl_feature_cache.py"
RESULTS = SCRIPT.parent / "results"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("ssl_feature_cache", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def _results_state() -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in RESULTS.glob("ssl_feature_cache-*.json")}


def test_json_flag_writes_there_and_leaves_committed_results_alone(script, tmp_path, capsys):
    before = _results_state()
    out = tmp_path / "cache.json"
    assert script.main(["--items", "1", "--batch", "1", "--layer", "0", "--device", "cpu",
                        "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["benchmark"] == "ssl_feature_cache" and res["items"] == 1 and res["layer"] == 0
    assert res["epoch1_compute_and_write_s"] > 0 and res["epoch2_read_s"] > 0
    for key in ("date", "commit", "torch", "load_avg_1min", "device"):
        assert key in res
    assert f"wrote {out}" in printed
    assert _results_state() == before


def test_help_documents_every_option(script, capsys):
    with pytest.raises(SystemExit):
        script.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--items", "--batch", "--layer", "--device", "--json"):
        assert flag in text
    assert "default 16" in text and "ssl_feature_cache-<device>.json" in text
