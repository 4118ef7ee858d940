"""Every torch codec that can build its official architecture with random weights
(``Codec.init_random``), run on each device: batched re-synthesis equals one clip at a time
to 1e-4 (issue #3), and ``choose_amp`` keeps an autocast dtype only when its output stays
within 1e-3 of float32.

On a GPU a forward pass may hold 60 padded seconds, so codecs that proved padding exact mix
clip lengths in one pass: the case this file exists for.  On a CPU (4 s per pass) the same
logic runs, with most clips in passes of one.
"""

from __future__ import annotations

import numpy as np
import pytest

from codecfake_build.codecs import CODECS, CodecUnavailableError, create_codec
from codecfake_build.codecs.base import Codec
from codecfake_build.codecs.precision import DEFAULT_TOLERANCE, choose_amp, max_abs_diff
from tests.codecfake_build.signals import harmonic_glide
from tests.gpu.conftest import DEVICES, module_devices, record

RATE = 16000
#: Three lengths, one of them twice: two clips of equal length share a pass on every codec,
#: and codecs that mix lengths put all four in one pass on a GPU.
LENGTHS = (4800, 7200, 7200, 9600)
BATCH_TOLERANCE = 1e-4

#: The CPU variant runs the logic on two cheap official architectures (one transformers
#: model, one in-repo network; ~1 s each on 2 cores): all of them take minutes on the CI CPU,
#: and each codec's CPU batching is already tested in tests/codecfake_build/.  CUDA runs all.
CPU_CODECS = ("encodec", "funcodec")


def _random_init_codecs() -> list[str]:
    return sorted(n for n in CODECS.names() if CODECS.get(n).init_random is not Codec.init_random)


def _clips() -> list[np.ndarray]:
    return [harmonic_glide(n / RATE, RATE, seed=i)[:n] for i, n in enumerate(LENGTHS)]


def _cases() -> list:
    """(codec, device) pairs; CUDA pairs carry the skip mark of ``DEVICES``."""
    return [pytest.param((name, dev.values[0]), id=f"{name}-{dev.id}", marks=dev.marks)
            for dev in DEVICES for name in _random_init_codecs()]


@pytest.fixture(scope="module", params=_cases())
def codec_on(request) -> tuple[Codec, str]:
    """One random-init codec per (name, device), shared by the tests below: pytest groups the
    tests by this parameter, so each official architecture is built once and freed after."""
    name, device = request.param
    if device == "cpu" and name not in CPU_CODECS:
        pytest.skip(f"{name} on cpu: the CPU variant runs {', '.join(CPU_CODECS)} only (time budget; "
                    f"tests/codecfake_build covers {name} on the CPU); all codecs run on cuda")
    codec = create_codec(name, device=device)
    try:
        codec.init_random(seed=0)
    except CodecUnavailableError as exc:  # an optional package (snac, speechtokenizer) is missing
        pytest.skip(str(exc).splitlines()[0])
    yield codec, device
    codec.amp = None


def test_the_list_covers_the_torch_codecs():
    names = _random_init_codecs()
    assert {"dac", "encodec", "funcodec", "hificodec", "audiodec", "mimi", "snac", "speechtokenizer",
            "xcodec", "xcodec2"} <= set(names)
    assert not {"mp3", "aac", "opus", "soundstream-lyra"} & set(names)


def test_batched_equals_one_at_a_time(codec_on):
    codec, device = codec_on
    codec.amp = None
    assert module_devices(codec) == {device}, f"{codec.spec}: weights on {module_devices(codec)}, asked for {device}"
    clips = _clips()
    batched = codec.resynthesize(clips, RATE)
    single = [codec.resynthesize([c], RATE)[0] for c in clips]
    assert [len(y) for y in batched] == list(LENGTHS)
    assert all(np.isfinite(y).all() for y in batched)
    diff = max_abs_diff(batched, single)
    peak = max(float(np.abs(y).max()) for y in single)
    record("codec_batched_vs_single", device, codec=codec.spec, max_abs_diff=diff, output_peak=peak,
           batch_seconds=codec.batch_seconds())
    assert peak > 1e-3, f"{codec.spec}: output is silent, so the comparison would mean nothing"
    assert diff <= BATCH_TOLERANCE, f"{codec.spec} on {device}: batched differs from one-at-a-time by {diff:.3g}"


def test_choose_amp_keeps_a_dtype_only_within_tolerance(codec_on):
    codec, device = codec_on
    clips = _clips()[:2]
    decision = choose_amp(codec, clips, RATE, "auto")
    record("codec_amp", device, codec=codec.spec, chosen=decision.chosen, max_abs_diff=decision.max_abs_diff,
           reason=decision.reason)
    if device == "cpu":
        assert decision.chosen is None and codec.amp is None and "only on CUDA" in decision.reason
        return
    # The rule, whatever it decides: every dtype tried before the chosen one failed, the chosen
    # one (if any) passed, and a fresh autocast run of it still matches float32.
    tried = list(decision.max_abs_diff)
    assert tried and tried[0] == "bf16"
    if decision.chosen is None:
        assert codec.amp is None and tried == ["bf16", "fp16"]
        assert all(d > DEFAULT_TOLERANCE for d in decision.max_abs_diff.values()), decision
        return
    assert codec.amp == decision.chosen == tried[-1]
    assert decision.max_abs_diff[decision.chosen] <= DEFAULT_TOLERANCE
    assert all(decision.max_abs_diff[d] > DEFAULT_TOLERANCE for d in tried[:-1])
    under_amp = codec.resynthesize(clips, RATE)
    codec.amp = None
    reference = codec.resynthesize(clips, RATE)
    assert max_abs_diff(under_amp, reference) <= DEFAULT_TOLERANCE
