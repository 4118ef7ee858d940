"""A first-time user's audit of ``python -m benchmark``: bad configs and bad data end in one
line naming the file and the fix, and one bad file never ends a training run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from benchmark.cli import main
from tests.benchmark.test_data import write_built_dataset
from tests.benchmark.test_training import TINY  # registers the tiny model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _wav(x: np.ndarray, sr: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def _spoil(root: Path, split: str, payloads: list[bytes]) -> None:
    """Replace the audio of the first spoof rows of ``split`` by ``payloads``."""
    path = root / "data" / f"{split}-00000-of-00001.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    for i, data in enumerate(payloads):
        rows[2 * i + 1]["audio"] = {"bytes": data, "path": None}
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)


def _config(tmp_path: Path, dataset: Path, **over) -> Path:
    raw = {"data": {"dataset": str(dataset), "cache_dir": str(tmp_path / "hf")},
           "model": {"name": TINY, "kwargs": {}},
           "optim": {"epochs": 2, "batch_size": 4, "lr": 3e-3, "num_workers": 0},
           "seed": 0, "device": "cpu", "tensorboard": False, "out_dir": str(tmp_path / "out")}
    for key, value in over.items():
        section, _, leaf = key.partition(".")
        if leaf:
            raw[section][leaf] = value
        else:
            raw[key] = value
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_training_skips_and_counts_undecodable_files(tmp_path, capsys):
    data = write_built_dataset(tmp_path / "ds", {"train": 24, "validation": 12})
    tone = (0.3 * np.sin(np.arange(4000) / 10)).astype(np.float32)
    _spoil(data, "train", [b"not audio", b"", _wav(np.full(800, np.nan, np.float32), 16000, "FLOAT"),
                           _wav(np.stack([tone, tone], 1), 16000), _wav(tone[:2000], 8000)])
    _spoil(data, "validation", [b"garbage"])
    assert main(["train", "--config", str(_config(tmp_path, data))]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    # corrupt, empty and NaN rows are skipped; stereo is down-mixed and 8 kHz resampled, not skipped
    assert printed["skipped_files"] == summary["skipped_files"] == 4
    reasons = " | ".join(summary["skipped_examples"].values())
    assert "NaN" in reasons and "cannot decode" in reasons
    assert summary["epochs_completed"] == 2


def test_unknown_model_option_is_one_line_naming_the_file(tmp_path, capsys):
    config = _config(tmp_path, tmp_path / "nowhere", **{"model": {"name": TINY, "kwargs": {"chanels": 4}}})
    assert main(["train", "--config", str(config)]) == 2
    line = _one_line_error(capsys)
    assert str(config) in line and "model.kwargs.chanels" in line and "channels" in line


def test_unknown_model_name_names_the_file_and_suggests(tmp_path, capsys):
    config = _config(tmp_path, tmp_path / "nowhere", **{"model": {"name": "lcn", "kwargs": {}}})
    assert main(["train", "--config", str(config)]) == 2
    line = _one_line_error(capsys)
    assert str(config) in line and "model.name" in line and "Did you mean 'lcnn'" in line


def test_cuda_on_a_cpu_machine_names_the_key(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = write_built_dataset(tmp_path / "ds", {"train": 8, "validation": 4})
    config = _config(tmp_path, data, device="cuda")
    assert main(["train", "--config", str(config)]) == 2
    line = _one_line_error(capsys)
    assert str(config) in line and "'device'" in line and "CUDA is not available" in line


def test_run_all_only_matching_nothing_is_an_error(capsys):
    assert main(["run", "all", "--dry-run", "--only", "no-such-thing-xyz"]) == 2
    line = _one_line_error(capsys)
    assert "no-such-thing-xyz" in line and "matches none" in line and "--dry-run" in line


def test_run_all_data_root_that_does_not_exist_is_an_error(tmp_path, capsys):
    assert main(["run", "all", "--dry-run", "--data-root", str(tmp_path / "nope")]) == 2
    line = _one_line_error(capsys)
    assert "--data-root" in line and "not a folder" in line


def test_run_all_data_root_without_dataset_folders_says_so(tmp_path, capsys):
    (tmp_path / "LA").mkdir()
    assert main(["run", "all", "--dry-run", "--data-root", str(tmp_path), "--only", "lcnn/inner-dataset_19la/s0"]) == 0
    err = capsys.readouterr().err
    assert "holds no folder named as a dataset" in err and "LA" in err and "asvspoof2019-la" in err


def test_evaluation_leaves_out_and_counts_undecodable_test_files(tmp_path):
    from benchmark.data import BuiltDataset
    from benchmark.models import create_model
    from benchmark.runs import evaluate_model

    data = write_built_dataset(tmp_path / "ds", {"test": 12})
    _spoil(data, "test", [b"garbage", b""])
    source = BuiltDataset(data, "test", cache_dir=tmp_path / "hf")
    ev = evaluate_model(create_model(TINY), source, tmp_path / "eval", progress=False, n_bootstrap=0)
    assert ev.metrics["n_skipped_files"] == 2
    assert ev.metrics["n_bonafide"] + ev.metrics["n_spoof"] == 10


def test_bad_flag_values_are_one_line_naming_the_fix():
    import subprocess
    import sys

    for args, expected in ((["score", "--model", "lcnn", "--out", "x.tsv", "--batch-size", "0", "."],
                            "argument --batch-size: expected a whole number >= 1, got '0'"),
                           (["run", "demo", "--epochs", "x"], "argument --epochs: expected a whole number >= 1")):
        res = subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
        assert expected in res.stderr and "Fix: see python -m benchmark" in res.stderr
