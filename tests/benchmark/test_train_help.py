"""``python -m benchmark train --help`` teaches: the YAML's sections with a real example file,
resume, where outputs go, AMP and torchrun/DDP, and an example command."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def help_text() -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    return " ".join(buf.getvalue().split())  # line breaks are the formatter's business


def test_help_points_to_a_real_example_config(help_text):
    named = [w.strip(".,;()") for w in help_text.split() if w.startswith("configs/") and w.strip(".,;()").endswith(".yaml")]
    assert named and all((REPO / n).is_file() for n in named), named
    for section in ("data:", "model:", "optim:", "early_stopping:", "out_dir"):
        assert section in help_text


def test_help_explains_resume_outputs_amp_and_ddp(help_text):
    assert "rerun the same command" in help_text.lower() and "--no-resume" in help_text
    assert "kill -9" in help_text
    for output in ("checkpoints/last.pt", "best.pt", "epoch_NNN.pt", "train_log.csv", "train_summary.json",
                   "config.yaml", "tensorboard/"):
        assert output in help_text
    assert "amp: bf16 or fp16" in help_text and "CUDA only" in help_text
    assert "torchrun --nproc_per_node N -m benchmark train --config" in help_text
    assert "examples: python -m benchmark train --config configs/demo_lcnn.yaml" in help_text


def test_every_key_the_help_names_exists_in_the_config():
    from benchmark.training.config import TrainConfig

    cfg = TrainConfig.from_dict({"data": {"dataset": "x"}, "model": {"name": "lcnn"}, "out_dir": "y"})
    assert {"data", "model", "optim", "early_stopping", "seed", "device", "amp", "tensorboard", "out_dir",
            "keep_epoch_checkpoints"} <= set(vars(cfg))
    assert {"dataset", "train_split", "dev_split", "codecs", "languages", "corpora"} <= set(vars(cfg.data))
    assert {"epochs", "batch_size", "lr", "weight_decay", "class_weights", "scheduler", "grad_accum", "sampling",
            "sam", "num_workers"} <= set(vars(cfg.optim))
    assert {"patience", "on"} <= set(vars(cfg.early_stopping))


@pytest.mark.parametrize("rank, printed", [("0", True), ("1", False)])
def test_only_rank_zero_prints_the_summary_under_torchrun(rank, printed, monkeypatch, capsys):
    import benchmark.training
    import benchmark.training.__main__ as module_main

    summary = {"best_epoch": 1, "best_dev_eer": 0.25, "skipped_files": 0, "out_dir": "x"}
    monkeypatch.setattr(benchmark.training, "train", lambda *a, **k: summary)
    monkeypatch.setattr(module_main, "train", lambda *a, **k: summary)
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--config", "any.yaml"]) == 0
    assert module_main.main(["any.yaml"]) == 0
    out = capsys.readouterr().out
    assert ('"best_dev_eer"' in out) is printed
    assert out.count('"best_dev_eer"') == (2 if printed else 0)
