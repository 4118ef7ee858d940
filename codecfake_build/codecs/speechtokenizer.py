"""SpeechTokenizer (Zhang et al., ICLR 2024) through the official ``speechtokenizer``
1.0.1 package, with the released ``fnlp/SpeechTokenizer`` checkpoint
(``speechtokenizer_hubert_avg/config.json`` + ``SpeechTokenizer.pt``).

The model: a SEANet encoder with a 2-layer *bidirectional* LSTM, strides 8x5x4x2
(hop 320 samples at 16 kHz = 50 frames/s), an 8-layer residual VQ of 1024-entry
codebooks (10 bits) and a SEANet decoder.  The configs choose how many RVQ layers are
kept: ``nqK`` = K x 10 bits x 50 frames/s = 0.5 K kbps (the first layer carries the
HuBERT-distilled "semantic" content, the rest add acoustic detail).

Import: ``import speechtokenizer`` runs the package's ``__init__``, which also imports
its trainer (torchaudio, accelerate, lion-pytorch, beartype, tensorboard) - none of
which inference needs, and torchaudio cannot load on many machines.  So only the model
module is imported: the package directory is registered without executing its
``__init__`` and ``speechtokenizer.model`` is imported from it (it needs only torch,
numpy and einops).

Padding and batching: each clip is zero-padded to whole 320-sample frames (the
package's own layers would otherwise reflect-pad the last partial frame at every
stride; for clips that are whole frames long both are identical).  The encoder is not
causal (bidirectional LSTM, centred convolutions with reflection padding), so padding
a clip further would change its own codes: only clips of equal padded length share a
forward pass.  ``delay`` is 0: the decoder output is index-aligned with the input.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from codecfake_build.codecs import _torch_package as pkg
from codecfake_build.codecs import weights
from codecfake_build.codecs.base import CODECS, Codec, CodecConfig, CodecUnavailableError

_NAME = "speechtokenizer"
_REPO = "fnlp/SpeechTokenizer"
_SUBDIR = "speechtokenizer_hubert_avg"
_FILES = ("config.json", "SpeechTokenizer.pt")
_FIX_INSTALL = (f"{pkg.CODECS_EXTRA}, or: pip install --no-deps speechtokenizer==1.0.1 einops "
                "(its declared torchaudio/accelerate deps are for training only)")
_FIX_WEIGHTS = (f"pass --weights {_NAME}=DIR holding {_SUBDIR}/config.json and SpeechTokenizer.pt "
                f"from https://huggingface.co/{_REPO}")

#: The released speechtokenizer_hubert_avg/config.json values the model is built from
#: (the training-only keys - losses, learning rate, data paths - are left out).
RELEASED_CONFIG: dict[str, Any] = {
    "n_filters": 64, "strides": [8, 5, 4, 2], "dimension": 1024, "semantic_dimension": 768,
    "bidirectional": True, "dilation_base": 2, "residual_kernel_size": 3, "n_residual_layers": 1,
    "lstm_layers": 2, "activation": "ELU", "codebook_size": 1024, "n_q": 8, "sample_rate": 16000,
}
#: Keys the package's SpeechTokenizer(config) reads; a config lacking one builds a broken model.
_ARCH_KEYS = tuple(k for k in RELEASED_CONFIG if k != "sample_rate")


def _nq(n: int) -> CodecConfig:
    return CodecConfig(f"nq{n}", n * 0.5, {"n_q": n},
                       f"SpeechTokenizer, first {n} of 8 RVQ layers x 10 bit at 50 frames/s")


def import_model_class() -> Any:
    """The package's ``SpeechTokenizer`` class, from ``speechtokenizer.model`` only (see the
    module docstring for why the package ``__init__`` is skipped)."""
    mod = sys.modules.get("speechtokenizer.model")
    if mod is None:
        pkg.import_package(_NAME, "torch", _FIX_INSTALL)
        pkg.import_package(_NAME, "einops", _FIX_INSTALL)
        spec = importlib.util.find_spec("speechtokenizer")
        if spec is None or not spec.submodule_search_locations:
            raise CodecUnavailableError(f"codec '{_NAME}' needs the Python package 'speechtokenizer' "
                                        f"(1.0.1), which is not installed. Fix: {_FIX_INSTALL}")
        if "speechtokenizer" not in sys.modules:
            # The package object without its __init__ executed: submodules resolve
            # through its __path__, the trainer is never imported.
            sys.modules["speechtokenizer"] = importlib.util.module_from_spec(spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's old weight_norm API
            mod = pkg.import_package(_NAME, "speechtokenizer.model", _FIX_INSTALL)
    return mod.SpeechTokenizer


def _dir_with_files(p: Path) -> Path | None:
    """``p`` or ``p/speechtokenizer_hubert_avg`` (the hub layout), whichever holds both files."""
    for d in (p, p / _SUBDIR):
        if all((d / f).is_file() for f in _FILES):
            return d
    return None


@CODECS.register(_NAME)
class SpeechTokenizerCodec(Codec):
    paper = ("Zhang, Zhang, Li, Zhou, Qiu, 'SpeechTokenizer: Unified Speech Tokenizer for Speech "
             "Large Language Models', ICLR 2024 (arXiv:2308.16692)")
    sample_rate = 16000
    frame_size = 320
    configs = {c.name: c for c in (_nq(n) for n in range(1, 9))}
    default_config = "nq8"
    weights_source = (f"https://huggingface.co/{_REPO} ({_SUBDIR}/config.json, {_SUBDIR}/SpeechTokenizer.pt); "
                      "code: PyPI speechtokenizer 1.0.1 (github.com/ZhangXInFD/SpeechTokenizer)")
    licence = "code Apache-2.0; weights: see the fnlp/SpeechTokenizer model card"

    def __init__(self, config: str | None = None, device: str = "cpu", weights: str | None = None):
        super().__init__(config=config, device=device, weights=weights)
        self.model: Any = None

    @property
    def n_q(self) -> int:
        return int(self.config.params["n_q"])

    # ---- weights ---------------------------------------------------------------------
    def checkpoint_dir(self) -> Path:
        """Directory with config.json and SpeechTokenizer.pt: the ``--weights`` path (that
        directory, its ``speechtokenizer_hubert_avg/``, or one of the two files), else
        ``$CODECFAKE_CACHE/speechtokenizer/``, else the HF cache / a download of the hub repo."""
        if self.weights is not None:
            p = Path(self.weights).expanduser()
            if p.is_file():
                p = p.parent
            found = _dir_with_files(p)
            if found is None:
                d = p / _SUBDIR if (p / _SUBDIR).is_dir() else p
                missing = next(f for f in _FILES if not (d / f).is_file())
                raise weights.missing_weights_error(_NAME, f"{d / missing} does not exist",
                                                    f"expected the {_REPO} {_SUBDIR}/ files")
            return found
        found = _dir_with_files(weights.cache_dir(_NAME))
        if found is not None:
            return found
        snap = weights.hf_snapshot(_NAME, _REPO, allow_patterns=[f"{_SUBDIR}/{f}" for f in _FILES])
        found = _dir_with_files(snap)
        if found is None:
            missing = next(f for f in _FILES if not (snap / _SUBDIR / f).is_file())
            raise weights.missing_weights_error(_NAME, f"{snap / _SUBDIR / missing} does not exist",
                                                f"incomplete {_REPO} download")
        return found

    def _read_config(self, path: Path) -> dict[str, Any]:
        try:
            cfg = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CodecUnavailableError(f"cannot read {path} ({exc}). Fix: {_FIX_WEIGHTS}") from None
        if not isinstance(cfg, dict):
            raise CodecUnavailableError(f"{path} is not a JSON object. Fix: {_FIX_WEIGHTS}")
        lacking = [k for k in _ARCH_KEYS if k not in cfg]
        if lacking:
            raise CodecUnavailableError(f"{path} lacks '{lacking[0]}', which the model needs. Fix: {_FIX_WEIGHTS}")
        rate = cfg.get("sample_rate", cfg.get("sampling_rate"))
        if rate != self.sample_rate:
            raise CodecUnavailableError(f"{path} describes a {rate} Hz model; {self.spec} needs "
                                        f"{self.sample_rate} Hz. Fix: {_FIX_WEIGHTS}")
        hop = int(np.prod(cfg["strides"]))
        if hop != self.frame_size:
            raise CodecUnavailableError(f"{path}: strides {cfg['strides']} give hop {hop}, not "
                                        f"{self.frame_size}. Fix: {_FIX_WEIGHTS}")
        if int(cfg["n_q"]) < self.n_q:
            raise CodecUnavailableError(f"{path} has {cfg['n_q']} RVQ layers but {self.spec} uses "
                                        f"{self.n_q}. Fix: choose nq1..nq{cfg['n_q']} or {_FIX_WEIGHTS}")
        return cfg

    def _build(self, cfg: dict[str, Any]) -> Any:
        cls = import_model_class()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's old weight_norm API
            return cls(cfg)

    def load(self) -> None:
        if self.model is not None:
            return
        import_model_class()  # a missing package is reported before anything is looked up
        pkg.require_device(self.spec, self.device)
        d = self.checkpoint_dir()
        cfg = self._read_config(d / "config.json")
        model = self._build(cfg)
        state = pkg.load_state_dict_file(d / "SpeechTokenizer.pt", _FIX_WEIGHTS)
        pkg.check_state_dict(model, state, d / "SpeechTokenizer.pt", _FIX_WEIGHTS)
        model.load_state_dict(state)
        self.model = model.eval().to(self.device)
        self._loaded = True

    def init_random(self, seed: int = 0) -> str:
        import torch

        torch.manual_seed(seed)
        model = self._build(dict(RELEASED_CONFIG))
        with torch.no_grad():
            for name, buf in model.named_buffers():
                # The package starts codebooks at zero and fills them by k-means on the first
                # training batch; random codebooks make the codes depend on the audio.
                if name.endswith("_codebook.embed"):
                    buf.normal_()
                elif name.endswith("_codebook.inited"):
                    buf.fill_(1.0)
        self.model = model.eval().to(self.device)
        self._loaded = True
        n = sum(p.numel() for p in model.parameters())
        return f"random init, {_REPO} {_SUBDIR} architecture ({n / 1e6:.1f} M parameters)"

    # ---- coding ------------------------------------------------------------------------
    def _padded_length(self, n: int) -> int:
        return max(1, -(-n // self.frame_size)) * self.frame_size

    def _codes_and_audio(self, waves: list[np.ndarray]) -> tuple[Any, Any]:
        """One forward pass over clips of equal padded length: codes (n_q, B, frames), audio (B, T)."""
        import torch

        length = self._padded_length(max(len(w) for w in waves))
        x = np.zeros((len(waves), 1, length), dtype=np.float32)
        for row, w in zip(x, waves):
            row[0, : len(w)] = w
        with torch.inference_mode():
            codes = self.model.encode(torch.from_numpy(x).to(self.device), n_q=self.n_q)
            y = self.model.decode(codes)
        return codes, y[:, 0, :]

    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        self.ensure_loaded()
        padded = [self._padded_length(len(w)) for w in batch]
        out: list[np.ndarray | None] = [None] * len(batch)
        for group in self._length_groups(padded, mixed=False):
            waves = [np.asarray(batch[i], dtype=np.float32) for i in group]
            _, y = self._codes_and_audio(waves)
            y = y.float().cpu().numpy()
            for i, w, row in zip(group, waves, y):
                out[i] = np.ascontiguousarray(row[: len(w)])
        return out  # type: ignore[return-value]

    def codes(self, wave: np.ndarray) -> np.ndarray:
        """Integer codes (n_q, frames) of one 16 kHz mono clip; for inspection."""
        self.ensure_loaded()
        codes, _ = self._codes_and_audio([np.asarray(wave, dtype=np.float32)])
        return codes[:, 0, :].cpu().numpy()
