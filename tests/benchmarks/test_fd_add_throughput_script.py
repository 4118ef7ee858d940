"""benchmarks/fd_add_throughput.py end to end with tiny networks: the JSON it writes, the
ratios it prints, its help and argument errors.  Nothing here asserts a speed."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fd_add_throughput.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("fd_add_throughput", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def test_tiny_run_times_both_models_in_both_phases(script, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = script.main(["--device", "cpu", "--tiny", "--batch", "2", "--steps", "1", "--repeats", "1",
                      "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    res = json.loads(out.read_text())
    assert res["schema"] == script.SCHEMA and res["device"] == "cpu" and res["settings"]["tiny"]
    assert set(res["models"]) == {"fd-add", "aasist"}
    assert res["models"]["fd-add"]["num_samples"] == 48000 and res["models"]["aasist"]["num_samples"] == 64600
    for row in res["models"].values():
        for phase in ("train", "test"):
            assert len(row[f"{phase}_seconds"]) == 1
            assert math.isclose(row[f"{phase}_samples_per_s"], 2 / row[f"{phase}_seconds"][0], rel_tol=1e-2)
    for phase in ("train", "test"):
        ratio = res["models"]["fd-add"][f"{phase}_samples_per_s"] / res["models"]["aasist"][f"{phase}_samples_per_s"]
        assert math.isclose(res["ratio_fd_add_over_aasist"][phase], ratio, rel_tol=1e-3)
    assert res["paper_fd_add"]["train_samples_per_s"] == 233.0
    assert "FD-ADD / AASIST: train" in printed and "paper (FD-ADD, batch 32" in printed


def test_help_teaches_with_examples(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--batch 32" in text and "Table IX" in text and "--tiny" in text


def test_bad_arguments_fail_in_one_line(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--batch", "0", "--device", "cpu"])
    assert exit_info.value.code == 2 and "--batch must be >= 1" in capsys.readouterr().err
