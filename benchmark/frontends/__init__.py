"""Feature front-ends: ``nn.Module``s from raw 16 kHz waveforms ``(B, T)`` to
features, computed batched on the model's device.  Spectral front-ends return
``(B, features, frames)``."""

from benchmark.frontends.base import FRONTENDS, create_frontend, power_stft  # noqa: F401
from benchmark.frontends.lfcc import LFCC  # noqa: F401
from benchmark.frontends.mel import LogMel  # noqa: F401
from benchmark.frontends.raw import Raw  # noqa: F401
from benchmark.frontends.sinc import SincFilterbank  # noqa: F401
