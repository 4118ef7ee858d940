"""AudioDec (facebookresearch/AudioDec): Meta's streaming neural speech codec.

The ``24khz`` config is the official ``libritts_v1`` model: the encoder, projector
and 8 x 1024 residual VQ of the ``symAD_libritts_24000_hop300`` autoencoder with the
``AudioDec_v1_symAD_libritts_24000_hop300_clean`` HiFi-GAN vocoder as decoder
(80 frames/s x 8 codebooks x 10 bits = 6.4 kbps), exactly the chain the repository's
``demoFile.py --model libritts_v1`` runs.  AudioDec is not on PyPI; the network is
implemented in ``_audiodec_net.py`` and loads the official checkpoint files
(``checkpoint-500000steps.pkl`` with ``config.yml`` beside it, as in the released
``exp`` folder).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codecfake_build.atomic import FILE_MODE
from codecfake_build.codecs import weights
from codecfake_build.codecs.base import CODECS, Codec, CodecConfig, CodecUnavailableError

_NAME = "audiodec"
_ZIP_URL = "https://github.com/facebookresearch/AudioDec/releases/download/pretrain_models_v02/exp.zip"


def _config(name: str, autoencoder: str, vocoder: str, description: str) -> CodecConfig:
    return CodecConfig(name, 6.4, {"autoencoder": autoencoder, "vocoder": vocoder, "steps": 500000},
                       description)


@CODECS.register(_NAME)
class AudioDecCodec(Codec):
    paper = ("Wu, Gebru, Markovic, Richard, 'AudioDec: An Open-source Streaming High-fidelity Neural "
             "Audio Codec', ICASSP 2023 (IEEE Xplore 10096509)")
    sample_rate = 24000
    frame_size = 300
    configs = {c.name: c for c in (
        _config("24khz", "symAD_libritts_24000_hop300", "AudioDec_v1_symAD_libritts_24000_hop300_clean",
                "official libritts_v1: symAD encoder + 8x1024 residual VQ at 80 frames/s, HiFi-GAN v1 "
                "vocoder (LibriTTS clean)"),
    )}
    default_config = "24khz"
    weights_source = _ZIP_URL
    licence = "CC-BY-NC-4.0 (facebookresearch/AudioDec code and pretrained models)"

    #: The official archive; a test points it at a file:// URL.
    weights_url: ClassVar[str] = _ZIP_URL
    #: Upper bound on padded native-rate seconds in one forward pass (clips x longest clip):
    #: the vocoder's last layers hold ~100 channels per output sample, ~0.4 GB per 10 s.
    max_batch_seconds: ClassVar[float] = 30.0

    def __init__(self, config: str | None = None, device: str = "cpu", weights: str | None = None):
        super().__init__(config=config, device=device, weights=weights)
        self.model: Any = None

    # ---- where the files are -----------------------------------------------------------
    def _files(self) -> dict[str, str]:
        """The files of this config, relative to the official ``exp`` folder."""
        p = self.config.params
        ckpt = f"checkpoint-{p['steps']}steps.pkl"
        return {"autoencoder": f"autoencoder/{p['autoencoder']}/{ckpt}",
                "autoencoder config": f"autoencoder/{p['autoencoder']}/config.yml",
                "vocoder": f"vocoder/{p['vocoder']}/{ckpt}",
                "vocoder config": f"vocoder/{p['vocoder']}/config.yml"}

    def _checkpoints(self) -> list[str]:
        f = self._files()
        return [f["autoencoder"], f["vocoder"]]

    def weights_dir(self) -> Path:
        """The ``exp`` folder holding both checkpoints: ``--weights`` (the ``exp`` folder or the
        AudioDec checkout containing it), else the cache, else (online) the official archive
        unpacked into the cache."""
        needed = self._checkpoints()
        explicit = self.weights
        if explicit is not None:
            p = Path(explicit).expanduser()
            if (p / "exp").is_dir() and not (p / needed[0]).is_file():
                explicit = str(p / "exp")
        found = weights.find_files(_NAME, needed, explicit)
        if found is not None:
            return found
        cache = weights.cache_dir(_NAME)
        missing = [f for f in needed if not (cache / f).is_file()]
        if weights.offline():
            raise weights.missing_weights_error(
                _NAME, f"{cache / missing[0]} does not exist", "offline mode: CODECFAKE_OFFLINE or HF_HUB_OFFLINE is set")
        self._download(cache)
        return cache

    def _download(self, cache: Path) -> None:
        """Fetch the official ``exp.zip`` and unpack only this config's files into ``cache``;
        each file lands by an atomic rename, and the archive is deleted afterwards."""
        archive = cache / ".exp.zip"
        try:
            weights.download(self.weights_url, archive)
        except (OSError, ValueError) as exc:  # URLError is an OSError
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise weights.missing_weights_error(
                _NAME, f"{self._checkpoints()[0]} could not be downloaded from {self.weights_url}", detail) from None
        try:
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
                # configs first: the checkpoints' presence is what marks the cache complete.
                for key in ("autoencoder config", "vocoder config", "autoencoder", "vocoder"):
                    rel = self._files()[key]
                    member = next((n for n in names if n == rel or n.endswith("/" + rel)), None)
                    if member is None:
                        if key.endswith("config"):
                            continue  # optional: the released hyper-parameters are the defaults
                        raise weights.missing_weights_error(_NAME, f"{self.weights_url} has no {rel}")
                    _extract_atomic(zf, member, cache / rel)
        except zipfile.BadZipFile:
            raise weights.missing_weights_error(_NAME, f"{self.weights_url} is not a zip archive",
                                                "download it again") from None
        finally:
            archive.unlink(missing_ok=True)

    # ---- loading -------------------------------------------------------------------------
    def load(self) -> None:
        if self.model is not None:
            return
        torch = _import_torch()
        from codecfake_build.codecs import _audiodec_net as net

        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise CodecUnavailableError(f"{self.spec}: device {self.device} requested but CUDA is not "
                                        "available. Fix: use --device cpu")
        d = self.weights_dir()
        files = self._files()
        ae_params = _generator_params(d / files["autoencoder config"], "symAudioDec")
        voc_params = _generator_params(d / files["vocoder config"], "HiFiGAN")
        try:
            # Without config.yml the released hyper-parameters (the dataclass defaults) apply.
            ae_cfg = (net.AnalysisConfig() if ae_params is None else
                      net.AnalysisConfig.from_generator_params(ae_params, str(d / files["autoencoder config"])))
            voc_cfg = (net.VocoderConfig() if voc_params is None else
                       net.VocoderConfig.from_generator_params(voc_params, str(d / files["vocoder config"])))
            model = net.AudioDecModel(ae_cfg, voc_cfg)
        except (net.UnsupportedConfigError, TypeError) as exc:
            raise CodecUnavailableError(f"{exc}. Fix: use the {self.config.params['autoencoder']} / "
                                        f"{self.config.params['vocoder']} files from {self.weights_source}") from None
        _load_generator(model.analysis, d / files["autoencoder"])
        _load_generator(model.vocoder, d / files["vocoder"])
        self._use(model)

    def _use(self, model: Any) -> None:
        model = model.eval().to(self.device)
        model.prime()
        self.model = model
        self._loaded = True

    def init_random(self, seed: int = 0) -> str:
        torch = _import_torch()
        from codecfake_build.codecs import _audiodec_net as net

        torch.manual_seed(seed)
        # The defaults of both configs are the released libritts_v1 hyper-parameters.
        model = net.AudioDecModel(net.AnalysisConfig(), net.VocoderConfig())
        self._use(model)
        n_params = sum(p.numel() for p in model.parameters())
        p = self.config.params
        return (f"random init, AudioDec {p['autoencoder']} encoder + {p['vocoder']} vocoder "
                f"({n_params / 1e6:.1f} M parameters)")

    # ---- coding ----------------------------------------------------------------------------
    def _groups(self, lengths: list[int]) -> list[list[int]]:
        """Indices per forward pass: sorted by length, at most ``max_batch_seconds`` padded.
        Clips of any lengths may share a pass: every layer is causal and clips are padded
        on the right, so padding never reaches a clip's own samples (tested)."""
        return self._length_groups(lengths, mixed=True)

    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        self.ensure_loaded()
        out: list[np.ndarray | None] = [None] * len(batch)
        for group in self._groups([len(w) for w in batch]):
            waves = [np.asarray(batch[i], dtype=np.float32) for i in group]
            x = np.zeros((len(waves), max(len(w) for w in waves)), dtype=np.float32)
            for row, w in zip(x, waves):
                row[: len(w)] = w
            with torch.inference_mode():
                y = self.model(torch.from_numpy(x).to(self.device)).float().cpu().numpy()
            for i, w, row in zip(group, waves, y):
                out[i] = np.ascontiguousarray(row[: len(w)])
        return out  # type: ignore[return-value]

    def codes(self, wave: np.ndarray) -> np.ndarray:
        """Integer codes (codebooks, frames) of one native-rate mono clip; for inspection."""
        import torch

        self.ensure_loaded()
        x = torch.from_numpy(np.asarray(wave, dtype=np.float32))[None].to(self.device)
        with torch.inference_mode():
            return self.model.encode(x)[0].cpu().numpy()


