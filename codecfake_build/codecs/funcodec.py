"""FunCodec (Alibaba DAMO, 2023): the six released 16 kHz models, run through the
in-repo implementations in ``_funcodec_net.py`` (time domain) and
``_funcodec_freq_net.py`` (frequency domain, FreqCodec).

Checkpoints (each an official ``config.yaml`` + ``model.pth`` on the Hugging Face hub
under ``alibaba-damo/`` and on ModelScope under ``damo/``), as listed in the FunCodec
README's model zoo:
``audio_codec-encodec-{en-libritts,zh_en-general}-16k-nq32ds{320,640}-pytorch`` (EnCodec-style,
time domain) and ``audio_codec-freqcodec_magphase-en-libritts-16k-gr{1,8}nq32ds320-pytorch``
(FreqCodec: magnitude/phase STFT planes through a 2-D SEANet with grouped convolutions,
``gr`` = ``conv_group_ratio``; 0.52 M / 4.50 M parameters per the README).
ds320 codes 50 frames/s, ds640 25 frames/s; 32 residual codebooks of 1024 entries
(10 bits), so a config's bitrate is frame rate x quantisers x 10 bits.  Configs are
checkpoint x number of quantisers; the models were trained with structured
quantiser dropout over {1,2,4,...,32} (ds320) and {2,4,...,32} (ds640), which are
the counts offered.

Re-synthesis is ``Encodec.inference`` / ``FreqCodec.inference(speech, bit_width,
use_scale=True)`` of funcodec.bin.codec_inference: the clip is divided by its RMS,
coded, decoded and multiplied back, so the output keeps the input's loudness.

Alignment: the non-causal decoders reconstruct sample t at index t (centred STFT and
iSTFT for FreqCodec), so ``delay`` is 0.  FreqCodec's iSTFT can end up to one STFT hop
(160 samples) before the input does; the framework pads that tail with zeros, as
the official output is simply that much shorter.

Batching: GroupNorm over time (and frequency), the whole-clip RMS normalisation,
non-causal convolutions and the LSTM all make a clip's output depend on any padding,
so only clips of identical length share a forward pass (no padding at all).
Clips are never chunked: the released models code whole clips (``segment_dur:
null``), so a clip of many minutes is one (memory-hungry) pass, as in the original.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from codecfake_build.codecs import weights
from codecfake_build.codecs.base import CODECS, Codec, CodecConfig, CodecUnavailableError

_NAME = "funcodec"
WEIGHT_FILES = ("config.yaml", "model.pth")
SAMPLE_RATE = 16000
CODEBOOK_BITS = 10  # 1024-entry codebooks

class Checkpoint(NamedTuple):
    repo: str                  # hub repo name (under HF_ORG / MODELSCOPE_ORG)
    hop: int                   # audio samples per code frame
    counts: tuple[int, ...]    # quantiser counts seen in training (structured dropout)
    domain: str = "time"       # "time" (EnCodec-style) or "freq" (FreqCodec, mag-phase STFT)
    group_ratio: int = -1      # FreqCodec conv_group_ratio (the "gr" of the name)


_DS320, _DS640 = (1, 2, 4, 8, 16, 32), (2, 4, 8, 16, 32)
#: Released checkpoints.
CHECKPOINTS: dict[str, Checkpoint] = {
    "en-libritts-ds320": Checkpoint("audio_codec-encodec-en-libritts-16k-nq32ds320-pytorch", 320, _DS320),
    "en-libritts-ds640": Checkpoint("audio_codec-encodec-en-libritts-16k-nq32ds640-pytorch", 640, _DS640),
    "zh_en-general-ds320": Checkpoint("audio_codec-encodec-zh_en-general-16k-nq32ds320-pytorch", 320, _DS320),
    "zh_en-general-ds640": Checkpoint("audio_codec-encodec-zh_en-general-16k-nq32ds640-pytorch", 640, _DS640),
    "freqcodec-en-libritts-gr1-ds320": Checkpoint(
        "audio_codec-freqcodec_magphase-en-libritts-16k-gr1nq32ds320-pytorch", 320, _DS320, "freq", 1),
    "freqcodec-en-libritts-gr8-ds320": Checkpoint(
        "audio_codec-freqcodec_magphase-en-libritts-16k-gr8nq32ds320-pytorch", 320, _DS320, "freq", 8),
}
HF_ORG = "alibaba-damo"
MODELSCOPE_ORG = "damo"

#: The architecture part of the official recipes the checkpoints were trained with
#: (egs/LibriTTS/codec/conf/encodec_16k_n32_600k_step{,_ds640}.yaml at FunCodec 3435d87);
#: the other SEANet options keep the official class defaults.  Built with these values
#: the official classes have 14,855,843 (ds320) and 57,549,987 (ds640) generator
#: parameters; the README's 14.85 M / 57.83 M (the latter counts the 283,398-parameter
#: discriminator too) and the checkpoint sizes (95.1 MB / 266 MB) agree.
_RECIPE: dict[str, Any] = {
    "input_size": 1,
    "encoder": "encodec_seanet_encoder",
    "encoder_conf": {"norm": "time_group_norm", "causal": False},
    "quantizer": "costume_quantizer",
    "quantizer_conf": {"codebook_size": 1024, "num_quantizers": 32, "sampling_rate": SAMPLE_RATE,
                       "use_ddp": True, "encoder_hop_length": 320},
    "decoder": "encodec_seanet_decoder",
    "decoder_conf": {"norm": "time_group_norm", "causal": False},
    "model": "encodec",
    "model_conf": {"target_sample_hz": SAMPLE_RATE, "audio_normalize": True, "segment_dur": None},
}


def released_recipe(hop: int) -> dict[str, Any]:
    """The official config values of the released checkpoints with this hop (320 or 640)."""
    recipe = copy.deepcopy(_RECIPE)
    if hop == 640:
        for part in ("encoder_conf", "decoder_conf"):
            recipe[part]["ratios"] = [8, 5, 4, 2, 2]
        recipe["quantizer_conf"]["encoder_hop_length"] = 640
    return recipe


#: The architecture part of the official FreqCodec recipe
#: (egs/LibriTTS/codec/conf/freqcodec_mag_phase_16k_n32_600k_step.yaml at FunCodec 3435d87).
#: The recipe does not set ``conv_group_ratio``; the released names' "gr1"/"gr8" are taken
#: to be that option.  CAUTION: the released config.yaml files could not be read offline,
#: and this recipe with group ratio 1 / 8 has 12.32 M / 12.71 M generator parameters,
#: not the README's 0.52 M / 4.50 M, so the released models must use narrower settings
#: this recipe does not record.  ``load()`` builds whatever the checkpoint's own
#: config.yaml says; only ``init_random`` (throughput benchmark, tests) uses this recipe.
_FREQ_RECIPE: dict[str, Any] = {
    "input_size": 3,
    "encoder": "encodec_seanet_encoder_2d",
    "encoder_conf": {"ratios": [[4, 1], [4, 1], [4, 2], [4, 1]], "norm": "time_group_norm",
                     "norm_params": {"num_groups": 1}, "causal": False, "dilation_base": 1},
    "quantizer": "costume_quantizer",
    "quantizer_conf": {"codebook_size": 1024, "num_quantizers": 32, "sampling_rate": SAMPLE_RATE,
                       "use_ddp": True, "encoder_hop_length": 320},
    "decoder": "encodec_seanet_decoder_2d",
    "decoder_conf": {"ratios": [[4, 1], [4, 1], [4, 2], [4, 1]], "norm": "time_group_norm",
                     "norm_params": {"num_groups": 1}, "causal": False, "channels": 3, "dilation_base": 1},
    "model": "freq_codec",
    "model_conf": {"target_sample_hz": SAMPLE_RATE, "audio_normalize": True, "segment_dur": None,
                   "codec_domain": ["mag_phase", "mag_phase"]},
}


def released_freq_recipe(group_ratio: int) -> dict[str, Any]:
    """The FreqCodec recipe with this conv_group_ratio (see the caution at _FREQ_RECIPE)."""
    recipe = copy.deepcopy(_FREQ_RECIPE)
    for part in ("encoder_conf", "decoder_conf"):
        recipe[part]["conv_group_ratio"] = group_ratio
    return recipe


def _config(checkpoint: str, n_q: int) -> CodecConfig:
    ck = CHECKPOINTS[checkpoint]
    fps = SAMPLE_RATE / ck.hop
    kbps = fps * n_q * CODEBOOK_BITS / 1000
    if ck.domain == "freq":
        what = f"FunCodec FreqCodec (mag-phase STFT, conv group ratio {ck.group_ratio}) en-libritts model"
    else:
        what = f"FunCodec EnCodec-style {checkpoint.rsplit('-', 1)[0]} model"
    return CodecConfig(
        f"{checkpoint}-nq{n_q}", kbps,
        {"checkpoint": checkpoint, "repo": f"{HF_ORG}/{ck.repo}", "num_quantizers": n_q, "frame_size": ck.hop,
         "domain": ck.domain},
        f"{what}, {n_q} of 32 codebooks x {CODEBOOK_BITS} bit at {fps:g} frames/s")


@CODECS.register(_NAME)
class FunCodecCodec(Codec):
    paper = ("Du, Zhang, Hu, Zheng, 'FunCodec: A Fundamental, Reproducible and Integrable Open-source "
             "Toolkit for Neural Speech Codec', ICASSP 2024 (arXiv:2309.07405)")
    sample_rate = SAMPLE_RATE
    frame_size = 320
    configs = {c.name: c for ck, spec in CHECKPOINTS.items() for c in (_config(ck, n) for n in spec.counts)}
    default_config = "en-libritts-ds320-nq32"
    weights_source = ("https://huggingface.co/alibaba-damo/audio_codec-encodec-{en-libritts,zh_en-general}-"
                      "16k-nq32ds{320,640}-pytorch and https://huggingface.co/alibaba-damo/audio_codec-"
                      "freqcodec_magphase-en-libritts-16k-gr{1,8}nq32ds320-pytorch (also "
                      "https://www.modelscope.cn/models/damo/...): config.yaml + model.pth")
    licence = "weights MIT (model cards); code MIT (alibaba-damo-academy/FunCodec)"


    def __init__(self, config: str | None = None, device: str = "cpu", weights: str | None = None):
        super().__init__(config=config, device=device, weights=weights)
        self.model: Any = None

    # ---- facts about the chosen config --------------------------------------------------
    @property
    def checkpoint(self) -> str:
        return str(self.config.params["checkpoint"])

    @property
    def repo_id(self) -> str:
        return str(self.config.params["repo"])

    @property
    def num_quantizers(self) -> int:
        return int(self.config.params["num_quantizers"])

    @property
    def domain(self) -> str:
        """"time" (EnCodec-style) or "freq" (FreqCodec)."""
        return str(self.config.params["domain"])

    @property
    def delay(self) -> int:
        return 0

    # ---- weights ------------------------------------------------------------------------------
    def checkpoint_dir(self) -> Path:
        """Directory holding config.yaml and model.pth: ``--weights``, else
        ``$CODECFAKE_CACHE/funcodec/<repo name>/``, else the HF cache / hub."""
        if self.weights is not None:
            explicit = Path(self.weights).expanduser()
            if explicit.is_file():  # --weights funcodec=.../model.pth: its folder holds config.yaml too
                explicit = explicit.parent
            found = weights.find_files(_NAME, list(WEIGHT_FILES), explicit)
            assert found is not None
            return found
        cached = weights.cache_dir(_NAME) / self.repo_id.split("/")[-1]
        if all((cached / f).is_file() for f in WEIGHT_FILES):
            return cached
        try:
            path = weights.hf_snapshot(_NAME, self.repo_id, allow_patterns=list(WEIGHT_FILES))
        except CodecUnavailableError as exc:
            raise CodecUnavailableError(f"{exc} (or put config.yaml and model.pth in {cached})") from None
        for f in WEIGHT_FILES:
            if not (path / f).is_file():
                raise weights.missing_weights_error(_NAME, f"{path / f} does not exist",
                                                    f"expected the {self.repo_id} files")
        return path

    def _read_config(self, path: Path) -> Any:
        import yaml

        from codecfake_build.codecs._funcodec_freq_net import freq_config_from_yaml
        from codecfake_build.codecs._funcodec_net import FunCodecConfigError, config_from_yaml

        try:
            args = yaml.safe_load(path.read_text(encoding="utf-8"))
            if not isinstance(args, dict):
                raise FunCodecConfigError("not a YAML mapping")
            freq = args.get("model") == "freq_codec"
            cfg = freq_config_from_yaml(args) if freq else config_from_yaml(args)
        except (OSError, yaml.YAMLError, FunCodecConfigError, TypeError, ValueError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CodecUnavailableError(
                f"{path}: not a usable FunCodec config ({msg}). Fix: use the config.yaml of "
                f"{self.repo_id}") from None
        if ("freq" if freq else "time") != self.domain:
            kinds = {"freq": "frequency-domain FreqCodec", "time": "time-domain EnCodec-style"}
            raise CodecUnavailableError(
                f"{path} describes a {kinds['freq' if freq else 'time']} model, but {self.spec} is a "
                f"{kinds[self.domain]} config. Fix: pass the {self.repo_id} files or choose a "
                f"{'freqcodec-' if freq else 'non-freqcodec '}config")
        want_hop = int(self.config.params["frame_size"])
        if cfg.sample_rate != self.native_rate or cfg.hop != want_hop:
            raise CodecUnavailableError(
                f"{path} describes a {cfg.sample_rate} Hz model with hop {cfg.hop}, but {self.spec} needs "
                f"{self.native_rate} Hz and hop {want_hop}. Fix: pass the {self.repo_id} files or choose the "
                f"matching config")
        if cfg.quantizer.num_quantizers < self.num_quantizers:
            raise CodecUnavailableError(
                f"{path} has {cfg.quantizer.num_quantizers} quantisers but {self.spec} needs "
                f"{self.num_quantizers}. Fix: choose a config with fewer quantisers")
        return cfg

    def _read_state(self, path: Path) -> dict[str, Any]:
        import torch

        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file surfaces as many exception types
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CodecUnavailableError(
                f"cannot read {path} ({msg}). Fix: re-download model.pth of {self.repo_id}") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CodecUnavailableError(f"{path} is not a state dict of tensors. Fix: use model.pth of "
                                        f"{self.repo_id}")
        return state

    def _build(self, cfg: Any) -> Any:
        import torch

        from codecfake_build.codecs._funcodec_freq_net import FreqCodecConfig, FreqCodecModel
        from codecfake_build.codecs._funcodec_net import FunCodecModel

        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise CodecUnavailableError(f"{self.spec}: device {self.device} requested but CUDA is not "
                                        "available. Fix: use --device cpu")
        return FreqCodecModel(cfg) if isinstance(cfg, FreqCodecConfig) else FunCodecModel(cfg)

    def load(self) -> None:
        if self.model is not None:
            return
        from codecfake_build.codecs._funcodec_net import official_state_dict

        d = self.checkpoint_dir()
        cfg = self._read_config(d / "config.yaml")
        model = self._build(cfg)
        state = official_state_dict(self._read_state(d / "model.pth"), cfg.quantizer.num_quantizers)
        expected = model.state_dict()
        for key in ("enc_trans_func.window", "dec_trans_func.window"):
            # FreqCodec's STFT windows are fixed Hann windows (torchaudio buffers), not learnt:
            # a checkpoint saved without them loses nothing.
            if key in expected and key not in state:
                state[key] = expected[key]
        # A codec that silently ran on partly random weights would poison a dataset.
        bad = [k for k in expected if k not in state or state[k].shape != expected[k].shape]
        if bad:
            what = "missing" if bad[0] not in state else f"shaped {tuple(state[bad[0]].shape)}"
            raise CodecUnavailableError(
                f"{d / 'model.pth'} is not a complete checkpoint for {d / 'config.yaml'}: {len(bad)} tensors "
                f"missing or mis-shaped (e.g. {bad[0]} {what}). Fix: re-download {self.repo_id}")
        unexpected = sorted(set(state) - set(expected))
        if unexpected:
            raise CodecUnavailableError(
                f"{d / 'model.pth'} holds tensors this architecture does not use (e.g. {unexpected[0]}); "
                f"its config.yaml does not describe it. Fix: use matching {self.repo_id} files")
        model.load_state_dict(state, strict=True)
        self.model = model.eval().to(self.device)
        self._loaded = True

    def init_random(self, seed: int = 0) -> str:
        import torch

        from codecfake_build.codecs._funcodec_freq_net import freq_config_from_yaml
        from codecfake_build.codecs._funcodec_net import config_from_yaml

        if self.domain == "freq":
            ratio = CHECKPOINTS[self.checkpoint].group_ratio
            cfg: Any = freq_config_from_yaml(released_freq_recipe(ratio))
        else:
            cfg = config_from_yaml(released_recipe(int(self.config.params["frame_size"])))
        torch.manual_seed(seed)
        model = self._build(cfg)
        with torch.no_grad():
            # Zero codebooks would give every frame code 0; random ones make output depend on audio.
            model.quantizer.rq.model.embed.normal_()
        self.model = model.eval().to(self.device)
        self._loaded = True
        n = self.parameter_count()
        if self.domain == "freq":
            return (f"random init, {self.repo_id} recipe architecture with conv_group_ratio "
                    f"{CHECKPOINTS[self.checkpoint].group_ratio} ({n / 1e6:.2f} M parameters; the released "
                    "config may be narrower)")
        return f"random init, {self.repo_id} architecture ({n / 1e6:.2f} M parameters)"

    def parameter_count(self) -> int:
        self.ensure_loaded()
        return sum(p.numel() for p in self.model.parameters())

    # ---- coding -------------------------------------------------------------------------------
    def _groups(self, lengths: list[int]) -> list[list[int]]:
        """Indices of equal-length clips, shortest first, each pass capped at
        ``max_batch_seconds`` of audio (a longer single clip still gets its own pass)."""
        return self._length_groups(lengths, mixed=False)

    def _resynthesize(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        self.ensure_loaded()
        out: list[np.ndarray | None] = [None] * len(batch)
        for group in self._groups([len(w) for w in batch]):
            x = torch.from_numpy(np.stack([np.asarray(batch[i], dtype=np.float32) for i in group]))
            with torch.inference_mode():
                y = self.model(x.to(self.device), self.num_quantizers)
            y = y[:, 0].float().cpu().numpy()
            for i, row in zip(group, y):
                out[i] = np.ascontiguousarray(row)
        return out  # type: ignore[return-value]

    def codes(self, wave: np.ndarray) -> np.ndarray:
        """Integer codes (quantisers, frames) of one native-rate mono clip; for inspection."""
        import torch

        self.ensure_loaded()
        x = torch.from_numpy(np.asarray(wave, dtype=np.float32))[None].to(self.device)
        with torch.inference_mode():
            codes, _ = self.model.encode(x, self.num_quantizers)
        return codes[:, 0].cpu().numpy()

