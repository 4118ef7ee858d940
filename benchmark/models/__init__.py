"""Detector registry (timm-style ``create_model``).  One file per model family."""

from benchmark.models.base import MODELS, create_model, load_weights  # noqa: F401
