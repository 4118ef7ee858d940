"""Shared plumbing for neural codecs whose weights are a ``transformers`` model
on the Hugging Face hub (EnCodec, DAC): finding and loading the checkpoint, and
batched re-synthesis that gives the same samples as one clip at a time.

A subclass names the transformers class, checks the loaded config, and says
how a clip is padded before the model sees it and whether clips of different
lengths may share a forward pass (only when padding one clip to the length of
another provably cannot change its own output).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codecfake_build.codecs import weights
from codecfake_build.codecs.base import Codec, CodecUnavailableError

INSTALL_HINT = "pip install 'codecfake-bench[codecs]'"

#: Files that make a usable checkpoint directory; one weight file is enough.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def import_transformers(codec: str) -> Any:
    """The ``transformers`` module, or CodecUnavailableError saying how to install it."""
    try:
        importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
    except ImportError as exc:
        missing = exc.name or "transformers"
        raise CodecUnavailableError(
            f"codec '{codec}' needs torch and transformers, but {missing} cannot be imported ({exc}). "
            f"Fix: {INSTALL_HINT}"
        ) from None
    return transformers


def _config_matches(actual: Any, expected: Any) -> bool:
    """``actual`` (a config value) equals ``expected``; a dict is matched key by key against a
    sub-config (e.g. the semantic model inside X-Codec), lists and tuples compare as lists."""
    if isinstance(expected, dict):
        if hasattr(actual, "to_dict"):
            actual = actual.to_dict()
        return isinstance(actual, dict) and all(_config_matches(actual.get(k), v) for k, v in expected.items())
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        return len(actual) == len(expected) and all(_config_matches(a, e) for a, e in zip(actual, expected))
    return bool(actual == expected)


class HFCodec(Codec):
    """A codec backed by a ``transformers`` audio-tokenizer model."""

    #: Name of the model class in ``transformers`` (e.g. "EncodecModel").
    model_class: ClassVar[str]
    #: Hub repo used when a config has no ``params["repo"]``.
    default_repo: ClassVar[str]
    #: Per hub repo, the config values by which the released checkpoint differs from the
    #: transformers defaults (from the hub config.json), so ``init_random`` builds exactly
    #: the architecture users download.
    official_architectures: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Name of the sample-rate field in the model's config (``config.json``).
    rate_key: ClassVar[str] = "sampling_rate"

    def __init__(self, config: str | None = None, device: str = "cpu", weights: str | None = None):
        super().__init__(config=config, device=device, weights=weights)
        self.model: Any = None

    # ---- what a subclass provides ------------------------------------------------------
    def _check_model(self, model: Any, path: Path) -> None:
        """Raise CodecUnavailableError if the checkpoint does not fit the chosen config."""
        rate = int(getattr(model.config, self.rate_key, 0) or 0)
        if rate != self.native_rate:
            raise CodecUnavailableError(
                f"{self.spec} expects a {self.native_rate} Hz model ({self.repo_id}) but {path} holds a "
                f"{rate} Hz one. Fix: pass --weights {self.registry_name}=DIR with the {self.repo_id} files, "
                f"or choose the config that matches these weights"
            )

    def _padded_length(self, n: int) -> int:
        """Length (>= n) a clip of n native samples is zero-padded to before encoding."""
        return n

    def _mixed_lengths_exact(self) -> bool:
        """True if clips of different padded lengths may share a forward pass without
        changing any clip's output; otherwise only equal lengths are batched."""
        return False

    def _encode(self, x: Any, valid: Any) -> Any:
        """Encode a (batch, time) float tensor whose row i holds ``valid[i]`` samples of
        padded clip; return whatever ``_decode`` needs."""
        raise NotImplementedError

    def _decode(self, state: Any, valid: Any) -> Any:
        """Decode ``_encode``'s result to a (batch, time) float tensor."""
        raise NotImplementedError

    def _codes(self, state: Any) -> Any:
        """The integer codes in ``state`` as a (batch, codebooks, frames) tensor."""
        raise NotImplementedError

    # ---- loading -------------------------------------------------------------------------
    @property
    def repo_id(self) -> str:
        return str(self.config.params.get("repo", self.default_repo))

    def _project_cache_dir(self) -> Path | None:
        """``$CODECFAKE_CACHE/<codec>/<repo name>/`` or ``$CODECFAKE_CACHE/<codec>/`` (where the
        missing-weights message tells users to put files), if it holds a model at this
        config's rate; one codec name covers several repos, so a model at another rate there
        belongs to another config and is passed over."""
        root = weights.cache_dir(self.registry_name)
        for d in (root / self.repo_id.split("/")[-1], root):
            try:
                cfg = json.loads((d / "config.json").read_text())
            except (OSError, ValueError):
                continue
            if isinstance(cfg, dict) and cfg.get(self.rate_key) == self.native_rate:
                return d
        return None

    def checkpoint_dir(self) -> Path:
        """Directory with ``config.json`` and the weights: the ``--weights`` directory, else
        the project cache, else the HF cache, else (online) a download into the HF cache."""
        explicit = self.weights if self.weights is not None else self._project_cache_dir()
        path = weights.hf_snapshot(self.registry_name, self.repo_id, explicit=explicit,
                                   allow_patterns=["config.json", "*.safetensors", "*.safetensors.index.json"])
        if not (path / "config.json").is_file():
            raise weights.missing_weights_error(self.registry_name, f"{path / 'config.json'} does not exist",
                                                f"expected the {self.repo_id} files")
        if not any((path / f).is_file() for f in WEIGHT_FILES):
            raise weights.missing_weights_error(self.registry_name, f"{path} has no {WEIGHT_FILES[0]}",
                                                f"expected the {self.repo_id} files")
        return path

    def load(self) -> None:
        if self.model is not None:
            return
        transformers = import_transformers(self.registry_name)
        import torch

        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise CodecUnavailableError(f"{self.spec}: device {self.device} requested but CUDA is not "
                                        "available. Fix: use --device cpu")
        path = self.checkpoint_dir()
        cls = getattr(transformers, self.model_class)
        try:
            model, info = cls.from_pretrained(str(path), output_loading_info=True, dtype=torch.float32)
        except Exception as exc:  # a corrupt or foreign checkpoint surfaces as many exception types
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CodecUnavailableError(
                f"cannot load {self.spec} weights from {path} ({msg}). Fix: pass --weights "
                f"{self.registry_name}=DIR holding config.json and model.safetensors of {self.repo_id}"
            ) from None
        # transformers only warns about absent tensors and fills them randomly; a codec that
        # silently runs on random weights would poison a dataset, so refuse it.
        bad = sorted(info.get("missing_keys", ())) + [str(k) for k in info.get("mismatched_keys", ())]
        if bad:
            raise CodecUnavailableError(
                f"{path} is not a complete {self.model_class} checkpoint: {len(bad)} tensors missing or "
                f"mis-shaped (e.g. {bad[0]}). Fix: re-download {self.repo_id} or pass --weights "
                f"{self.registry_name}=DIR with its files"
            )
        self._check_model(model, path)
        self.model = model.eval().to(self.device)
        self._loaded = True

    def init_random(self, seed: int = 0) -> str:
        if self.repo_id not in self.official_architectures:
            return super().init_random(seed)
        transformers = import_transformers(self.registry_name)
        import torch

        model_cls = getattr(transformers, self.model_class)
        overrides = self.official_architectures[self.repo_id]
        config = model_cls.config_class(**overrides)
        # A transformers version that renamed or derives one of these would silently build
        # another architecture, and a timing would describe a model nobody ships.
        wrong = [k for k, v in overrides.items() if not _config_matches(getattr(config, k, None), v)]
        if wrong:
            raise CodecUnavailableError(
                f"transformers {transformers.__version__} does not build the {self.repo_id} architecture "
                f"({wrong[0]} = {getattr(config, wrong[0], None)!r}, expected {overrides[wrong[0]]!r}). "
                f"Fix: pass --weights {self.registry_name}=DIR with real weights")
        torch.manual_seed(seed)
        model = model_cls(config)
        with torch.no_grad():
            for name, buf in model.named_buffers():
                # transformers may start codebooks at zero, so every frame would get code 0 and
                # the decoder would ignore its input; random codebooks make output depend on audio.
                if name.endswith("codebook.embed"):
                    buf.normal_()
        self.model = model.eval().to(self.device)
        self._loaded = True
        n_params = sum(p.numel() for p in model.parameters())
        return f"random init, {self.repo_id} architecture ({n_params / 1e6:.1f} M parameters)"

    # ---- batched re-synthesis ---------------------------------------------------------
    def _groups(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped into forward passes: sorted by length so little is padded, and
        capped so one pass never holds more than ``max_batch_seconds`` of padded audio."""
        return self._length_groups([self._padded_length(n) for n in lengths], self._mixed_lengths_exact())

    def _batch_tensor(self, waves: list[np.ndarray]) -> tuple[Any, Any]:
        import torch

        valid = [self._padded_length(len(w)) for w in waves]
        x = np.zeros((len(waves), max(valid)), dtype=np.float32)
        for row, w in zip(x, waves):
            row[: len(w)] = w
        return (torch.from_numpy(x).to(self.device),
                torch.tensor(valid, dtype=torch.long, device=self.device))

    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        self.ensure_loaded()
        out: list[np.ndarray | None] = [None] * len(batch)
        for group in self._groups([len(w) for w in batch]):
            waves = [np.asarray(batch[i], dtype=np.float32) for i in group]
            x, valid = self._batch_tensor(waves)
            with torch.inference_mode():
                y = self._decode(self._encode(x, valid), valid)
            y = y.float().cpu().numpy()
            if y.shape[-1] < max(len(w) for w in waves):
                # The framework would zero-fill the gap silently; a short decode means the
                # padding rule does not match this checkpoint's architecture.
                raise RuntimeError(f"{self.spec}: model returned {y.shape[-1]} samples for a "
                                   f"{max(len(w) for w in waves)}-sample clip")
            for i, w, row in zip(group, waves, y):
                out[i] = np.ascontiguousarray(row[: len(w)])
        return out  # type: ignore[return-value]

    def codes(self, wave: np.ndarray) -> np.ndarray:
        """Integer codes (codebooks, frames) of one native-rate mono clip; for inspection."""
        import torch

        self.ensure_loaded()
        w = np.asarray(wave, dtype=np.float32)
        x, valid = self._batch_tensor([w])
        with torch.inference_mode():
            c = self._codes(self._encode(x, valid))
        return c[0].cpu().numpy()


class TargetBandwidthCodec(HFCodec):
    """A transformers codec whose configs pick one of the model's ``target_bandwidths``
    (``params["bandwidth"]``, kbps); loading refuses weights that lack it."""

    @property
    def bandwidth(self) -> float:
        return float(self.config.params["bandwidth"])

    def _check_model(self, model: Any, path: Path) -> None:
        super()._check_model(model, path)
        supported = [float(b) for b in model.config.target_bandwidths]
        if self.bandwidth not in supported:
            raise CodecUnavailableError(
                f"{self.spec}: the model in {path} supports {list(model.config.target_bandwidths)} kbps, not "
                f"{self.bandwidth:g}. Fix: choose one of those configs or pass the {self.repo_id} weights")
