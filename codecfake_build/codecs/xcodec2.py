"""X-Codec 2 (HKUST, 2025), the speech tokenizer of Llasa, through ``transformers``:
16 kHz mono, 50 frames/s, one finite-scalar-quantised codebook of 4^8 = 65536
entries (16 bits), so 50 x 16 = 0.8 kbps.

The encoder fuses an acoustic convolution stack with the first 16 layers of
w2v-BERT 2.0, which reads Kaldi log-mel filterbanks.  transformers computes
those with torchaudio (``Xcodec2FeatureExtractor``), which cannot be imported
here, so ``kaldi_log_mel`` below recomputes them from the Kaldi definition
(Povey window, pre-emphasis 0.97, DC removal, 512-point power spectrum, 80 mel
bands 20 Hz-8 kHz, snip_edges) and is checked against transformers' extractor
running torchaudio's own code (tests/fixtures/xcodec2_features, 1e-4).

Padding follows the official extractor: one zero sample is appended and the
clip is zero-padded to whole 320-sample frames (so a clip of exactly k frames
gets k + 1); the filterbank sees that clip with 160 zeros on each side and is
mean/variance normalised over the clip; pairs of frames are stacked to the
encoder's 50 Hz.  The decoder returns ``frames * 320`` samples, index-aligned
with the input (transformers' forward trims it to the input length), so
``delay`` is 0.

Batching: the per-clip feature normalisation, bidirectional attention and
non-causal convolutions make a clip's output depend on its padding, so only
clips with the same padded length share a forward pass.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from codecfake_build.codecs.base import CODECS, CodecConfig, CodecUnavailableError
from codecfake_build.codecs.hf_common import HFCodec

_REPO = "HKUSTAudio/xcodec2-hf"
_HOP = 320

# Kaldi filterbank settings of the X-Codec 2 feature extractor (16 kHz).
_WIN, _SHIFT, _NFFT, _N_MELS, _LOW_HZ, _HIGH_HZ = 400, 160, 512, 80, 20.0, 8000.0


def _mel(hz: Any) -> Any:
    import torch

    return 1127.0 * torch.log1p(torch.as_tensor(hz, dtype=torch.float32) / 700.0)


@lru_cache(maxsize=None)
def _fbank_constants() -> tuple[Any, Any]:
    """Povey window and the (n_mels, nfft/2) triangular mel weights, Kaldi's definitions."""
    import torch

    window = torch.hann_window(_WIN, periodic=False, dtype=torch.float32).pow(0.85)
    lo, hi = _mel(_LOW_HZ), _mel(_HIGH_HZ)
    step = (hi - lo) / (_N_MELS + 1)
    left = lo + step * torch.arange(_N_MELS, dtype=torch.float32)[:, None]
    centre, right = left + step, left + 2 * step
    bin_mel = _mel(torch.arange(_NFFT // 2, dtype=torch.float32) * (16000 / _NFFT))[None, :]
    rising = (bin_mel - left) / (centre - left)
    falling = (right - bin_mel) / (right - centre)
    return window, torch.minimum(rising, falling).clamp_min(0.0)


def kaldi_log_mel(wave: Any) -> Any:
    """Kaldi log-mel filterbank (frames, 80) of a 1-D float tensor in [-1, 1] at 16 kHz."""
    import torch

    window, banks = _fbank_constants()
    window, banks = window.to(wave.device), banks.to(wave.device)
    n_frames = 1 + (wave.shape[-1] - _WIN) // _SHIFT
    frames = (wave * 32768.0).unfold(-1, _WIN, _SHIFT)[:n_frames]
    frames = frames - frames.mean(dim=-1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=-1)  # first sample repeats itself
    frames = (frames - 0.97 * previous) * window
    power = torch.fft.rfft(frames, n=_NFFT).abs().pow(2.0)[:, : _NFFT // 2]  # Nyquist bin has no weight
    return (power @ banks.T).clamp_min(torch.finfo(torch.float32).eps).log()


def semantic_features(padded: Any) -> Any:
    """w2v-BERT input (batch, frames, 160) for clips already padded to whole frames."""
    import torch
    import torch.nn.functional as F

    rows = []
    for wave in padded:
        mel = kaldi_log_mel(F.pad(wave, (_HOP // 2, _HOP // 2)))
        mel = (mel - mel.mean(0)) / torch.sqrt(mel.var(0, unbiased=True) + 1e-7)
        rows.append(mel[: mel.shape[0] // 2 * 2].reshape(-1, 2 * _N_MELS))
    return torch.stack(rows)


@CODECS.register("xcodec2")
class Xcodec2Codec(HFCodec):
    paper = ("Ye, Zhu, Wei, et al., 'Llasa: Scaling Train-Time and Inference-Time Compute for Llama-based "
             "Speech Synthesis', 2025 (arXiv:2502.04128)")
    sample_rate = 16000
    frame_size = _HOP
    configs = {"0.8kbps": CodecConfig("0.8kbps", 0.8, {},
                                      "X-Codec 2, one FSQ codebook of 65536 (16 bit) at 50 frames/s")}
    default_config = "0.8kbps"
    weights_source = (f"https://huggingface.co/{_REPO} (transformers conversion of "
                      "https://huggingface.co/HKUSTAudio/xcodec2)")
    licence = "weights CC-BY-NC-4.0 (HKUSTAudio/xcodec2 model card); code Apache-2.0 (transformers)"
    model_class = "Xcodec2Model"
    default_repo = _REPO
    # transformers' Xcodec2Config documents HKUSTAudio/xcodec2-hf as its defaults: 1024-wide
    # 12-layer decoder transformer, encoder width 48 with ratios [2, 2, 4, 4, 5], FSQ levels
    # 8 x 4, and the first 16 layers of w2v-BERT 2.0 (Wav2Vec2BertConfig defaults = facebook/
    # w2v-bert-2.0).  Assumption: the hub config.json changes nothing architectural.
    official_architectures = {_REPO: {}}

    def _check_model(self, model: Any, path: Path) -> None:
        super()._check_model(model, path)
        cfg = model.config
        levels = list(cfg.quantization_levels)
        if int(cfg.hop_length) != _HOP or math.prod(levels) != 2 ** 16:
            raise CodecUnavailableError(
                f"{self.spec}: the model in {path} has a {cfg.hop_length}-sample hop and FSQ levels {levels}, "
                f"not {_REPO}'s {_HOP} and 65536 codes, so the listed bitrate would be wrong. Fix: pass "
                f"--weights {self.registry_name}=DIR with the {_REPO} files")

    def _padded_length(self, n: int) -> int:
        return math.ceil((n + 1) / _HOP) * _HOP

    def _encode(self, x: Any, valid: Any) -> Any:
        feats = semantic_features(x)
        return self.model.encode(x[:, None, :], input_features=feats, return_dict=True).audio_codes

    def _decode(self, state: Any, valid: Any) -> Any:
        return self.model.decode(audio_codes=state, return_dict=True).audio_values[:, 0, :]

    def _codes(self, state: Any) -> Any:
        return state.reshape(state.shape[0], 1, -1)
