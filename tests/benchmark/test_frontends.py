"""benchmark.frontends: shapes, state-dict hygiene, log-mel parity with librosa, LFCC recipe."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft
import torch

from benchmark.frontends import LFCC, FRONTENDS, LogMel, create_frontend
from benchmark.frontends.lfcc import linear_filterbank
from codecfake_build.audio import load_audio, tile_to_length
from codecfake_build.registry import UnknownNameError

N = 64600
CLIP = "data/speech/en/librispeech/1995-1837-0001.wav"


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    from tests.conftest import SHARED

    if not SHARED.is_dir():
        pytest.skip("../shared not present")
    return tile_to_length(load_audio(SHARED / CLIP, 16000)[0], N)


@pytest.mark.parametrize("name,shape", [
    ("logmel", (2, 80, 505)),   # 1 + 64600 // 128 centred frames
    ("lfcc", (2, 60, 404)),     # 1 + 64600 // 160 frames, 20 static + 20 delta + 20 delta-delta
    ("raw", (2, N)),
    ("sinc", (2, 70, N - 128)),  # 129-tap filters, no padding
])
def test_shapes_and_no_state(name, shape):
    fe = create_frontend(name)
    out = fe(0.1 * torch.randn(2, N))
    assert tuple(out.shape) == shape and torch.isfinite(out).all()
    assert fe.state_dict() == {}  # filters are recomputed, never checkpointed
    if hasattr(fe, "num_frames"):
        assert (fe.num_features, fe.num_frames(N)) == shape[1:]


def test_buffers_follow_dtype():
    fe = LogMel().double()
    assert fe(torch.randn(1, 4000, dtype=torch.float64)).dtype == torch.float64


def test_unknown_frontend_names_choices():
    with pytest.raises(UnknownNameError, match="Choose one of: lfcc, logmel, raw, sinc"):
        create_frontend("mfcc")
    assert "logmel" in FRONTENDS


def test_logmel_matches_librosa(clip):
    ours = LogMel()(torch.from_numpy(clip)[None])[0].numpy()
    ref = librosa.feature.melspectrogram(y=clip, sr=16000, n_fft=512, hop_length=128, n_mels=80, htk=True,
                                         norm=None, center=True, pad_mode="reflect", power=2.0)
    # float32 FFTs differ by ~1e-7 of the frame peak; 1e-3 in log units is far above that
    np.testing.assert_allclose(ours, np.log(ref + 1e-6), atol=1e-3)
    assert ours.std() > 1.0  # real speech spans many orders of magnitude: not a degenerate output


def test_lfcc_matches_numpy_recipe(clip):
    ours = LFCC()(torch.from_numpy(clip)[None])[0].numpy()
    eps = np.finfo(np.float32).eps
    x = clip.astype(np.float64)
    x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    power = np.abs(librosa.stft(x, n_fft=512, hop_length=160, win_length=320, window="hamming",
                                center=True, pad_mode="constant")) ** 2
    cep = scipy.fft.dct(np.log10(linear_filterbank(16000, 512, 20).T @ power + eps), norm="ortho", axis=0)
    cep[0] = np.log10(power.sum(axis=0) / 512 + eps)
    d1 = np.gradient(cep, axis=1) * 2  # interior central differences; edges checked below
    np.testing.assert_allclose(ours[:20], cep, atol=2e-3)
    np.testing.assert_allclose(ours[20:40, 1:-1], d1[:, 1:-1], atol=4e-3)
    np.testing.assert_allclose(ours[20:40, 0], ours[:20, 1] - ours[:20, 0], atol=1e-5)


def test_lfcc_gain_moves_only_energy(clip):
    fe = LFCC()
    x = torch.from_numpy(clip)[None]
    diff = (fe(10 * x) - fe(x))[0]
    # x10 amplitude = +2 in log10 power: energy (c0) shifts by 2, the shape of the
    # log spectrum (c1..c19) and all dynamics stay put
    assert torch.allclose(diff[0], torch.full_like(diff[0], 2.0), atol=1e-3)
    assert diff[1:].abs().max() < 1e-2


def test_linear_filterbank_is_triangular():
    fb = linear_filterbank(16000, 512, 20)
    assert fb.shape == (257, 20) and fb.max() == pytest.approx(1.0, abs=0.05)
    assert (np.argmax(fb, axis=0) == np.sort(np.argmax(fb, axis=0))).all()  # centres ascend
    assert fb[0].sum() == 0 and fb[-1].sum() == 0  # edges sit at 0 Hz and 8 kHz
