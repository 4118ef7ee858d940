"""``python -m benchmark models``: parameter counts of every registered detector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

import benchmark.models
from benchmark.cli import main
from benchmark.models.base import Detector
from codecfake_build.registry import Registry

REPO = Path(__file__).resolve().parents[2]
# The original papers' counts (RawNet2: the official ASVspoof 2021 class; ResNet18: torchvision's
# resnet18 with a 1-channel stem and 2 outputs, see test_resnet.py).
ORIGINAL_COUNTS = {"aasist": 297_866, "aasist-l": 85_306, "rawgat-st": 440_810, "rawnet2": 17_621_410,
                   "resnet18-spec": 11_171_266, "lcnn": 972_514}


def test_models_json_from_the_command_line():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # SSL models without cached weights fail fast, not retry
    res = subprocess.run([sys.executable, "-m", "benchmark", "models", "--json"], cwd=REPO, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert isinstance(rows, list) and all({"name", "params", "backend_params"} <= r.keys() for r in rows)
    by_name = {r["name"]: r for r in rows}
    for name, count in ORIGINAL_COUNTS.items():
        assert by_name[name]["params"] == by_name[name]["backend_params"] == count, name


class _Plain(Detector):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)  # 8 parameters


class _FrozenSSL(Detector):
    """A pretrained front-end kept out of parameters(), as frozen SSL front-ends are."""

    def __init__(self):
        super().__init__()
        self._frozen = [nn.Linear(10, 10)]  # 110 parameters, not registered
        self.head = nn.Linear(10, 2)  # 22 parameters

    def frontend_params(self):
        return sum(p.numel() for p in self._frozen[0].parameters())

    def backend_params(self):
        return sum(p.numel() for p in self.parameters())


class _FineTunedSSL(Detector):
    def __init__(self):
        super().__init__()
        self.frontend = nn.Linear(10, 10)
        self.head = nn.Linear(10, 2)

    def frontend_params(self):
        return sum(p.numel() for p in self.frontend.parameters())


class _NeedsWeights(Detector):
    def __init__(self):
        raise FileNotFoundError("ssl-x: weights not found\nFix: download them")


def _fake_registry(monkeypatch) -> None:
    fake = Registry("model")
    for name, cls in [("plain", _Plain), ("frozen-ssl", _FrozenSSL), ("tuned-ssl", _FineTunedSSL),
                      ("needs-weights", _NeedsWeights)]:
        fake.register(name)(cls)
    monkeypatch.setattr(benchmark.models, "MODELS", fake)


def test_backend_params_leave_out_the_pretrained_frontend(monkeypatch, capsys):
    _fake_registry(monkeypatch)
    assert main(["models", "--json"]) == 0
    out = capsys.readouterr()
    rows = {r["name"]: r for r in json.loads(out.out)}
    assert rows["plain"] == {"name": "plain", "params": 8, "backend_params": 8}
    assert rows["frozen-ssl"] == {"name": "frozen-ssl", "params": 132, "backend_params": 22}
    assert rows["tuned-ssl"] == {"name": "tuned-ssl", "params": 132, "backend_params": 22}
    # a model that cannot be built is listed, not fatal, with a one-line reason
    assert rows["needs-weights"]["params"] is None and rows["needs-weights"]["error"] == "ssl-x: weights not found"
    assert "note: needs-weights: cannot be built here" in out.err


def test_text_listing(monkeypatch, capsys):
    _fake_registry(monkeypatch)
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("frozen-ssl") and "132 parameters (22 without" in line for line in lines)
    assert any(line.startswith("needs-weights") and "cannot be built here" in line for line in lines)


def test_default_hooks_on_a_detector():
    model = _Plain()
    assert model.frontend_params() == 0 and model.backend_params() == 8
    with torch.device("meta"):  # the CLI counts on the meta device
        assert _FineTunedSSL().backend_params() == 22
