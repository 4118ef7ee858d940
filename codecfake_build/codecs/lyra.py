"""Lyra v2 (google/lyra v1.3.2): Google's SoundStream-family neural codec.

Three TFLite models run per 20 ms frame: the SoundStream encoder (320 samples
-> one 64-dim embedding), a residual vector quantizer (up to 46 stages of
4 bits; the number of stages sets the bitrate) and the LyraGAN decoder
(embedding -> 320 samples).  The published models are streaming models that
keep state between calls, so every utterance starts from fresh state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codecfake_build.codecs import weights
from codecfake_build.codecs.base import CODECS, Codec, CodecConfig, CodecUnavailableError

_NAME = "soundstream-lyra"


def _stages(kbps: float, n: int) -> CodecConfig:
    # 50 frames/s x 4 bits per stage: 16 -> 3.2, 30 -> 6.0, 46 -> 9.2 kbps.
    return CodecConfig(f"{kbps:g}kbps", kbps, {"num_quantizers": n},
                       f"Lyra v2 SoundStream, {n} residual VQ stages of 4 bits at 50 frames/s")


@CODECS.register(_NAME)
class LyraCodec(Codec):
    paper = ("Zeghidour et al., 'SoundStream: An End-to-End Neural Audio Codec', IEEE/ACM TASLP 2021; "
             "Lyra v2 (google/lyra v1.3.2) is Google's released SoundStream-based codec")
    sample_rate = 16000
    frame_size = 320
    configs = {c.name: c for c in (_stages(3.2, 16), _stages(6, 30), _stages(9.2, 46))}
    default_config = "9.2kbps"
    weights_source = "https://github.com/google/lyra/tree/v1.3.2/lyra/model_coeffs"
    supports_amp = False
    licence = "Apache-2.0"

    #: Where missing weights are downloaded from; a test points it at a file:// URL.
    weights_url_base: ClassVar[str] = "https://raw.githubusercontent.com/google/lyra/v1.3.2/lyra/model_coeffs"
    #: SHA-256 of each file as published at tag v1.3.2 (their git blob ids match that tag's
    #: tree), so a truncated or substituted download is rejected before it reaches the cache.
    weight_files: ClassVar[dict[str, str]] = {
        "soundstream_encoder.tflite": "237da0b16226fb0a68d49551c81bebf614e42142af72764448359f68581e88f1",
        "quantizer.tflite": "841ee05989687d32d1f616a8ad1419fc7eda37599d3c05c7cf5a0d60ccf8ac5c",
        "lyragan.tflite": "50e7839cda4f30599a3a34cfaddcd9c98449b049eee884e1a74295780448ad06",
    }

    def __init__(self, config: str | None = None, device: str = "cpu", weights: str | None = None):
        super().__init__(config=config, device=device, weights=weights)
        self._model_bytes: dict[str, bytes] | None = None
        self._interpreter_cls: Any = None

    @property
    def delay(self) -> int:
        # Measured 0 samples: the cross-correlation of the decoded output with the input
        # peaks at lag 0 on lyra_testdata sample1/sample2, ARCTIC a0007 and LJ001-0001,
        # at 16 and at 46 stages (sample1: r = 0.921 / 0.935 / 0.923 at lags -1 / 0 / +1).
        # The published streaming models already emit each 20 ms frame in step with the
        # input frame it came from, so nothing is dropped.
        return 0

    # ---- weights ---------------------------------------------------------------------
    def weights_dir(self) -> Path:
        """Directory holding all three model files: the explicit ``--weights`` path, the
        cache, or (when online) a fresh download of the missing ones into the cache."""
        files = list(self.weight_files)
        found = weights.find_files(_NAME, files, self.weights)
        if found is not None:
            return found
        cache = weights.cache_dir(_NAME)
        missing = [f for f in files if not (cache / f).is_file()]
        if weights.offline():
            raise weights.missing_weights_error(
                _NAME, f"{', '.join(missing)} not in {cache}",
                "offline mode: CODECFAKE_OFFLINE or HF_HUB_OFFLINE is set")
        for f in missing:
            url = f"{self.weights_url_base.rstrip('/')}/{f}"
            try:
                weights.download(url, cache / f, sha256=self.weight_files[f])
            except (OSError, ValueError) as exc:  # URLError is an OSError
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise weights.missing_weights_error(
                    _NAME, f"{f} could not be downloaded from {url}", detail) from None
        return cache

    def load(self) -> None:
        if self._model_bytes is not None:
            return
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise CodecUnavailableError(
                f"codec '{_NAME}' needs the TFLite runtime ai-edge-litert, which cannot be imported "
                f"({exc}). Fix: pip install 'codecfake-bench[lyra]'") from None
        d = self.weights_dir()
        self._interpreter_cls = Interpreter
        self._model_bytes = {f: (d / f).read_bytes() for f in self.weight_files}
        try:
            stages = self._new_stream().max_stages
        except Exception:
            self._model_bytes = None
            raise
        need = int(self.config.params["num_quantizers"])
        if need > stages:
            self._model_bytes = None
            raise CodecUnavailableError(
                f"{d / 'quantizer.tflite'} has {stages} quantizer stages but {self.spec} needs {need}. "
                f"Fix: use the google/lyra v1.3.2 model files")
        self._loaded = True

    def _new_stream(self) -> "_LyraStream":
        assert self._model_bytes is not None
        return _LyraStream(self._interpreter_cls, self._model_bytes)

    # ---- coding ------------------------------------------------------------------------
    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        self.ensure_loaded()
        n_q = np.int32(self.config.params["num_quantizers"])
        hop = self.frame_size
        out = []
        for wave in batch:
            # Each utterance gets its own interpreters: the model bytes stay in memory and
            # building three interpreters costs ~1.5 ms, whereas Interpreter.reset_all_variables()
            # leaves this model's streaming state untouched (measured: a run after the reset
            # equals the run with carried-over state, not the run on a fresh interpreter; the
            # state lives in resource variables, which that call does not reach).
            stream = self._new_stream()
            n_frames = -(-len(wave) // hop)
            frames = np.zeros(n_frames * hop, dtype=np.float32)
            frames[: len(wave)] = wave  # the last partial frame is zero-padded
            frames = frames.reshape(n_frames, hop)
            decoded = np.empty_like(frames)
            for i in range(n_frames):
                decoded[i] = stream.step(frames[i : i + 1], n_q)
            out.append(decoded.reshape(-1))
        return out


class _LyraStream:
    """Fresh interpreters for one utterance; ``step`` codes one 320-sample frame."""

    def __init__(self, interpreter_cls: Any, model_bytes: dict[str, bytes]):
        def interpreter(file: str) -> Any:
            try:
                # One thread: each per-frame graph is tiny, so threads only add overhead
                # (measured: 2 threads ~40 % slower than 1 on a 3.4 s utterance).
                return interpreter_cls(model_content=model_bytes[file], num_threads=1)
            except Exception as exc:
                raise CodecUnavailableError(
                    f"cannot load Lyra model {file}: {exc}. Fix: replace it with the google/lyra "
                    f"v1.3.2 file ({LyraCodec.weights_source}) or delete it from "
                    f"{weights.cache_dir(_NAME)} to download it again") from None

        def runner(it: Any, file: str, signature: str) -> Any:
            try:
                return it.get_signature_runner(signature)
            except Exception as exc:
                raise CodecUnavailableError(
                    f"Lyra model {file} has no signature '{signature}' ({exc}). "
                    f"Fix: use the google/lyra v1.3.2 file ({LyraCodec.weights_source})") from None

        self._encode = runner(interpreter("soundstream_encoder.tflite"), "soundstream_encoder.tflite",
                              "serving_default")
        # encode and decode are two signatures of one model and share its interpreter.
        quantizer = interpreter("quantizer.tflite")
        self._quantize = runner(quantizer, "quantizer.tflite", "encode")
        self._dequantize = runner(quantizer, "quantizer.tflite", "decode")
        self._generate = runner(interpreter("lyragan.tflite"), "lyragan.tflite", "serving_default")
        self.max_stages = int(self._dequantize.get_input_details()["encoding_indices"]["shape"][0])

    def step(self, frame: np.ndarray, num_quantizers: np.int32) -> np.ndarray:
        embedding = self._encode(input_audio=frame)["output_0"]
        # encode fills the stages beyond num_quantizers with -1, which decode skips:
        # that is what sets the bitrate, so the indices are passed through unchanged.
        indices = self._quantize(input_frames=embedding, num_quantizers=num_quantizers)["output_0"]
        quantized = self._dequantize(encoding_indices=indices)["output_0"]
        return self._generate(input_audio=quantized)["output_0"].reshape(-1)
