"""EnCodec (Meta, 2022) through ``transformers``: the 24 kHz mono model at 1.5-24
kbps and the 48 kHz stereo model at 3-24 kbps.

The bitrate is the number of residual-VQ codebooks the encoder emits: 10 bits
per codebook per frame, 75 frames/s at 24 kHz (0.75 kbps per codebook) and 150
frames/s at 48 kHz (1.5 kbps per codebook), 1024-entry codebooks.

Alignment: both models reconstruct sample t at output index t (the training
loss compares them index by index), so ``delay`` is 0; the decoder returns
exactly ``frames * hop`` samples for the 24 kHz model and the input length
for the 48 kHz one, and the framework trims to the input length.

Batching:
* 24 kHz: causal convolutions, a unidirectional LSTM, no input normalisation
  and no chunking, so samples after a clip's end cannot change its output.
  Each clip is zero-padded to whole frames (so no layer adds its own right
  padding) and clips of different lengths share a forward pass exactly.
* 48 kHz: non-causal convolutions, GroupNorm over time, per-chunk RMS
  normalisation and 1 s chunks with overlap-add: padding a clip changes its
  own chunks' statistics, so only clips of identical length are batched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codecfake_build.codecs.base import CODECS, CodecConfig, CodecUnavailableError
from codecfake_build.codecs.hf_common import TargetBandwidthCodec

_REPO_24K = "facebook/encodec_24khz"
_REPO_48K = "facebook/encodec_48khz"


def _cfg24(kbps: float) -> CodecConfig:
    n = int(round(kbps / 0.75))
    return CodecConfig(f"{kbps:g}kbps", kbps, {"bandwidth": kbps, "repo": _REPO_24K},
                       f"EnCodec 24 kHz mono, {n} codebooks x 10 bit at 75 frames/s")


def _cfg48(kbps: float) -> CodecConfig:
    n = int(round(kbps / 1.5))
    return CodecConfig(f"48khz-{kbps:g}kbps", kbps,
                       {"bandwidth": kbps, "repo": _REPO_48K, "sample_rate": 48000, "frame_size": 320},
                       f"EnCodec 48 kHz stereo (mono duplicated), {n} codebooks x 10 bit at 150 frames/s")


@CODECS.register("encodec")
class EncodecCodec(TargetBandwidthCodec):
    paper = ("Défossez, Copet, Synnaeve, Adi, 'High Fidelity Neural Audio Compression', "
             "TMLR 2023 (arXiv:2210.13438)")
    sample_rate = 24000
    frame_size = 320
    configs = {c.name: c for c in [*(_cfg24(k) for k in (1.5, 3, 6, 12, 24)),
                                   *(_cfg48(k) for k in (3, 6, 12, 24))]}
    default_config = "6kbps"
    weights_source = f"https://huggingface.co/{_REPO_24K} and https://huggingface.co/{_REPO_48K}"
    licence = "weights CC-BY-NC-4.0; code MIT"
    model_class = "EncodecModel"
    default_repo = _REPO_24K
    official_architectures = {
        _REPO_24K: {},
        _REPO_48K: dict(sampling_rate=48000, audio_channels=2, normalize=True, chunk_length_s=1.0,
                        overlap=0.01, use_causal_conv=False, norm_type="time_group_norm",
                        target_bandwidths=[3.0, 6.0, 12.0, 24.0]),
    }

    def _check_model(self, model: Any, path: Path) -> None:
        super()._check_model(model, path)
        cfg = model.config
        if cfg.audio_channels not in (1, 2):
            raise CodecUnavailableError(f"{path}: EnCodec with {cfg.audio_channels} channels is not supported")

    def _streaming_safe(self) -> bool:
        cfg = self.model.config
        return bool(cfg.use_causal_conv and not cfg.normalize and cfg.chunk_length_s is None
                    and cfg.norm_type != "time_group_norm")

    def _hop(self) -> int:
        return int(self.model.config.hop_length)

    def _padded_length(self, n: int) -> int:
        if self._streaming_safe():
            hop = self._hop()
            return max(1, -(-n // hop)) * hop
        return n

    def _mixed_lengths_exact(self) -> bool:
        return self._streaming_safe()

    def _encode(self, x: Any, valid: Any) -> Any:
        import torch

        channels = int(self.model.config.audio_channels)
        # The stereo model gets the mono clip on both channels; its mono mix is the clip again.
        inp = x[:, None, :].expand(-1, channels, -1).contiguous()
        mask = (torch.arange(x.shape[-1], device=x.device)[None, :] < valid[:, None])
        mask = mask[:, None, :].expand(-1, channels, -1).contiguous()
        enc = self.model.encode(inp, padding_mask=mask, bandwidth=self.bandwidth, return_dict=True)
        return enc, mask

    def _decode(self, state: Any, valid: Any) -> Any:
        enc, mask = state
        y = self.model.decode(enc.audio_codes, enc.audio_scales, padding_mask=mask, return_dict=True,
                              last_frame_pad_length=enc.last_frame_pad_length).audio_values
        return y.mean(dim=1)

    def _codes(self, state: Any) -> Any:
        enc, _ = state
        # (chunks, batch, codebooks, frames) -> (batch, codebooks, chunks * frames)
        codes = enc.audio_codes
        return codes.permute(1, 2, 0, 3).reshape(codes.shape[1], codes.shape[2], -1)
