"""Every YAML experiment definition in configs/ must load as a typed config."""

from pathlib import Path

import pytest

from benchmark.models import MODELS
from benchmark.training import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads(path):
    cfg = TrainConfig.from_yaml(path)
    assert cfg.model.name in MODELS and cfg.out_dir
