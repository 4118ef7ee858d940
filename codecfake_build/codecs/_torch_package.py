"""Plumbing shared by codecs that wrap a third-party PyTorch package (speechtokenizer,
snac, the official encodec / descript-audio-codec packages): importing the package
with a one-line fix when it is missing, checking a checkpoint against the model
before loading it.

Private module (leading underscore): the codec registry does not import it as a codec.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from codecfake_build.codecs.base import CodecUnavailableError
# The project extra that installs every optional codec package (one spelling for all codecs).
from codecfake_build.codecs.hf_common import INSTALL_HINT as CODECS_EXTRA  # noqa: F401


def import_package(codec: str, module: str, fix: str) -> Any:
    """Import ``module`` or raise CodecUnavailableError naming what failed and ``fix``.

    Any exception counts, not only ImportError: a package whose own imports pull in a
    binary extension built for another torch (torchaudio) fails with OSError or
    RuntimeError, and that is just as much "not usable here"."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - see docstring
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CodecUnavailableError(
            f"codec '{codec}' needs the Python package '{module}', which cannot be imported here "
            f"({type(exc).__name__}: {first}). Fix: {fix}") from None


def require_device(spec: str, device: str) -> None:
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise CodecUnavailableError(f"{spec}: device {device} requested but CUDA is not available. "
                                    "Fix: use --device cpu")


def load_state_dict_file(path: Path, fix: str) -> dict[str, Any]:
    """A flat ``{name: tensor}`` checkpoint read with ``weights_only=True`` (no pickled code)."""
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt file surfaces as many exception types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CodecUnavailableError(f"cannot read checkpoint {path} ({first}). Fix: {fix}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CodecUnavailableError(f"{path} is not a state dict of tensors. Fix: {fix}")
    return state


def check_state_dict(model: Any, state: dict[str, Any], path: Path, fix: str) -> None:
    """Refuse a checkpoint with missing, unexpected or mis-shaped tensors (one line): a
    codec that silently ran on partly random weights would poison a dataset."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} mis-shaped (e.g. {k}: {tuple(state[k].shape)} vs {expected[k]})")
        raise CodecUnavailableError(f"{path} does not fit the model its config describes: "
                                    f"{'; '.join(parts)} tensors. Fix: {fix}")
