"""Typed training configuration, loaded strictly from YAML.

A typo in a config silently falling back to a default wastes a GPU-day, so
unknown keys and wrong types are errors that name the file, the key and the
valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 scalars: only true/false are booleans (so the key ``on:`` stays
    a string, not True) and ``1e-4`` is a float, not a string."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def load_yaml_text(text: str) -> Any:
    """Parse YAML with YAML 1.2 booleans and floats (see ``_Yaml12Loader``)."""
    return yaml.load(text, Loader=_Yaml12Loader)


class ConfigError(ValueError):
    """A one-line problem with a training config."""


def read_yaml_file(path: str | Path, what: str, fix: str) -> Any:
    """Parse a YAML file (YAML 1.2 scalars); a missing file or bad syntax is one
    ConfigError line naming the file (and the line), with ``fix`` for the missing case."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found. Fix: {fix}")
    try:
        return load_yaml_text(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text. Fix: save the file as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}{where}: invalid YAML ({problem}). Fix: correct the syntax") from None


class _WrongType(ConfigError):
    """A value of the wrong type; ``_build`` adds the section's valid keys."""


@dataclass
class DataConfig:
    #: Directory written by codecfake_build (contains data/ and README.md).
    dataset: str
    train_split: str = "train"
    dev_split: str = "validation"
    #: Filters applied to both splits; codec "none" selects the bona-fide rows.
    codecs: list[str] | None = None
    languages: list[str] | None = None
    corpora: list[str] | None = None
    #: Where `datasets` keeps its Arrow copy of the parquet shards (None: HF default).
    cache_dir: str | None = None
    #: Cap on clip length for variable-length models (num_samples None).
    max_samples: int | None = None


@dataclass
class ModelConfig:
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    #: [bonafide_w, spoof_w], "balanced", or null for unweighted cross-entropy.
    class_weights: Union[list[float], str, None] = None
    #: "cosine": per-step cosine decay from lr to min_lr (the AASIST recipe);
    #: "step": multiply by step_gamma every step_epochs epochs (Codecfake halves it every 2).
    scheduler: Literal["none", "cosine", "step"] = "none"
    min_lr: float = 0.0
    step_epochs: int = 2
    step_gamma: float = 0.5
    #: Micro-batches whose gradients are summed before one optimizer step
    #: (effective batch = batch_size x grad_accum x GPUs).
    grad_accum: int = 1
    #: "oversample": every epoch repeats the smaller class up to the larger one (FD-ADD's
    #: recipe); "shuffle": each item once.  Class weights are a separate switch.
    #: "cotrain": every batch holds each training domain in fixed proportions (Codecfake's
    #: CSAM co-training, ``benchmark.data.cotrain``); needs a training source with domains,
    #: i.e. a protocol's resolved training set (each train selection is one domain).
    sampling: Literal["shuffle", "oversample", "cotrain"] = "shuffle"
    #: Training cut of fixed-length models: "random" window per epoch (the AASIST recipe), or
    #: one fixed cut per utterance, "first" N samples (Codecfake caches the first 64,600) or
    #: "middle" N.  A fixed cut lets a frozen SSL front-end's feature cache hit from epoch 2.
    #: (Here, not under data:, because recipes carry optim settings and run all sets data.)
    train_crop: Literal["random", "first", "middle"] = "random"
    num_workers: int = 4
    #: Sharpness-aware minimisation around Adam (Codecfake's SAM/ASAM; CSAM = SAM plus
    #: co-training batches): two forward/backward passes per step, BN stats frozen on the second.
    sam: Literal["none", "sam", "asam"] = "none"
    sam_rho: float = 0.05


@dataclass
class EarlyStoppingConfig:
    #: Stop after this many epochs without a dev improvement; null = never.
    patience: int | None = None
    #: The dev metric that picks best.pt and drives early stopping; "dev_loss" is the
    #: class-weighted cross-entropy of the scoring head (what Codecfake keeps its model by).
    on: Literal["dev_eer", "dev_auc", "dev_loss"] = "dev_eer"
    #: An epoch counts as an improvement only if it beats the best value by more than this.
    min_delta: float = 0.0


