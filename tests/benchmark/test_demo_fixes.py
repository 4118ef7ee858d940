"""`python -m benchmark run demo` reruns: a refusal names the demo's own flags.  The builder's
refusal said "pass --overwrite", a flag `run demo` does not have; the trainer's names config
keys (optim.epochs) the demo user set as --epochs."""

from __future__ import annotations

import shutil

import pytest

from benchmark import runner
from benchmark.runner import DemoConfig, run_demo
from benchmark.training import TrainingError
from codecfake_build.build import BuildConfig, build
from codecfake_build.codecs import parse_codec_list
from codecfake_build.writer import OutputConflictError


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_other_codecs_in_the_same_out_name_demo_flags_not_overwrite(tmp_path):
    build(BuildConfig(corpora=[("embedded", None)], codecs=parse_codec_list("mp3@32kbps"), out=tmp_path / "dataset",
                      limit=1, ratios=(0.6, 0.2, 0.2), progress=False))
    with pytest.raises(OutputConflictError) as err:
        run_demo(DemoConfig(out=tmp_path, codecs="mp3@32kbps,opus@16kbps", progress=False))
    line = str(err.value)
    assert "--overwrite" not in line and "\n" not in line
    assert "--codec" in line and "--out" in line and str(tmp_path) in line


def test_training_refusal_says_which_demo_flag(monkeypatch, tmp_path, capsys):
    class Built:
        def summary(self) -> str:
            return "built"

    def refuse(cfg, progress=True):
        raise TrainingError("last.pt has 4 epochs done, the config asks for optim.epochs 2. Fix: set it higher")

    monkeypatch.setattr(runner, "build", lambda cfg: Built())
    monkeypatch.setattr(runner, "train", refuse)
    with pytest.raises(TrainingError) as err:
        run_demo(DemoConfig(out=tmp_path, codecs="mp3@32kbps", epochs=2, progress=False))
    assert "optim.epochs from --epochs" in str(err.value) and "4 epochs done" in str(err.value)
    assert "training Mel-LCNN for 2 epochs" in capsys.readouterr().out


def test_run_with_a_device_this_machine_lacks_fails_before_any_work(tmp_path, capsys):
    import torch

    from benchmark.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for experiment in ("demo", "all"):
        assert main(["run", experiment, "--device", "cuda", "--out", str(tmp_path / experiment)]) == 2
        err = capsys.readouterr().err
        assert "--device cuda" in err and "Fix:" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / experiment).exists()
