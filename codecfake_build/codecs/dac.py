"""DAC, the Descript Audio Codec (improved RVQGAN, 2023) through ``transformers``:
the official 16, 24 and 44.1 kHz models, each at its full codebook count.

Bitrates (10-bit codebooks): 16 kHz: 12 codebooks x 50 frames/s = 6 kbps;
24 kHz: 32 x 75 = 24 kbps; 44.1 kHz: 9 x 86.13 = 7.75 kbps (hop 320, 320, 512
samples, as in the released training configs conf/final/*.yml).

Alignment: the models are non-causal, index-aligned reconstructions (the
training losses compare output and input sample by sample), so ``delay`` is 0.
Like the reference implementation, each clip is zero-padded to whole frames.
The stride-5 upsampling layer of the 16/24 kHz decoders returns one sample
fewer than 5x its input, so their output is 8 samples shorter than the padded
input; clips get one more frame when that would cut into real audio.

Batching: every convolution zero-pads, so a clip alone sees zeros past its
end at every layer.  In a padded batch the activations past a short clip's
end are not zero (biases, Snake), so each convolution's input is masked to
the clip's valid length at that layer's resolution; this reproduces the
one-at-a-time output exactly (tested to 1e-4) while sharing forward passes.
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

from codecfake_build.codecs.base import CODECS, CodecConfig, CodecUnavailableError
from codecfake_build.codecs.hf_common import HFCodec


def _cfg(name: str, rate: int, hop: int, n_codebooks: int, repo: str) -> CodecConfig:
    kbps = round(n_codebooks * 10 * rate / hop / 1000, 2)
    return CodecConfig(name, kbps, {"sample_rate": rate, "frame_size": hop, "repo": repo},
                       f"DAC {rate / 1000:g} kHz, {n_codebooks} codebooks x 10 bit at {rate / hop:.2f} frames/s")


def _conv_out_length(module: Any, n: Any) -> Any:
    """Output length of a Conv1d / ConvTranspose1d for input length(s) ``n`` (int or tensor)."""
    import torch.nn as nn

    k, s, p, d = module.kernel_size[0], module.stride[0], module.padding[0], module.dilation[0]
    if isinstance(module, nn.ConvTranspose1d):
        return (n - 1) * s - 2 * p + d * (k - 1) + module.output_padding[0] + 1
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


@contextmanager
def _mask_past_valid(model: Any, valid: Any) -> Iterator[None]:
    """Zero every convolution's input past each row's valid length while the model runs.

    The model applies its convolutions one after another (residual branches keep the
    length), so a single running vector of valid lengths, updated by each convolution's
    length formula, tracks every layer's resolution.
    """
    import torch
    import torch.nn as nn

    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
    for m in convs:
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise RuntimeError(f"DAC batching assumes zero-padded convolutions; found {m}")
    state = {"valid": valid.clone()}

    def pre(module: Any, args: tuple) -> tuple:
        x = args[0]
        keep = torch.arange(x.shape[-1], device=x.device)[None, :] < state["valid"][:, None]
        return (torch.where(keep[:, None, :], x, torch.zeros((), dtype=x.dtype, device=x.device)),
                *args[1:])

    def post(module: Any, args: tuple, out: Any) -> None:
        state["valid"] = _conv_out_length(module, state["valid"])

    handles = []
    try:
        for m in convs:
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()


@CODECS.register("dac")
class DacCodec(HFCodec):
    paper = ("Kumar, Seetharaman, Luebs, Kumar, Kumar, 'High-Fidelity Audio Compression with Improved "
             "RVQGAN', NeurIPS 2023 (arXiv:2306.06546)")
    sample_rate = 16000
    frame_size = 320
    configs = {c.name: c for c in (
        _cfg("16khz", 16000, 320, 12, "descript/dac_16khz"),
        _cfg("24khz", 24000, 320, 32, "descript/dac_24khz"),
        _cfg("44khz", 44100, 512, 9, "descript/dac_44khz"),
    )}
    default_config = "16khz"
    weights_source = ("https://huggingface.co/descript/dac_16khz, https://huggingface.co/descript/dac_24khz, "
                      "https://huggingface.co/descript/dac_44khz (converted from descriptinc/descript-audio-codec)")
    licence = "MIT (code and weights)"
    model_class = "DacModel"
    default_repo = "descript/dac_16khz"
    # Hub config.json and the released training configs (conf/final/*.yml).
    official_architectures = {
        "descript/dac_16khz": dict(sampling_rate=16000, downsampling_ratios=[2, 4, 5, 8],
                                   upsampling_ratios=[8, 5, 4, 2], hop_length=320, n_codebooks=12),
        "descript/dac_24khz": dict(sampling_rate=24000, downsampling_ratios=[2, 4, 5, 8],
                                   upsampling_ratios=[8, 5, 4, 2], hop_length=320, n_codebooks=32),
        "descript/dac_44khz": dict(sampling_rate=44100, downsampling_ratios=[2, 4, 8, 8],
                                   upsampling_ratios=[8, 8, 4, 2], hop_length=512, n_codebooks=9),
    }

    def _check_model(self, model: Any, path: Any) -> None:
        super()._check_model(model, path)
        if int(model.config.hop_length) <= 0:
            raise CodecUnavailableError(f"{path}: DAC config has no valid hop length")

    def _decoded_length(self, frames: int) -> int:
        n = frames
        for s in self.model.config.upsampling_ratios:
            # Decoder blocks: ConvTranspose1d(kernel 2s, stride s, padding ceil(s/2)).
            n = (n - 1) * s - 2 * math.ceil(s / 2) + 2 * s
        return n

    def _padded_length(self, n: int) -> int:
        hop = int(self.model.config.hop_length)
        frames = max(1, -(-n // hop))
        while self._decoded_length(frames) < n:
            frames += 1
        return frames * hop

    def _mixed_lengths_exact(self) -> bool:
        return True

    def _masked(self, valid: Any, width: int) -> Any:
        # Without padding (one clip, or equal lengths) every mask is all-true: skip the
        # per-convolution masking, which costs a full pass over each activation.
        if bool((valid == width).all()):
            return nullcontext()
        return _mask_past_valid(self.model, valid)

    def _encode(self, x: Any, valid: Any) -> Any:
        with self._masked(valid, x.shape[-1]):
            return self.model.encode(x[:, None, :], return_dict=True)

    def _decode(self, state: Any, valid: Any) -> Any:
        hop = int(self.model.config.hop_length)
        with self._masked(valid // hop, state.quantized_representation.shape[-1]):
            y = self.model.decode(quantized_representation=state.quantized_representation,
                                  return_dict=True).audio_values
        return y.reshape(y.shape[0], -1)

    def _codes(self, state: Any) -> Any:
        return state.audio_codes
