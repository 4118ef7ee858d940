"""Import Codecfake's released checkpoints without their code.

``pretrained_model/*/anti-spoofing_feat_model.pt`` (xieyuankun/Codecfake) are
``torch.save``d whole modules: unpickling them normally needs their
``model.py`` on ``sys.path`` (as module ``model``) and runs arbitrary pickle
code.  Here a restricted unpickler resolves only

* tensor and parameter rebuild functions, ``OrderedDict`` and ``set``;
* classes under ``model.*`` (their code) and ``torch.nn.modules.*`` -> an inert
  stand-in that only records its attributes;

anything else is refused with one line.  The stand-in tree is then walked
like ``nn.Module.state_dict`` (``_parameters``, persistent ``_buffers``,
``_modules``) and renamed for our model:

| their class | our model | renaming |
|---|---|---|
| ``W2VAASIST`` | ``w2v2-aasist`` | ``backend.`` + their key |
| ``LCNN`` with ``Linear(24576, 160)`` | ``w2v2-lcnn`` | same keys |
| ``LCNN`` with ``Linear(4960, 160)`` | ``lcnn`` (``log_mel=False``) | same keys |

Their logit index 0 is bona fide, ours is index 1, so the rows of the output
layer are swapped: our scores equal theirs with the classes in our order.
"""

from __future__ import annotations

import pickle
import types
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

_SAFE_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("__builtin__", "set"),
    ("torch", "Size"),
}
_STANDIN_MODULES = ("model", "torch.nn.modules.")


class StandIn:
    """Inert placeholder for a pickled module class: keeps the pickled ``__dict__``."""

    _class_path = "?"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):  # (dict, slots) form
            state = {k: v for part in state if isinstance(part, dict) for k, v in part.items()}
        self.__dict__.update(state)


_standin_classes: dict[str, type] = {}


def _standin(module: str, name: str) -> type:
    path = f"{module}.{name}"
    if path not in _standin_classes:
        _standin_classes[path] = type(name, (StandIn,), {"_class_path": path})
    return _standin_classes[path]


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        if module == "model" or module.startswith(_STANDIN_MODULES[1]):
            return _standin(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


_pickle_module = types.SimpleNamespace(Unpickler=_RestrictedUnpickler, load=pickle.load, __name__="restricted")


def module_state_dict(root: StandIn, prefix: str = "") -> "OrderedDict[str, torch.Tensor]":
    """What ``nn.Module.state_dict()`` would return for the pickled module tree."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    d = root.__dict__
    for name, p in (d.get("_parameters") or {}).items():
        if p is not None:
            out[prefix + name] = p.detach() if isinstance(p, torch.Tensor) else p
    skip = d.get("_non_persistent_buffers_set") or set()
    for name, b in (d.get("_buffers") or {}).items():
        if b is not None and name not in skip:
            out[prefix + name] = b
    for name, child in (d.get("_modules") or {}).items():
        if child is not None:
            out.update(module_state_dict(child, f"{prefix}{name}."))
    return out


@dataclass
class CodecfakeCheckpoint:
    model: str  # our registered model name
    kwargs: dict[str, Any] = field(default_factory=dict)
    state_dict: "OrderedDict[str, torch.Tensor]" = field(default_factory=OrderedDict)
    source_class: str = ""
    #: Trainable parameters in their checkpoint (BN buffers excluded).
    num_parameters: int = 0


def read_pickled_module(path: str | Path) -> StandIn:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Codecfake checkpoint not found. Fix: pass the path of "
                                "pretrained_model/<name>/anti-spoofing_feat_model.pt")
    try:
        root = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_pickle_module)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: not a Codecfake checkpoint ({exc}). Fix: pass one of their "
                         "anti-spoofing_feat_model.pt files, or a plain state dict to load_weights") from None
    except Exception as exc:
        raise ValueError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {str(exc)[:120]}). "
                         "Fix: pass one of Codecfake's anti-spoofing_feat_model.pt files") from None
    if not isinstance(root, StandIn):
        raise ValueError(f"{path}: holds a {type(root).__name__}, not a pickled Codecfake model. "
                         "Fix: load plain state dicts with benchmark.models.load_weights")
    return root


def _swap_classes(state: "OrderedDict[str, torch.Tensor]", prefix: str) -> None:
    for key in (f"{prefix}.weight", f"{prefix}.bias"):
        state[key] = state[key].flip(0).contiguous()


def import_codecfake(path: str | Path) -> CodecfakeCheckpoint:
    """Read a released Codecfake checkpoint into our model name, kwargs and state dict."""
    root = read_pickled_module(path)
    cls = type(root)._class_path
    theirs = module_state_dict(root)
    n_params = sum(v.numel() for k, v in theirs.items()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    if cls == "model.W2VAASIST":
        state = OrderedDict((f"backend.{k}", v) for k, v in theirs.items())
        _swap_classes(state, "backend.out_layer")
        return CodecfakeCheckpoint("w2v2-aasist", {}, state, cls, n_params)
    if cls == "model.LCNN":
        in_features = theirs["out.1.weight"].shape[1]
        if in_features == 24576:
            name, kwargs = "w2v2-lcnn", {}
        else:
            name, kwargs = "lcnn", {"log_mel": False}
        state = OrderedDict(theirs)
        _swap_classes(state, "fc_mu")
        return CodecfakeCheckpoint(name, kwargs, state, cls, n_params)
    raise ValueError(f"{path}: pickled class {cls} is not a known Codecfake model (W2VAASIST, LCNN). "
                     "Fix: pass a released anti-spoofing_feat_model.pt")


def load_codecfake(path: str | Path, **model_kwargs: Any) -> torch.nn.Module:
    """Build our model for a released checkpoint and load its weights strictly.
    ``model_kwargs`` go to the model (e.g. ``ssl_model=`` a local XLS-R directory)."""
    from benchmark.models.base import create_model

    ck = import_codecfake(path)
    model = create_model(ck.model, **{**ck.kwargs, **model_kwargs})
    model.load_state_dict(ck.state_dict, strict=True)
    return model
