"""benchmarks/wavespec_throughput.py end to end on a tiny random SSL model and tiny back-end:
the JSON it writes, the ratio, and argument errors.  Nothing here asserts a speed."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "wavespec_throughput.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("wavespec_throughput", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def test_tiny_run_writes_both_models_and_their_ratio(script, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = script.main(["--device", "cpu", "--backend", "tiny", "--num-samples", "8000", "--batch", "2",
                      "--steps", "1", "--repeats", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    res = json.loads(out.read_text())
    assert res["schema"] == script.SCHEMA and res["device"] == "cpu" and res["device_name"]
    assert res["settings"]["ssl"] == "tiny" and res["settings"]["backend"] == "tiny"
    assert set(res["models"]) == {"wavespec", "w2v2-aasist"}
    for row in res["models"].values():
        assert len(row["seconds"]) == 1 and row["trainable_params"] > 0
        assert math.isclose(row["train_samples_per_s"], 2 / row["best_seconds"], rel_tol=1e-3)
    ratio = res["models"]["wavespec"]["train_samples_per_s"] / res["models"]["w2v2-aasist"]["train_samples_per_s"]
    assert math.isclose(res["ratio_wavespec_over_w2v2_aasist"], ratio, rel_tol=1e-3)
    assert "WaveSpec / W2V2-AASIST" in printed


def test_missing_ssl_weights_is_a_one_line_error(script, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = script.main(["--device", "cpu", "--ssl", str(tmp_path / "nowhere"), "--json", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Fix:" in err
    assert not out.exists()


def test_help_has_examples(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--ssl" in text and "xlsr-random" in text
