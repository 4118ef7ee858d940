"""HiFi-Codec (AcademiCodec): a HiFi-GAN autoencoder with group-residual VQ.

Released checkpoints (huggingface.co/Dongchao/AcademiCodec, files without an
extension) are ``torch.save`` dicts of three state dicts, ``generator``,
``encoder`` and ``quantizer``; the architecture is not stored in them but in the
repo's egs/HiFi-Codec-*/config_*.json, whose values are built in here
(``_hificodec_net.HiFiCodecArch``).  The network is our own PyTorch
implementation, checked against the official classes (tests/fixtures/hificodec_reference).

Each frame (hop 320 samples) carries 2 groups x 2 residual stages = 4 codes of
10 bits: 2 kbps at 16 kHz (50 frames/s), 3 kbps at 24 kHz (75 frames/s).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codecfake_build.codecs import weights
from codecfake_build.codecs.base import CODECS, Codec, CodecConfig, CodecUnavailableError

_NAME = "hificodec"
_REPO = "Dongchao/AcademiCodec"
#: The hub commit that added the last of these files (2023-07-28); pinned so a download
#: always fetches the same bytes.
_REVISION = "827e793904fe43cac45157efc26d0b6920cfda14"

#: Released architecture (both egs configs below share it); see HiFiCodecArch.
_GROUPS, _STAGES, _CODE_BITS, _HOP = 2, 2, 10, 320


def _config(name: str, checkpoint: str, rate: int, egs: str, description: str) -> CodecConfig:
    kbps = _GROUPS * _STAGES * _CODE_BITS * rate / _HOP / 1000
    return CodecConfig(name, kbps, {"checkpoint": checkpoint, "sample_rate": rate, "egs_config": egs},
                       f"{description}; {_GROUPS * _STAGES} codebooks of 1024 at {rate // _HOP} frames/s")


@CODECS.register(_NAME)
class HiFiCodec(Codec):
    paper = ("Yang et al., 'HiFi-Codec: Group-residual Vector quantization for High Fidelity Audio Codec', "
             "arXiv:2305.02765, 2023 (AcademiCodec)")
    sample_rate = 16000
    frame_size = _HOP
    configs = {c.name: c for c in (
        _config("16k-320d", "HiFi-Codec-16k-320d", 16000, "egs/HiFi-Codec-16k-320d/config_16k_320d.json",
                "16 kHz model (paper: public TTS corpora, LibriTTS, VCTK, AISHELL and more, >1000 h)"),
        _config("16k-320d-large-universal", "HiFi-Codec-16k-320d-large-universal", 16000,
                "egs/HiFi-Codec-16k-320d/config_16k_320d.json",
                "16 kHz 'large-universal' checkpoint (same architecture; training data not documented)"),
        _config("24k-320d", "HiFi-Codec-24k-320d", 24000, "egs/HiFi-Codec-24k-320d/config_24k_320d.json",
                "24 kHz model (paper: same training corpora)"),
    )}
    default_config = "16k-320d"
    weights_source = (f"https://huggingface.co/{_REPO} (architecture: "
                      "https://github.com/yangdongchao/AcademiCodec/tree/master/egs)")
    licence = ("code: MIT (AcademiCodec README; this is an independent re-implementation); "
               f"weights: huggingface.co/{_REPO} states no licence")

    #: Upper bound on native-rate seconds in one forward pass (batch x clip length).
    max_batch_seconds: ClassVar[float] = 30.0

    def __init__(self, config: str | None = None, device: str = "cpu", weights: str | None = None):
        super().__init__(config=config, device=device, weights=weights)
        self.net: Any = None

    # ---- architecture and weights ---------------------------------------------------------
    @property
    def checkpoint_name(self) -> str:
        return str(self.config.params["checkpoint"])

    def arch(self) -> Any:
        from codecfake_build.codecs._hificodec_net import HiFiCodecArch

        return HiFiCodecArch.from_dict(dict(self.config.params.get("arch", {})))

    def checkpoint_path(self) -> Path:
        """The official checkpoint file: ``--weights`` (the file, or a directory holding
        it), else ``$CODECFAKE_CACHE/hificodec/<file>``, else the HF cache, else (online)
        a download of that one file from the hub into the HF cache."""
        name = self.checkpoint_name
        if self.weights is not None and Path(self.weights).expanduser().is_file():
            path = Path(self.weights).expanduser()
            others = {c.params["checkpoint"] for c in self.configs.values()} - {name}
            if path.name in others:
                # The 16 and 24 kHz files have identical tensor shapes, so only the name tells.
                raise CodecUnavailableError(
                    f"{path} is the {path.name} checkpoint, but {self.spec} needs {name}. Fix: choose the "
                    f"config that matches the file or pass --weights {_NAME}=PATH/{name}")
            return path
        found = weights.find_files(_NAME, [name], self.weights)
        if found is not None:
            return found / name
        try:
            snap = weights.hf_snapshot(_NAME, _REPO, revision=_REVISION, allow_patterns=[name])
        except CodecUnavailableError:
            why = ("offline mode: CODECFAKE_OFFLINE or HF_HUB_OFFLINE is set" if weights.offline()
                   else f"downloading it from huggingface.co/{_REPO} failed")
            raise weights.missing_weights_error(
                _NAME, f"{name} is neither in {weights.cache_dir(_NAME)} nor in the HF cache", why) from None
        if not (snap / name).is_file():
            raise weights.missing_weights_error(_NAME, f"{snap / name} does not exist",
                                                f"expected the file {name} of {_REPO}")
        return snap / name

    def _check_device(self) -> None:
        import torch

        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise CodecUnavailableError(f"{self.spec}: device {self.device} requested but CUDA is not "
                                        "available. Fix: use --device cpu")

    def load(self) -> None:
        if self.net is not None:
            return
        import torch

        from codecfake_build.codecs import _hificodec_net as hn

        self._check_device()
        path = self.checkpoint_path()
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated files and foreign pickles raise many types
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CodecUnavailableError(
                f"cannot read {path} as a HiFi-Codec checkpoint ({msg[:200]}). Fix: re-download {self.checkpoint_name} "
                f"from huggingface.co/{_REPO} or pass --weights {_NAME}=PATH") from None
        absent = [p for p in hn.PARTS if not isinstance(ckpt, dict) or not isinstance(ckpt.get(p), dict)]
        if absent:
            raise CodecUnavailableError(
                f"{path} is not an official HiFi-Codec checkpoint: no '{absent[0]}' state dict (the official "
                f"files hold 'generator', 'encoder' and 'quantizer'). Fix: use {self.checkpoint_name} from "
                f"huggingface.co/{_REPO}")
        arch = self.arch()
        with torch.device("meta"):
            net = hn.HiFiCodecNet(arch)
        flat = hn.flatten_official(ckpt)
        problems = hn.check_official(net, flat)
        if problems:
            raise CodecUnavailableError(
                f"{path} is not a complete {self.checkpoint_name} checkpoint: {len(problems)} tensors missing, "
                f"unexpected or mis-shaped (e.g. {problems[0]}). Fix: re-download it from huggingface.co/{_REPO}")
        net.load_state_dict(hn.fold_official_state(flat), assign=True)
        self.net = net.eval().to(self.device)
        self._loaded = True

    def init_random(self, seed: int = 0) -> str:
        import torch

        from codecfake_build.codecs import _hificodec_net as hn

        self._check_device()
        arch = self.arch()
        torch.manual_seed(seed)
        self.net = hn.HiFiCodecNet(arch).eval().to(self.device)
        self._loaded = True
        n = hn.official_parameter_count(arch)
        return f"random init, {self.checkpoint_name} architecture ({n / 1e6:.1f} M parameters)"

    # ---- coding ---------------------------------------------------------------------------
    def _padded_length(self, n: int) -> int:
        # The official encoder's strided convolutions drop a trailing partial frame (its output
        # is floor(n / hop) frames); a dataset clip would then end in framework-added silence.
        # Zero-padding to whole frames codes the tail instead.  Clips whose length is a multiple
        # of the hop see exactly the official computation.
        hop = self.native_frame_size
        return max(1, math.ceil(n / hop)) * hop

    def _groups(self, lengths: list[int]) -> list[list[int]]:
        """Forward passes: only clips of equal padded length share one.  The encoder's
        GroupNorms average over the whole clip and every layer is non-causal, so padding a
        clip further would change all of its output; equal lengths need no extra padding."""
        return self._length_groups([self._padded_length(n) for n in lengths], mixed=False)

    def _batch(self, waves: list[np.ndarray]) -> Any:
        import torch

        x = np.zeros((len(waves), self._padded_length(len(waves[0]))), dtype=np.float32)
        for row, w in zip(x, waves):
            row[: len(w)] = w
        return torch.from_numpy(x).to(self.device)

    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        self.ensure_loaded()
        out: list[np.ndarray | None] = [None] * len(batch)
        for group in self._groups([len(w) for w in batch]):
            waves = [np.asarray(batch[i], dtype=np.float32) for i in group]
            with torch.inference_mode():
                y = self.net(self._batch(waves)).float().cpu().numpy()
            for i, w, row in zip(group, waves, y):
                out[i] = np.ascontiguousarray(row[: len(w)])
        return out  # type: ignore[return-value]

    def codes(self, wave: np.ndarray) -> np.ndarray:
        """Integer codes (frames, 4) of one native-rate mono clip (official layout:
        stage-0 groups, then stage-1 groups); for inspection."""
        import torch

        self.ensure_loaded()
        with torch.inference_mode():
            c = self.net.encode(self._batch([np.asarray(wave, dtype=np.float32)]))
        return c[0].cpu().numpy()
