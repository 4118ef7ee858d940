"""Self-supervised speech front-end (wav2vec 2.0 / XLS-R, WavLM, HuBERT) on transformers.

Codecfake (xieyuankun/Codecfake, preprocess.py) feeds its detectors
``hidden_states[5]`` of ``facebook/wav2vec2-xls-r-300m``: the waveform is cut or
repeat-padded to 64,600 samples, normalised by ``Wav2Vec2FeatureExtractor``
(zero mean, unit variance per utterance) and run through the frozen model,
giving 201 frames x 1024 dims.  This module does the same inside the detector,
batched on its device, and returns ``(B, hidden, frames)`` like the spectral
front-ends.

* ``layer`` picks ``hidden_states[layer]`` (0 = the transformer input).  Layers
  above it are dropped at load time, which saves memory and most of the compute
  (layer 5 of a 24-layer model runs 6 layers).  One more layer than needed is
  kept because stable-layer-norm models apply their final LayerNorm to the last
  hidden state only, so ``hidden_states[layer]`` must not be the last one.
* ``layers=[8, 16, 24]`` returns several hidden states from one pass, stacked as
  ``(B, len(layers), hidden, frames)`` (WaveSpec's three scales); the model is cut
  above the highest one.  Each slice equals the single-``layer`` output for that
  layer, and the feature cache stores the stack under a key naming all the layers.
* ``finetune=False`` (Codecfake): the SSL model is frozen, kept in eval mode and
  left out of ``parameters()`` and ``state_dict()``, so checkpoints and optimisers
  hold the back-end only.  With a ``cache_dir`` its features are stored in a
  content-addressed cache (see ``feature_cache``) and reused across epochs,
  models and runs.  ``finetune=True``: the SSL model is a trained sub-module
  (its CNN feature encoder stays frozen unless ``freeze_feature_encoder=False``).
* Weights: a local directory, or a hub id read from the HF cache first; downloads
  only when they are not cached and we are online (``HF_HUB_OFFLINE`` unset).
  Missing weights give one line naming the model and the fix.
* Shapes without weights or network: the default checkpoints' architectures
  (``KNOWN_ARCHITECTURES``, facts from their hub ``config.json``) are built in, so a
  front-end for one of them is constructed, and its size counted (``num_params``,
  ``full_params``, on the meta device), with no download and no HTTP request.
  Other ids are looked up in the HF cache first, then on the hub when online.
  Inside ``architecture_only()`` a fine-tuned front-end is built from its config
  (random or meta weights) instead of its checkpoint: ``python -m benchmark models``
  counts parameters that way.
* Random weights, official architecture, no download: ``SSLFrontend(..., random_init=True)``
  (or ``load_ssl_model(..., random_init=True)``) builds the model from its config (built in for
  ``KNOWN_ARCHITECTURES``, so no I/O at all) with weights drawn from a fixed seed, leaving the
  caller's random state untouched.  Inside ``random_weights()`` every front-end built is random:
  for detectors that build their own front-end (``benchmarks/train_throughput.py`` times every
  recipe that way; timing depends on shapes, not on weight values).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from benchmark.frontends.base import FRONTENDS
from benchmark.frontends.feature_cache import FeatureCache, default_cache_dir, fingerprint_state

XLSR_300M = "facebook/wav2vec2-xls-r-300m"
WAVLM_LARGE = "microsoft/wavlm-large"
W2V2_BASE = "facebook/wav2vec2-base-960h"
WAVLM_BASE = "microsoft/wavlm-base"

_CONV = dict(conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
             num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, layer_norm_eps=1e-5,
             feat_extract_activation="gelu", hidden_act="gelu", add_adapter=False, mask_feature_prob=0.0)
_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
              feat_extract_norm="layer", do_stable_layer_norm=True, mask_time_prob=0.075)
_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
             feat_extract_norm="group", do_stable_layer_norm=False, mask_time_prob=0.05)
_WAVLM = dict(num_buckets=320, max_bucket_distance=800)

#: Every config.json field that fixes a parameter shape of the default SSL checkpoints
#: (https://huggingface.co/<id>/blob/main/config.json), spelled out rather than left to
#: transformers' defaults so a new transformers release cannot change them silently.
#: ``mask_time_prob`` > 0 matters: it gives the model its ``masked_spec_embed`` vector.
KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    XLSR_300M: dict(model_type="wav2vec2", **_CONV, **_LARGE, conv_bias=True),
    WAVLM_LARGE: dict(model_type="wavlm", **_CONV, **_LARGE, **_WAVLM, conv_bias=False),
    W2V2_BASE: dict(model_type="wav2vec2", **_CONV, **_BASE, conv_bias=False),
    WAVLM_BASE: dict(model_type="wavlm", **_CONV, **_BASE, **_WAVLM, conv_bias=False),
}


class SSLWeightsError(FileNotFoundError):
    """One-line problem locating or reading SSL weights."""


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "0") not in ("0", "", "false", "False")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]


def _not_found(model: str | Path, local: bool, where_online: bool, exc: BaseException, what: str) -> SSLWeightsError:
    where = "in that directory" if local else "on the hub" if where_online else "in the Hugging Face cache"
    return SSLWeightsError(
        f"{model}: SSL {what} not found {where} ({_first_line(exc)}). Fix: run once online to fill the HF cache, "
        f"or download the model (huggingface-cli download {model if not local else '<id>'}) and pass "
        "ssl_model=<local dir>")


def _check_path_like(model: str | Path) -> bool:
    """True for an existing directory; a path-looking string that is not one is an error."""
    path = Path(model)
    if path.is_dir():
        return True
    if str(model).startswith((".", "/")) or path.suffix:
        raise SSLWeightsError(f"{model}: SSL model directory not found. Fix: pass ssl_model=<dir with config.json "
                              "and model.safetensors> or a hub id such as facebook/wav2vec2-xls-r-300m")
    return False


def _cached_file(model_id: str, filename: str) -> Path | None:
    """``filename`` of ``model_id`` in the HF cache, found by reading the cache folders only.
    (transformers' ``local_files_only`` lookups still go through huggingface_hub's request
    set-up, which may fetch from the hub once per process when not offline.)"""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model_id, filename)
    except Exception:  # e.g. an id that is not a valid repo name: nothing cached
        return None
    return Path(found) if isinstance(found, str) else None


def _cache_first(load: Any, model: str | Path, local_files_only: bool | None, what: str) -> Any:
    """``load(source, local_files_only=...)`` from a local directory, else from the model's
    snapshot in the HF cache, else from the hub when we may go online: cached models
    never cost an HTTP request (nor, with no network, its retries)."""
    if _check_path_like(model):
        try:
            return load(str(model), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise _not_found(model, True, False, exc, what) from None
    cache_only = bool(local_files_only) or (local_files_only is None and _offline())
    problem: BaseException = FileNotFoundError("config.json is not in the cache")
    snapshot = _cached_file(str(model), "config.json")
    if snapshot is not None:
        try:
            return load(str(snapshot.parent), local_files_only=True)
        except (OSError, ValueError) as exc:  # e.g. only the config was ever downloaded
            problem = exc
    if cache_only:
        raise _not_found(model, False, False, problem, what)
    try:
        return load(str(model), local_files_only=False)
    except (OSError, ValueError) as exc:
        raise _not_found(model, False, True, exc, what) from None


#: Seed of ``random_init`` weights: the same random model in every process.
RANDOM_INIT_SEED = 0


def load_ssl_model(model: str | Path, *, local_files_only: bool | None = None, random_init: bool = False,
                   seed: int = RANDOM_INIT_SEED) -> nn.Module:
    """``AutoModel.from_pretrained`` (HF cache first) with a one-line error when the weights are missing.

    ``random_init=True``: the official architecture (``ssl_config``) with weights drawn under
    ``torch.manual_seed(seed)`` in a forked RNG; no weights are read and, for the
    ``KNOWN_ARCHITECTURES``, nothing at all is read or downloaded."""
    from transformers import AutoModel

    if random_init:
        config = ssl_config(model, local_files_only)
        with torch.random.fork_rng(devices=[]):  # the CPU generator only: no CUDA set-up needed
            torch.manual_seed(seed)
            return AutoModel.from_config(config)
    return _cache_first(AutoModel.from_pretrained, model, local_files_only, "weights")


def ssl_config(model: str | Path, local_files_only: bool | None = None) -> Any:
    """The transformers config of an SSL model: built in for ``KNOWN_ARCHITECTURES`` (no I/O),
    else from a local directory or the HF cache, and from the hub only when online."""
    from transformers import AutoConfig

    known = KNOWN_ARCHITECTURES.get(str(model))
    if known is not None and not Path(model).is_dir():
        fields = dict(known)
        return AutoConfig.for_model(fields.pop("model_type"), **fields)
    return _cache_first(AutoConfig.from_pretrained, model, local_files_only, "config")


@functools.lru_cache(maxsize=64)
def _count_params(config_json: str, model_type: str, keep: int | None) -> int:
    from transformers import AutoConfig, AutoModel

    fields = json.loads(config_json)
    fields.pop("model_type", None)
    config = AutoConfig.for_model(model_type, **fields)
    if keep is not None:
        config.num_hidden_layers = keep
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = AutoModel.from_config(config)
    return sum(p.numel() for p in model.parameters())


def count_ssl_params(config: Any, keep_layers: int | None = None) -> int:
    """Parameters of ``AutoModel`` for ``config`` (what ``from_pretrained`` gives), with only the
    first ``keep_layers`` transformer layers when given; built on the meta device, cached."""
    return _count_params(config.to_json_string(use_diff=False), config.model_type, keep_layers)


_ARCHITECTURE_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("ssl_architecture_only", default=False)
_RANDOM_WEIGHTS: contextvars.ContextVar[bool] = contextvars.ContextVar("ssl_random_weights", default=False)


@contextlib.contextmanager
def random_weights() -> Iterator[None]:
    """Every ``SSLFrontend`` built inside this block takes ``random_init=True``: the official
    architecture with seeded random weights, no checkpoint read, no download (the front-end keeps
    the choice, so a frozen model loaded lazily later is random too).  For detectors that build
    their front-end themselves, e.g. ``create_model("w2v2-aasist")`` in a throughput benchmark."""
    token = _RANDOM_WEIGHTS.set(True)
    try:
        yield
    finally:
        _RANDOM_WEIGHTS.reset(token)


@contextlib.contextmanager
def architecture_only() -> Iterator[None]:
    """Inside this block a fine-tuned SSL front-end is built from its config, without its
    pretrained weights (for counting parameters; combine with ``torch.device("meta")``)."""
    token = _ARCHITECTURE_ONLY.set(True)
    try:
        yield
    finally:
        _ARCHITECTURE_ONLY.reset(token)


def _wants_normalize(model: str | Path, config: Any) -> bool:
    """Follow the model's own feature extractor (``do_normalize``) when it ships one;
    otherwise layer-norm feature encoders (XLS-R, WavLM-large) were trained on normalised input."""
    pre = Path(model) / "preprocessor_config.json" if Path(model).is_dir() else \
        _cached_file(str(model), "preprocessor_config.json")
    if pre is not None and pre.is_file():
        return bool(json.loads(pre.read_text()).get("do_normalize", True))
    return getattr(config, "feat_extract_norm", "layer") == "layer"


def normalize_waveform(wave: torch.Tensor) -> torch.Tensor:
    """Per-utterance zero mean, unit variance as ``Wav2Vec2FeatureExtractor`` (population variance, eps 1e-7)."""
    mean = wave.mean(dim=-1, keepdim=True)
    var = wave.var(dim=-1, keepdim=True, unbiased=False)
    return (wave - mean) / torch.sqrt(var + 1e-7)


@FRONTENDS.register("ssl")
class SSLFrontend(nn.Module):
    def __init__(self, model: str | Path = XLSR_300M, layer: int = 5, finetune: bool = False,
                 cache_dir: str | Path | None = None, normalize: bool | None = None,
                 freeze_feature_encoder: bool = True, local_files_only: bool | None = None,
                 layers: Sequence[int] | None = None, random_init: bool = False):
        """``random_init=True`` (or building inside ``random_weights()``): the official architecture
        with seeded random weights instead of the pretrained checkpoint, with no download."""
        super().__init__()
        self.random_init = bool(random_init or _RANDOM_WEIGHTS.get())
        self.model_id, self.finetune = str(model), finetune
        #: Multi-layer mode: the hidden_states indices returned together (None = single ``layer``).
        self.layers = None if layers is None else tuple(int(i) for i in layers)
        if self.layers is not None and not self.layers:
            raise ValueError(f"{model}: layers is empty. Fix: pass at least one hidden_states index, e.g. [8, 16, 24]")
        # The highest layer needed decides where the model is cut.
        self.layer = layer if self.layers is None else max(self.layers)
        self._local_files_only, self._freeze_feature_encoder = local_files_only, freeze_feature_encoder
        loaded: nn.Module | None = None
        if finetune and not _ARCHITECTURE_ONLY.get():
            loaded = load_ssl_model(model, local_files_only=local_files_only, random_init=self.random_init)
            cfg = loaded.config
        else:
            cfg = ssl_config(model, local_files_only)
        # The released architecture, before _prepare cuts layers (it edits the loaded config in place).
        self._full_config_json, self._model_type = cfg.to_json_string(use_diff=False), cfg.model_type
        self._full_layers = int(cfg.num_hidden_layers)
        for wanted in (layer,) if self.layers is None else self.layers:
            if not 0 <= wanted <= cfg.num_hidden_layers:
                raise ValueError(f"{model}: layer {wanted} out of range; this model has hidden_states[0.."
                                 f"{cfg.num_hidden_layers}]. Fix: pass SSL layers between 0 and "
                                 f"{cfg.num_hidden_layers}")
        self.normalize = _wants_normalize(model, cfg) if normalize is None else normalize
        self.hidden_size = cfg.hidden_size
        self._conv = list(zip(cfg.conv_kernel, cfg.conv_stride))
        # Follows .to(device) so a lazily loaded frozen model lands on the right device.
        self.register_buffer("_anchor", torch.empty(0), persistent=False)
        self._frozen: list[nn.Module] | None = None
        self.cache_dir = None
        if finetune:
            if loaded is None:  # architecture_only(): the released shapes, no pretrained weights
                from transformers import AutoModel

                loaded = AutoModel.from_config(cfg)
            self.ssl = self._prepare(loaded)
        else:
            # A plain attribute keeps 300M frozen weights out of parameters(), state_dict() and DDP.
            self._frozen = []
            self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._cache: FeatureCache | None = None

    def _prepare(self, ssl: nn.Module) -> nn.Module:
        n = ssl.config.num_hidden_layers
        if self.layer + 1 < n:
            ssl.encoder.layers = ssl.encoder.layers[: self.layer + 1]
            ssl.config.num_hidden_layers = self.layer + 1
        if self.finetune:
            if self._freeze_feature_encoder:
                for p in ssl.feature_extractor.parameters():
                    p.requires_grad_(False)
        else:
            ssl.eval().requires_grad_(False)
        return ssl

    @property
    def ssl_model(self) -> nn.Module:
        if self._frozen is None:
            return self.ssl
        if not self._frozen:
            ssl = self._prepare(load_ssl_model(self.model_id, local_files_only=self._local_files_only,
                                               random_init=self.random_init))
            self._frozen.append(ssl.to(self._anchor.device))
        return self._frozen[0]

    @property
    def num_features(self) -> int:
        return self.hidden_size

    def num_params(self) -> int:
        """Parameters of the SSL model as this front-end holds it: the pretrained model cut above
        the highest hidden state it reads (what runs, and what fine-tuning trains).  A frozen
        model not loaded yet is counted from its architecture, without weights or network."""
        if self._frozen is None:
            return sum(p.numel() for p in self.ssl.parameters())
        if self._frozen:
            return sum(p.numel() for p in self._frozen[0].parameters())
        return _count_params(self._full_config_json, self._model_type, min(self.layer + 1, self._full_layers))

    def full_params(self) -> int:
        """Parameters of the whole pretrained SSL model as released (all its layers)."""
        return _count_params(self._full_config_json, self._model_type, None)

    def num_frames(self, num_samples: int) -> int:
        n = num_samples
        for kernel, stride in self._conv:
            n = (n - kernel) // stride + 1
        return n

    def _apply(self, fn, recurse=True):
        # .to()/.cuda()/.half() must also move the unregistered frozen model.
        super()._apply(fn, recurse)
        if self._frozen:
            self._frozen[0]._apply(fn, recurse)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        if self._frozen:
            self._frozen[0].eval()  # frozen features never see dropout
        return self

    @property
    def cache(self) -> FeatureCache | None:
        """The feature cache (frozen mode with a cache_dir); its key prefix fingerprints the weights once."""
        if self.cache_dir is None:
            return None
        if self._cache is None:
            # Single-layer keys are unchanged by the multi-layer option, so existing caches stay valid.
            which = {"layer": self.layer} if self.layers is None else {"layers": list(self.layers)}
            prefix = json.dumps({"v": 1, "model": self.model_id, "weights": fingerprint_state(self.ssl_model),
                                 **which, "normalize": self.normalize})
            self._cache = FeatureCache(self.cache_dir, prefix)
        return self._cache

    def compute(self, wave: torch.Tensor) -> torch.Tensor:
        """Features without the cache: ``(B, T)`` -> ``(B, hidden, frames)``, or
        ``(B, len(layers), hidden, frames)`` in multi-layer mode."""
        x = normalize_waveform(wave) if self.normalize else wave
        hidden = self.ssl_model(x, output_hidden_states=True).hidden_states
        if self.layers is None:
            return hidden[self.layer].transpose(1, 2)
        return torch.stack([hidden[i] for i in self.layers], dim=1).transpose(2, 3)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self._frozen is None:
            return self.compute(wave)
        with torch.no_grad():
            cache = self.cache
            if cache is None:
                return self.compute(wave).float()
            keys = [cache.key(row) for row in wave.float()]
            found = [cache.get(k) for k in keys]
            todo = [i for i, f in enumerate(found) if f is None]
            if todo:
                fresh = self.compute(wave[todo]).float().cpu()
                for j, i in enumerate(todo):
                    # What put() stored (rounded in a float16 cache), so the first epoch sees the same values as later ones.
                    found[i] = cache.put(keys[i], fresh[j].clone())
            return torch.stack(found).to(wave.device)


def default_cache(cache_dir: str | Path | bool | None) -> Path | None:
    """Resolve a model kwarg: True/"auto" = the shared default cache, False/None = no cache, else a path."""
    if cache_dir is True or cache_dir == "auto":
        return default_cache_dir()
    if cache_dir in (None, False, ""):
        return None
    return Path(cache_dir)
