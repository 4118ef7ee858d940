"""FD-ADD's pseudo-labelled training transform: random speed and codec compression.

FD-ADD (Zhang et al., IEEE TIFS 2025) teaches its content stream to predict which
speed change and which lossy codec were applied to a clip; the synthesizer stream
predicts the synthesizer (0 = real).  ``PseudoLabelTransform`` produces the clip and
those three labels per item, in data-loader workers (``benchmark.data.ItemTransform``).

Where the paper is silent, the official code decides (RedamancyAY/RobustSpeechDetection
at 5f0d326cb1aba395760b3b685b259c68e6e8a17b, ``model/transforms.py``,
``RandomAudioCompressionSpeedChanging`` with the settings of ``demo.ipynb``):

* order: draw the speed, crop ``int(num_samples * speed) + 10`` samples at a random
  start, compress the crop, then change its speed; the result is cut to
  ``num_samples`` (the official loader that did this last cut is not released);
* speed: with probability ``p_speed`` (1.0 in the demo) ``round(U(0.5, 2.0), 1)``,
  else 1.0; label = ``round(10 * speed) - 5``, so 0.5 -> 0, 1.0 (unchanged) -> 5,
  2.0 -> 15.  The end points are half as likely as the others (rounding);
* compression: with probability ``p_compression`` (0.9 in the demo; the class
  default there is 0.5) one of the nine settings uniformly, else none; label 0 =
  none, then AAC 16/32/64, Opus 16/32/64, MP3 16/32/64 kbps = 1..9 (the official
  effector table's order);
* F0 ablation (paper Table XII; official ``use_f0_loss``, ``model/loss.py``
  ``get_f0_loss``): not a class label but a regression target, the YIN pitch track
  of the model-ready clip divided by 9000 (see ``benchmark.augment.f0``).

Deviations: clips shorter than the crop are repeated to the crop length before
compression (the official code passes them through short and pads later in its
unreleased loader); codecs run through this project's ffmpeg wrapper
(``codecfake_build.codecs.ffmpeg``: gapless containers, exact length) rather than
torchaudio's ``AudioEffector``, whose output the official code cuts to the input
length without removing the codec delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from benchmark.augment.speed import KAISER_BETA, LOWPASS_FILTER_WIDTH, ROLLOFF, sinc_resample, speed_rates
from benchmark.data.labels import system_class
from codecfake_build.audio import tile_to_length


class Compression(NamedTuple):
    codec: str  # "none", or a codec of codecfake_build.codecs.ffmpeg.FORMATS
    kbps: int

    @property
    def name(self) -> str:
        return "none" if self.codec == "none" else f"{self.codec}@{self.kbps}kbps"


#: Label -> compression; label 0 applies none.
COMPRESSIONS: tuple[Compression, ...] = (Compression("none", 0),) + tuple(
    Compression(codec, kbps) for codec in ("aac", "opus", "mp3") for kbps in (16, 32, 64)
)

#: Label -> speed factor (>1 = faster and higher).  Label 5 (1.0) leaves the clip unchanged.
SPEEDS: tuple[float, ...] = tuple(round(0.5 + 0.1 * i, 1) for i in range(16))
IDENTITY_SPEED_LABEL = SPEEDS.index(1.0)

#: Keys of the extras dict, always all present (f0 only when the config asks).
EXTRA_KEYS = ("speed", "compression", "synthesizer")


class PseudoLabelError(RuntimeError):
    """A transform step failed on one clip; the message names the step and the fix."""


def speed_label(speed: float) -> int:
    label = int(round(speed * 10)) - 5
    if not 0 <= label < len(SPEEDS) or abs(SPEEDS[label] - speed) > 1e-6:
        raise ValueError(f"speed {speed} is not one of FD-ADD's speeds {SPEEDS[0]}..{SPEEDS[-1]} in steps of 0.1")
    return label


def compression_label(codec: str, kbps: int) -> int:
    key = Compression(codec, 0 if codec == "none" else int(kbps))
    if key not in COMPRESSIONS:
        raise ValueError(f"no FD-ADD compression label for {codec}@{kbps}kbps: choose one of "
                         f"{', '.join(c.name for c in COMPRESSIONS)}")
    return COMPRESSIONS.index(key)


@dataclass
class PseudoLabelConfig:
    num_samples: int = 48000
    sample_rate: int = 16000
    #: Switch the speed change off (label always 5 = unchanged) for ablations.
    speed: bool = True
    #: Switch compression off (label always 0 = none) for ablations or without ffmpeg.
    compression: bool = True
    #: Add extras["f0"]: the (f0_frames,) YIN pitch target of the output clip / 9000.
    f0: bool = False
    #: Chance of a random speed (else 1.0); the official demo uses 1.0.
    p_speed: float = 1.0
    #: Chance of a random codec (else none); the official demo uses 0.9.
    p_compression: float = 0.9
    #: Extra input samples taken before the speed change (official: 10).
    crop_margin: int = 10
    lowpass_filter_width: int = LOWPASS_FILTER_WIDTH
    rolloff: float = ROLLOFF
    kaiser_beta: float = KAISER_BETA

    def __post_init__(self) -> None:
        if self.num_samples <= 0 or self.sample_rate <= 0:
            raise ValueError("PseudoLabelConfig: num_samples and sample_rate must be positive")
        for name in ("p_speed", "p_compression"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"PseudoLabelConfig.{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class Draw:
    """The random choices for one item, fixed before any audio work."""

    speed_label: int
    compression_label: int
    crop_start: int  # into the (tiled) clip
    crop_length: int


class PseudoLabelTransform:
    """``fn(wave, rng, *, target, system) -> (wave[num_samples], extras)``; picklable.

    extras: ``speed`` in [0, 16), ``compression`` in [0, 10), ``synthesizer``
    (0 = real, 1 + systems.index(system) for spoof), and with ``f0`` the float32
    vector ``f0`` of ``f0_frames(num_samples)`` values (stacked to (B, frames)).
    """

    def __init__(self, config: PseudoLabelConfig | None = None, systems: Sequence[str] = ()):
        self.config = config or PseudoLabelConfig()
        self.systems = list(systems)

    def __repr__(self) -> str:
        return f"PseudoLabelTransform({self.config}, systems={self.systems})"

    def synthesizer_label(self, target: int, system: str) -> int:
        return system_class(target, system, self.systems, "fd-add")

    def draw(self, n_input: int, rng: np.random.Generator) -> Draw:
        """Speed, crop and codec for a clip of ``n_input`` samples, in the official order."""
        cfg = self.config
        speed = 1.0
        if cfg.speed and rng.random() < cfg.p_speed:
            speed = round(0.5 + 1.5 * rng.random(), 1)
        need = int(cfg.num_samples * speed) + cfg.crop_margin
        start = int(rng.integers(0, n_input - need + 1)) if n_input > need else 0
        comp = 0
        if cfg.compression and rng.random() < cfg.p_compression:
            comp = 1 + int(rng.integers(0, len(COMPRESSIONS) - 1))
        return Draw(speed_label(speed), comp, start, need)

    def apply(self, wave: np.ndarray, draw: Draw) -> np.ndarray:
        """The deterministic part: crop, compress, change speed, cut to num_samples."""
        cfg = self.config
        x = np.asarray(wave, dtype=np.float32).reshape(-1)
        if x.size == 0:
            raise ValueError("PseudoLabelTransform: empty waveform (0 samples); drop empty clips from the data")
        # Short clips repeat themselves to the crop, so the codec and the speed change
        # see as much signal as a long clip would.
        x = tile_to_length(x[draw.crop_start:], draw.crop_length)
        x = self._compress(x, COMPRESSIONS[draw.compression_label])
        speed = SPEEDS[draw.speed_label]
        if draw.speed_label != IDENTITY_SPEED_LABEL:
            orig, new = speed_rates(speed, cfg.sample_rate)
            x = sinc_resample(x, orig, new, cfg.lowpass_filter_width, cfg.rolloff, cfg.kaiser_beta)
        # ceil((int(N*s) + margin) / s) >= N, so this is a cut; tiling only guards margin=0.
        return np.ascontiguousarray(tile_to_length(x, cfg.num_samples), dtype=np.float32)

    def _compress(self, x: np.ndarray, setting: Compression) -> np.ndarray:
        if setting.codec == "none":
            return x
        from codecfake_build.codecs.base import CodecUnavailableError
        from codecfake_build.codecs.ffmpeg import FfmpegError, ffmpeg_encode_decode

        try:
            y, _ = ffmpeg_encode_decode(x, self.config.sample_rate, setting.codec, setting.kbps)
        except (FfmpegError, CodecUnavailableError, OSError) as exc:
            raise PseudoLabelError(
                f"FD-ADD compression {setting.name} failed: {str(exc).splitlines()[0] if str(exc) else exc!r}. "
                f"Fix: apt-get install ffmpeg (with libmp3lame, libopus and aac), or set compression: false"
            ) from None
        return y.astype(np.float32, copy=False)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator, *, target: int,
                 system: str) -> tuple[np.ndarray, dict]:
        synthesizer = self.synthesizer_label(target, system)
        draw = self.draw(len(wave), rng)
        out = self.apply(wave, draw)
        extras: dict = {"speed": draw.speed_label, "compression": draw.compression_label,
                        "synthesizer": synthesizer}
        if self.config.f0:
            from benchmark.augment.f0 import f0_target

            extras["f0"] = f0_target(out, self.config.sample_rate)
        return out, extras
