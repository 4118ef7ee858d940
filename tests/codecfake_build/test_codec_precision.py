"""AMP for codecs is used only where measured harmless (``codecs/precision.py``).

Runs on CPU autocast (bf16) with the tiny official-format FunCodec fixture, so both the
accepting and the refusing branch run here; on CUDA ``auto`` tries bf16 then fp16."""

from __future__ import annotations

import numpy as np
import pytest

from codecfake_build.codecs.base import create_codec
from codecfake_build.codecs.precision import AmpCheckError, choose_amp, max_abs_diff
from tests.codecfake_build.test_codec_funcodec import _official_dir


@pytest.fixture
def funcodec(tmp_path, hub_cache):
    codec = create_codec("funcodec@en-libritts-ds320-nq4", weights=str(_official_dir(tmp_path / "gn", "gn")))
    codec.load()
    return codec


@pytest.fixture
def clips():
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 16000
    return [(0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32),
            (0.2 * rng.standard_normal(3000)).astype(np.float32)]


def test_autocast_reaches_the_model(funcodec, clips):
    fp32 = funcodec.resynthesize(clips, 16000)
    funcodec.amp = "bf16"
    bf16 = funcodec.resynthesize(clips, 16000)
    # bf16 keeps 8 mantissa bits: the outputs must differ, or autocast never ran.
    assert 0 < max_abs_diff(bf16, fp32) < 1.0


def test_auto_falls_back_when_the_output_moves(funcodec, clips, monkeypatch):
    import codecfake_build.codecs.precision as precision

    monkeypatch.setattr(precision, "_candidates", lambda requested, device: ("bf16",))
    d = choose_amp(funcodec, clips, 16000, "auto", tolerance=1e-6)
    assert d.chosen is None and funcodec.amp is None
    assert d.max_abs_diff["bf16"] > 1e-6 and "exceeds tolerance" in d.reason


def test_amp_is_kept_within_tolerance(funcodec, clips, monkeypatch):
    import codecfake_build.codecs.precision as precision

    monkeypatch.setattr(precision, "_candidates", lambda requested, device: ("bf16",))
    d = choose_amp(funcodec, clips, 16000, "auto", tolerance=10.0)
    assert d.chosen == "bf16" == funcodec.amp
    assert d.to_dict()["max_abs_diff"]["bf16"] <= 10.0


def test_explicit_dtype_that_moves_the_output_is_refused(funcodec, clips):
    with pytest.raises(AmpCheckError, match=r"--amp bf16 changes the output by up to bf16 .*Fix: use --amp auto"):
        choose_amp(funcodec, clips, 16000, "bf16", tolerance=1e-9)
    assert funcodec.amp is None


def test_auto_is_off_on_cpu_and_off_means_off(funcodec, clips):
    assert choose_amp(funcodec, clips, 16000, "auto").chosen is None
    assert "only on CUDA" in choose_amp(funcodec, clips, 16000, "auto").reason
    assert choose_amp(funcodec, clips, 16000, "off").reason == "off as requested"
    with pytest.raises(ValueError, match="unknown AMP mode 'half'"):
        choose_amp(funcodec, clips, 16000, "half")


def test_codecs_outside_pytorch_have_no_amp(clips):
    mp3 = create_codec("mp3")
    assert choose_amp(mp3, clips, 16000, "auto").reason == "mp3@32kbps does not run PyTorch"
    with pytest.raises(AmpCheckError, match="cannot apply"):
        choose_amp(mp3, clips, 16000, "fp16")
    mp3.amp = "fp16"
    with pytest.raises(ValueError, match="has no AMP mode"):
        mp3.resynthesize(clips, 16000)


def _tf32_flags():
    import torch

    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32


@pytest.mark.parametrize("start", [True, False])
def test_cuda_float32_is_strict_unless_tf32_was_chosen(start):
    # The flags are plain globals, so the rule is checkable without a GPU: an unloaded codec
    # on "cuda" only builds the context.
    import torch

    before = _tf32_flags()
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = start
    try:
        codec = create_codec("encodec", device="cuda")
        with codec._precision():
            assert _tf32_flags() == (False, False)  # float32 on a GPU means float32, not TF32
        assert _tf32_flags() == (start, start)
        codec.amp = "tf32"
        with codec._precision():
            assert _tf32_flags() == (True, True)
        assert _tf32_flags() == (start, start)
        cpu = create_codec("encodec")
        with cpu._precision():  # nothing to switch on a CPU
            assert _tf32_flags() == (start, start)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_auto_tries_tf32_last_on_cuda_and_never_on_cpu():
    from codecfake_build.codecs.precision import AMP_MODES, _candidates

    assert _candidates("auto", "cuda:0") == ("bf16", "fp16", "tf32")
    assert _candidates("tf32", "cuda") == ("tf32",)
    assert _candidates("auto", "cpu") == ()
    assert "tf32" in AMP_MODES
