"""Every YAML experiment definition in configs/ must load as a typed config."""

from pathlib import Path

import pytest

from benchmark.models import MODELS
from benchmark.training import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# configs/protocols/ holds evaluation protocols, validated by tests/benchmark/test_protocols.py.
CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.relative_to(CONFIG_DIR).parts[0] != "protocols")


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads(path):
    cfg = TrainConfig.from_yaml(path)
    assert cfg.model.name in MODELS and cfg.out_dir
