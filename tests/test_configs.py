"""Every YAML experiment definition in configs/ must load as a typed config:
training configs as TrainConfig, recipes as Recipe, and the matrix as a Matrix
whose recipes name registered models."""

from pathlib import Path

import pytest

from benchmark.matrix import MATRIX_FILE, RECIPE_DIR, Matrix, Recipe
from benchmark.models import MODELS
from benchmark.training import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# protocols/ are validated by tests/benchmark/test_protocols.py; recipes and the matrix below.
NOT_TRAIN_CONFIGS = ("protocols", "recipes")
CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml")
                 if p.relative_to(CONFIG_DIR).parts[0] not in NOT_TRAIN_CONFIGS and p != MATRIX_FILE)
RECIPES = sorted(RECIPE_DIR.glob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS and RECIPES


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads(path):
    cfg = TrainConfig.from_yaml(path)
    assert cfg.model.name in MODELS and cfg.out_dir


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_loads_and_names_a_registered_model(path):
    recipe = Recipe.from_yaml(path)
    assert recipe.train["model"]["name"] in MODELS and recipe.description


def test_matrix_loads():
    matrix = Matrix.load()
    assert matrix.experiments({})