# ---- helpers ---------------------------------------------------------------------------------
def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise CodecUnavailableError(f"codec '{_NAME}' needs torch, which cannot be imported ({exc}). "
                                    "Fix: pip install torch") from None
    return torch


def _extract_atomic(zf: zipfile.ZipFile, member: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.fchmod(fd, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh, zf.open(member) as src:
            while chunk := src.read(1 << 20):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _generator_params(path: Path, model_type: str) -> dict[str, Any] | None:
    """``generator_params`` from an official ``config.yml``; None when the file is absent."""
    if not path.is_file():
        return None
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CodecUnavailableError(f"cannot read {path} ({str(exc).splitlines()[0]}). Fix: restore it from "
                                    f"{_ZIP_URL} or delete it to use the released settings") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("generator_params"), dict):
        raise CodecUnavailableError(f"{path} has no generator_params. Fix: restore it from {_ZIP_URL}")
    if cfg.get("model_type", model_type) != model_type:
        raise CodecUnavailableError(f"{path} describes a {cfg['model_type']} model, not {model_type}. "
                                    f"Fix: pass the AudioDec exp folder from {_ZIP_URL}")
    return cfg["generator_params"]


def _load_generator(module: Any, path: Path) -> None:
    """Copy ``['model']['generator']`` of an official training checkpoint into ``module``;
    refuse a checkpoint that lacks or mis-shapes any tensor the module needs.  Tensors it
    does not need (the autoencoder's own decoder, streaming buffers, EMA statistics) are
    ignored."""
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
        state = ckpt["model"]["generator"]
    except (KeyError, TypeError):
        raise CodecUnavailableError(f"{path} is not an AudioDec training checkpoint (no ['model']['generator']). "
                                    f"Fix: use the file from {_ZIP_URL}") from None
    except Exception as exc:  # unpickling errors come as many types
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CodecUnavailableError(f"cannot read {path} ({msg}). Fix: download it again from {_ZIP_URL}") from None
    own = module.state_dict()
    bad = [k for k, v in own.items() if k not in state or tuple(state[k].shape) != tuple(v.shape)]
    if bad:
        got = tuple(state[bad[0]].shape) if bad[0] in state else "missing"
        raise CodecUnavailableError(
            f"{path} is not a complete checkpoint for this model: {len(bad)} tensors missing or mis-shaped "
            f"(e.g. {bad[0]}: {got}, expected {tuple(own[bad[0]].shape)}). Fix: use the matching config.yml "
            f"and checkpoint from {_ZIP_URL}")
    module.load_state_dict({k: state[k].float() for k in own})