@dataclass
class TrainConfig:
    data: DataConfig
    model: ModelConfig
    out_dir: str
    optim: OptimConfig = field(default_factory=OptimConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    seed: int = 1234
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: Mixed precision on CUDA: "fp16" (autocast + GradScaler), "bf16" (autocast, no
    #: scaler needed), true = "fp16", false = off; ignored on CPU.
    amp: Union[bool, Literal["fp16", "bf16"]] = False
    #: Deterministic cuDNN kernels (slower) for bit-reproducible GPU runs.
    deterministic: bool = False
    #: Write TensorBoard event files to out_dir/tensorboard (needs the tensorboard package).
    tensorboard: bool = True
    #: Keep only the newest N epoch_NNN.pt files (null = keep all); last.pt and best.pt are always kept.
    keep_epoch_checkpoints: int | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        raw = read_yaml_file(path, "config file", "pass the path of a training YAML")
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<config>") -> "TrainConfig":
        cfg = _build(cls, raw, source, "")
        cfg.validate(source)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def amp_dtype(self) -> str | None:
        """"fp16", "bf16" or None (off)."""
        if self.amp is True:
            return "fp16"
        return self.amp or None

    def validate(self, source: str = "<config>") -> None:
        def bad(key: str, problem: str) -> ConfigError:
            return ConfigError(f"{source}: key '{key}': {problem}")

        o = self.optim
        for key, value in (("optim.epochs", o.epochs), ("optim.batch_size", o.batch_size),
                           ("optim.grad_accum", o.grad_accum), ("optim.step_epochs", o.step_epochs)):
            if value < 1:
                raise bad(key, f"must be >= 1, got {value}")
        for key, value in (("optim.lr", o.lr), ("optim.weight_decay", o.weight_decay), ("optim.min_lr", o.min_lr),
                           ("early_stopping.min_delta", self.early_stopping.min_delta)):
            if value < 0:
                raise bad(key, f"must be >= 0, got {value}")
        if not 0 < o.step_gamma <= 1:
            raise bad("optim.step_gamma", f"must be in (0, 1], got {o.step_gamma}")
        if o.sam != "none" and o.grad_accum != 1:
            raise bad("optim.sam", "SAM needs the whole batch's gradient before it perturbs; set optim.grad_accum: 1")
        if o.sampling == "cotrain" and o.batch_size < 2:
            raise bad("optim.batch_size", "co-training batches hold every domain (at least two); set it >= 2")
        if o.sam_rho < 0:
            raise bad("optim.sam_rho", f"must be >= 0, got {o.sam_rho}")
        if o.num_workers < 0:
            raise bad("optim.num_workers", f"must be >= 0, got {o.num_workers}")
        if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
            raise bad("optim.betas", f"must be two numbers in [0, 1), got {o.betas}")
        cw = o.class_weights
        if isinstance(cw, str) and cw != "balanced":
            raise bad("optim.class_weights", f"'{cw}' is not valid; use 'balanced', [bonafide_w, spoof_w] or null")
        if isinstance(cw, list) and (len(cw) != 2 or not all(w > 0 for w in cw)):
            raise bad("optim.class_weights", f"must be [bonafide_w, spoof_w] with positive weights, got {cw}")
        for key, value in (("early_stopping.patience", self.early_stopping.patience),
                           ("keep_epoch_checkpoints", self.keep_epoch_checkpoints),
                           ("data.max_samples", self.data.max_samples)):
            if value is not None and value < 1:
                raise bad(key, f"must be >= 1 or null, got {value}")


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, source: str, key: str) -> Any:
    """Check ``value`` against ``tp``; returns it (ints widened to float where a float is wanted)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    wrong = _WrongType(
        f"{source}: key '{key}': expected {_type_name(tp)}, got {type(value).__name__} ({value!r:.60})"
    )
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, source, key)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return _convert(option, value, source, key)
            except ConfigError:
                continue
        raise wrong
    if origin is Literal:
        if value in args:
            return value
        raise wrong
    if origin is list:
        if not isinstance(value, list):
            raise wrong
        return [_convert(args[0], v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise wrong
        return dict(value)
    if tp is type(None):
        if value is None:
            return None
        raise wrong
    if tp is bool:  # YAML yes/no become bools; 0/1 are not accepted as flags
        if isinstance(value, bool):
            return value
        raise wrong
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise wrong
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise wrong
    if tp is str:
        if isinstance(value, str):
            return value
        raise wrong
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def _build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    section = prefix or "the top level"
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    valid = ", ".join(fields)
    if raw is None and prefix:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {section} must be a mapping, got {type(raw).__name__}. Valid keys: {valid}")
    kwargs = {}
    for key, value in raw.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{source}: unknown key '{full}'.{hint} Valid keys in {section}: {valid}")
        try:
            kwargs[key] = _convert(hints[key], value, source, full)
        except _WrongType as exc:
            raise ConfigError(f"{exc}. Valid keys in {section}: {valid}") from None
    missing = [
        name for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        full = f"{prefix}.{missing[0]}" if prefix else missing[0]
        raise ConfigError(f"{source}: required key '{full}' is missing. Valid keys in {section}: {valid}")
    return cls(**kwargs)
