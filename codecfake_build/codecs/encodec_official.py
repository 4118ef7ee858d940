"""EnCodec through Meta's official ``encodec`` package (PyPI 0.1.1): an optional second
backend for the ``encodec`` codec, selected by name (``--codec encodec-official@6kbps``).
It has the same configs and weights as ``encodec`` (which runs the transformers port) and
exists to cross-check that port against the reference implementation.

Why a separate registry name rather than a ``backend`` option on ``encodec``: a config
name is the whole operating point (``encodec@6kbps``), the listing and dataset cards
record codec names, and the two backends need different packages; a separate name keeps
``encodec`` untouched and makes the backend visible wherever a condition is recorded.

The package imports torchaudio at import time, which cannot load on many machines (here
among them), so it is not part of the core install; where it cannot be imported,
loading raises CodecUnavailableError with the reason and the fix.  NOT RUN in this
project's CI for that reason: the calls follow the package's documented API
(``EncodecModel.encodec_model_24khz/48khz(repository=...)``, ``set_target_bandwidth``,
``model(x)`` = encode + decode trimmed to the input length) and are tested against a
stand-in package with the same interface.

Weights: the package's own checkpoint files (``encodec_24khz-d7cc33bc.th``,
``encodec_48khz-7e698e3e.th``; the package checks their sha256 prefix), from
``--weights encodec-official=DIR``, ``$CODECFAKE_CACHE/encodec-official/``, torch hub's
cache, or the package's download from dl.fbaipublicfiles.com.

Batching: the reference call processes whatever length it is given (the 48 kHz model in
1 s normalised segments), so only clips of identical length share a forward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from codecfake_build.codecs import _torch_package as pkg
from codecfake_build.codecs import weights
from codecfake_build.codecs.base import CODECS, Codec, CodecUnavailableError
from codecfake_build.codecs.encodec import EncodecCodec

_NAME = "encodec-official"
_URL = "https://dl.fbaipublicfiles.com/encodec/v0/"
#: Per hub repo (the config's ``repo`` param): the package's checkpoint file and factory.
_CHECKPOINTS = {
    "facebook/encodec_24khz": ("encodec_24khz-d7cc33bc.th", "encodec_model_24khz"),
    "facebook/encodec_48khz": ("encodec_48khz-7e698e3e.th", "encodec_model_48khz"),
}
FIX_INSTALL = ("use --codec encodec (the transformers backend, same weights), or install the official "
               "package where torchaudio works: pip install encodec==0.1.1 torchaudio (the build "
               "matching your torch; kept out of the core install)")


@CODECS.register(_NAME)
class EncodecOfficialCodec(Codec):
    paper = EncodecCodec.paper
    sample_rate = EncodecCodec.sample_rate
    frame_size = EncodecCodec.frame_size
    configs = EncodecCodec.configs
    default_config = EncodecCodec.default_config
    weights_source = (f"{_URL}encodec_24khz-d7cc33bc.th and {_URL}encodec_48khz-7e698e3e.th "
                      "(official encodec package, github.com/facebookresearch/encodec)")
    licence = EncodecCodec.licence

    def __init__(self, config: str | None = None, device: str = "cpu", weights: str | None = None):
        super().__init__(config=config, device=device, weights=weights)
        self.model: Any = None

    @property
    def checkpoint_name(self) -> str:
        return _CHECKPOINTS[self.config.params["repo"]][0]

    def repository(self) -> Path | None:
        """Directory to pass as the package's ``repository`` (it holds the checkpoint), or
        None to let the package load it from torch hub's cache or download it."""
        name = self.checkpoint_name
        if self.weights is not None:
            p = Path(self.weights).expanduser()
            d = p.parent if p.is_file() else p
            if not (d / name).is_file():
                raise weights.missing_weights_error(_NAME, f"{d / name} does not exist",
                                                    f"the official file is {_URL}{name}")
            return d
        cache = weights.cache_dir(_NAME)
        if (cache / name).is_file():
            return cache
        import torch

        if (Path(torch.hub.get_dir()) / "checkpoints" / name).is_file():
            return None
        if weights.offline():
            raise weights.missing_weights_error(_NAME, f"{name} is not in {cache} nor in torch hub's cache",
                                                f"offline mode; the official file is {_URL}{name}")
        return None

    def load(self) -> None:
        if self.model is not None:
            return
        encodec = pkg.import_package(_NAME, "encodec", FIX_INSTALL)
        pkg.require_device(self.spec, self.device)
        repository = self.repository()
        factory = getattr(encodec.EncodecModel, _CHECKPOINTS[self.config.params["repo"]][1])
        try:
            model = factory(pretrained=True, repository=repository)
        except Exception as exc:  # download, checksum and state-dict errors come as many types
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            where = repository / self.checkpoint_name if repository else _URL + self.checkpoint_name
            raise CodecUnavailableError(f"the official encodec package could not load {where} ({first}). "
                                        f"Fix: pass --weights {_NAME}=DIR holding the official "
                                        f"{self.checkpoint_name}") from None
        model.set_target_bandwidth(float(self.config.params["bandwidth"]))
        self.model = model.eval().to(self.device)
        self._loaded = True

    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        self.ensure_loaded()
        channels = int(self.model.channels)
        out: list[np.ndarray | None] = [None] * len(batch)
        for group in self._length_groups([len(w) for w in batch], mixed=False):
            x = torch.from_numpy(np.stack([np.asarray(batch[i], dtype=np.float32) for i in group]))
            # The stereo 48 kHz model gets the mono clip on both channels, as in `encodec`.
            x = x[:, None, :].expand(-1, channels, -1).contiguous().to(self.device)
            with torch.inference_mode():
                y = self.model(x).mean(dim=1)
            for i, row in zip(group, y.float().cpu().numpy()):
                out[i] = np.ascontiguousarray(row)
        return out  # type: ignore[return-value]
