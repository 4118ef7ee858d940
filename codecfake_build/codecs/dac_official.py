"""DAC through Descript's official ``descript-audio-codec`` package (PyPI 1.0.0, import
name ``dac``): an optional second backend for the ``dac`` codec, selected by name
(``--codec dac-official@16khz``), with the same configs; it exists to cross-check the
transformers port that ``dac`` runs.  A separate name rather than a backend option, for
the reasons given in ``encodec_official``.

The package imports torchaudio, and its ``descript-audiotools`` dependency pins
protobuf < 3.20, which conflicts with the core install; it is therefore never a core
dependency, and where it cannot be imported, loading raises CodecUnavailableError with
the reason and the fix.  NOT RUN in this project's CI for that reason: the calls follow
the package's documented API (``dac.utils.download(model_type=...)``,
``dac.DAC.load(path)``, ``preprocess`` / ``encode`` / ``decode``) and are tested
against a stand-in package with the same interface.

encode / decode of the whole clip (``DAC.forward``'s path) rather than ``compress`` /
``decompress``: compress cuts audio longer than its window into chunks, so only the
former computes what ``dac`` (the transformers port of the same model) computes.

Weights: the release files ``dac.utils.download`` fetches from the GitHub releases
(latest "8kbps" tag per rate: 44khz 0.0.1, 24khz 0.0.4, 16khz 0.0.5), from
``--weights dac-official=FILE_OR_DIR``, ``$CODECFAKE_CACHE/dac-official/``, the package's
own cache (~/.cache/descript/dac/), or the package's download.  The package loads them
with its own ``DAC.load`` (audiotools' loader).

Batching: each clip is zero-padded to whole frames (the package's ``preprocess``); only
clips of identical padded length share a forward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from codecfake_build.codecs import _torch_package as pkg
from codecfake_build.codecs import weights
from codecfake_build.codecs.base import CODECS, Codec, CodecUnavailableError
from codecfake_build.codecs.dac import DacCodec

_NAME = "dac-official"
_RELEASES = "https://github.com/descriptinc/descript-audio-codec/releases/download"
#: Per config (= the package's model_type): latest tag of the "8kbps" model and its release asset.
_RELEASE = {"44khz": ("0.0.1", "weights.pth"), "24khz": ("0.0.4", "weights_24khz.pth"),
            "16khz": ("0.0.5", "weights_16khz.pth")}
FIX_INSTALL = ("use --codec dac (the transformers backend, same weights), or install the official package "
               "in a separate environment where torchaudio works: pip install descript-audio-codec==1.0.0 "
               "torchaudio (its descript-audiotools pins protobuf<3.20, so it stays out of the core install)")


@CODECS.register(_NAME)
class DacOfficialCodec(Codec):
    paper = DacCodec.paper
    sample_rate = DacCodec.sample_rate
    frame_size = DacCodec.frame_size
    configs = DacCodec.configs
    default_config = DacCodec.default_config
    weights_source = ", ".join(f"{_RELEASES}/{tag}/{asset}" for tag, asset in _RELEASE.values()) + \
        " (official descript-audio-codec package, github.com/descriptinc/descript-audio-codec)"
    licence = DacCodec.licence

    def __init__(self, config: str | None = None, device: str = "cpu", weights: str | None = None):
        super().__init__(config=config, device=device, weights=weights)
        self.model: Any = None

    @property
    def model_type(self) -> str:
        return self.config.name

    def _file_names(self) -> tuple[str, str]:
        """The name the package caches the file under, and the release asset's name."""
        tag, asset = _RELEASE[self.model_type]
        return f"weights_{self.model_type}_8kbps_{tag}.pth", asset

    def weights_file(self) -> Path | None:
        """The checkpoint to load, or None to let ``dac.utils.download`` fetch it."""
        names = self._file_names()
        if self.weights is not None:
            p = Path(self.weights).expanduser()
            if p.is_file():
                return p
            for n in names:
                if (p / n).is_file():
                    return p / n
            raise weights.missing_weights_error(_NAME, f"{p / names[0]} does not exist",
                                                f"or {names[1]}; the official file is {self._url()}")
        for d in (weights.cache_dir(_NAME), Path.home() / ".cache" / "descript" / "dac"):
            for n in names:
                if (d / n).is_file():
                    return d / n
        if weights.offline():
            raise weights.missing_weights_error(_NAME, f"{names[0]} is not in {weights.cache_dir(_NAME)}",
                                                f"offline mode; the official file is {self._url()}")
        return None

    def _url(self) -> str:
        tag, asset = _RELEASE[self.model_type]
        return f"{_RELEASES}/{tag}/{asset}"

    def load(self) -> None:
        if self.model is not None:
            return
        dac = pkg.import_package(_NAME, "dac", FIX_INSTALL)
        pkg.require_device(self.spec, self.device)
        path = self.weights_file()
        try:
            if path is None:
                path = Path(dac.utils.download(model_type=self.model_type))
            model = dac.DAC.load(str(path))
        except Exception as exc:  # download and loading errors come as many types
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CodecUnavailableError(f"the official dac package could not load {path or self._url()} "
                                        f"({first}). Fix: pass --weights {_NAME}=FILE with the official "
                                        f"{self._url()}") from None
        rate = int(getattr(model, "sample_rate", 0) or 0)
        if rate != self.native_rate:
            raise CodecUnavailableError(f"{path} holds a {rate} Hz DAC; {self.spec} needs {self.native_rate} Hz. "
                                        f"Fix: pass the official {self._url()}")
        self.model = model.eval().to(self.device)
        self._loaded = True

    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        self.ensure_loaded()
        hop = int(self.model.hop_length)
        padded = [max(1, -(-len(w) // hop)) * hop for w in batch]
        out: list[np.ndarray | None] = [None] * len(batch)
        for group in self._length_groups(padded, mixed=False):
            waves = [np.asarray(batch[i], dtype=np.float32) for i in group]
            x = np.zeros((len(waves), 1, padded[group[0]]), dtype=np.float32)
            for row, w in zip(x, waves):
                row[0, : len(w)] = w
            with torch.inference_mode():
                audio = self.model.preprocess(torch.from_numpy(x).to(self.device), self.native_rate)
                z = self.model.encode(audio)[0]
                y = self.model.decode(z)[:, 0, :]
            # Like DAC.forward, keep at most the clip's length; the 16/24 kHz decoders return 8
            # samples fewer than the padded input, which the framework zero-fills if needed.
            for i, w, row in zip(group, waves, y.float().cpu().numpy()):
                out[i] = np.ascontiguousarray(row[: len(w)])
        return out  # type: ignore[return-value]
