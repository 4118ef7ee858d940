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
* Weights: a local directory, or a hub id read from the HF cache; downloads only
  when online (``HF_HUB_OFFLINE`` unset).  Missing weights give one line naming
  the model and the fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from benchmark.frontends.base import FRONTENDS
from benchmark.frontends.feature_cache import FeatureCache, default_cache_dir, fingerprint_state

XLSR_300M = "facebook/wav2vec2-xls-r-300m"
WAVLM_LARGE = "microsoft/wavlm-large"


class SSLWeightsError(FileNotFoundError):
    """One-line problem locating or reading SSL weights."""


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "0") not in ("0", "", "false", "False")


def load_ssl_model(model: str | Path, *, local_files_only: bool | None = None) -> nn.Module:
    """``AutoModel.from_pretrained`` with a one-line error when the weights are missing."""
    from transformers import AutoModel

    path = Path(model)
    local = path.is_dir()
    if not local and (str(model).startswith((".", "/")) or path.suffix):
        raise SSLWeightsError(f"{model}: SSL model directory not found. Fix: pass ssl_model=<dir with config.json "
                              "and model.safetensors> or a hub id such as facebook/wav2vec2-xls-r-300m")
    if local_files_only is None:
        local_files_only = local or _offline()
    try:
        return AutoModel.from_pretrained(str(model), local_files_only=local_files_only)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        where = "in that directory" if local else "in the Hugging Face cache" if local_files_only else "on the hub"
        raise SSLWeightsError(
            f"{model}: SSL weights not found {where} ({first}). Fix: run once online to fill the HF cache, "
            f"or download the model (huggingface-cli download {model if not local else '<id>'}) and pass "
            "ssl_model=<local dir>") from None


def _wants_normalize(model: str | Path, config: Any) -> bool:
    """Follow the model's own feature extractor (``do_normalize``) when it ships one;
    otherwise layer-norm feature encoders (XLS-R, WavLM-large) were trained on normalised input."""
    pre = Path(model) / "preprocessor_config.json"
    if pre.is_file():
        return bool(json.loads(pre.read_text()).get("do_normalize", True))
    try:
        from transformers.utils import cached_file

        found = cached_file(str(model), "preprocessor_config.json", local_files_only=True,
                            _raise_exceptions_for_missing_entries=False)
        if found:
            return bool(json.loads(Path(found).read_text()).get("do_normalize", True))
    except Exception:  # no cache entry or an older transformers: fall back to the config
        pass
    return getattr(config, "feat_extract_norm", "layer") == "layer"


def normalize_waveform(wave: torch.Tensor) -> torch.Tensor:
    """Per-utterance zero mean, unit variance as ``Wav2Vec2FeatureExtractor`` (population variance, eps 1e-7)."""
    mean = wave.mean(dim=-1, keepdim=True)
    var = wave.var(dim=-1, keepdim=True, unbiased=False)
    return (wave - mean) / torch.sqrt(var + 1e-7)


#: Shapes of the official models, so a frozen front-end can be built (e.g. by
#: ``python -m benchmark models``) before its weights are on disk; the weights
#: themselves are loaded on first use.
_KNOWN_SHAPES = {
    name: dict(hidden_size=1024, num_hidden_layers=24, conv_kernel=(10, 3, 3, 3, 3, 2, 2),
               conv_stride=(5, 2, 2, 2, 2, 2, 2), feat_extract_norm="layer")
    for name in (XLSR_300M, WAVLM_LARGE)
}


def _ssl_shape(model: str | Path, local_files_only: bool | None) -> Any:
    from types import SimpleNamespace

    from transformers import AutoConfig

    local = Path(model).is_dir()
    try:
        return AutoConfig.from_pretrained(str(model), local_files_only=True if local_files_only is None and
                                          (local or _offline()) else bool(local_files_only))
    except (OSError, ValueError):
        if str(model) in _KNOWN_SHAPES:
            return SimpleNamespace(**_KNOWN_SHAPES[str(model)])
        load_ssl_model(model, local_files_only=local_files_only)  # raises the one-line error
        raise


@FRONTENDS.register("ssl")
class SSLFrontend(nn.Module):
    def __init__(self, model: str | Path = XLSR_300M, layer: int = 5, finetune: bool = False,
                 cache_dir: str | Path | None = None, normalize: bool | None = None,
                 freeze_feature_encoder: bool = True, local_files_only: bool | None = None,
                 layers: Sequence[int] | None = None):
        super().__init__()
        self.model_id, self.finetune = str(model), finetune
        #: Multi-layer mode: the hidden_states indices returned together (None = single ``layer``).
        self.layers = None if layers is None else tuple(int(i) for i in layers)
        if self.layers is not None and not self.layers:
            raise ValueError(f"{model}: layers is empty. Fix: pass at least one hidden_states index, e.g. [8, 16, 24]")
        # The highest layer needed decides where the model is cut.
        self.layer = layer if self.layers is None else max(self.layers)
        self._local_files_only, self._freeze_feature_encoder = local_files_only, freeze_feature_encoder
        cfg = load_ssl_model(model, local_files_only=local_files_only).config if finetune else \
            _ssl_shape(model, local_files_only)
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
            self.ssl = self._prepare(load_ssl_model(model, local_files_only=local_files_only))
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
            ssl = self._prepare(load_ssl_model(self.model_id, local_files_only=self._local_files_only))
            self._frozen.append(ssl.to(self._anchor.device))
        return self._frozen[0]

    @property
    def num_features(self) -> int:
        return self.hidden_size

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
