"""Train detectors on built datasets: typed YAML configs, a resumable loop and
the batched scorer the evaluation CLI reuses."""

from benchmark.training.config import (
    ConfigError,
    DataConfig,
    EarlyStoppingConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
)
from benchmark.training.loop import LOG_COLUMNS, TrainingError, resolve_device, seed_everything, train
from benchmark.training.scoring import score_loader

__all__ = [
    "ConfigError", "DataConfig", "EarlyStoppingConfig", "LOG_COLUMNS", "ModelConfig", "OptimConfig",
    "TrainConfig", "TrainingError", "resolve_device", "score_loader", "seed_everything", "train",
]
