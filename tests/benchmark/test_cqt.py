"""benchmark.frontends.cqt: shapes, librosa magnitudes and phase, phase channels, and the
frame grid shared with wav2vec2's 20 ms frames."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import torch

from benchmark.frontends.cqt import CQTImage

SR, N = 16000, 64600
T = np.arange(N) / SR


def tone(bin_index: int, phase: float = 0.3, amplitude: float = 0.5) -> tuple[float, np.ndarray]:
    freq = 32.70 * 2 ** (bin_index / 12)
    return freq, (amplitude * np.cos(2 * np.pi * freq * T + phase)).astype(np.float32)


def reference_cqt(x: np.ndarray) -> np.ndarray:
    return librosa.cqt(x, sr=SR, hop_length=320, n_bins=84, bins_per_octave=12, fmin=32.70)


@pytest.mark.parametrize("phase,channels", [(None, 1), ("raw", 2), ("sincos", 3), ("ifreq", 2)])
def test_shape_channels_and_no_state(phase, channels):
    fe = CQTImage(phase=phase)
    out = fe(0.1 * torch.randn(2, N))
    assert tuple(out.shape) == (2, channels, 84, 201) == (2, fe.channels, fe.n_bins, fe.frames_for(N))
    assert torch.isfinite(out).all()
    assert fe.state_dict() == {}  # kernels are rebuilt from the constructor, never checkpointed


def test_batched_equals_single_and_follows_dtype():
    fe = CQTImage()
    wave = 0.1 * torch.randn(3, 8000)
    batch = fe.complex_cqt(wave)
    for i in range(3):  # compared as complex values: an angle near +-pi may flip by 2 pi
        torch.testing.assert_close(batch[i], fe.complex_cqt(wave[i:i + 1])[0], atol=1e-5, rtol=0)
    assert fe.double()(wave.double()).dtype == torch.float64


def test_computed_in_float32_under_autocast_and_half_input():
    fe = CQTImage()
    wave = 0.1 * torch.randn(2, 8000)
    full = fe(wave)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        mixed = fe(wave)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed[:, 0], full[:, 0])  # the log magnitude is unchanged
    assert fe(wave.half()).dtype == torch.float32


def test_magnitude_matches_librosa_on_tones_and_a_chirp():
    fe = CQTImage(first_centre=0)  # librosa's centred grid: frame j at sample 320 j
    rng = np.random.default_rng(0)
    chirp = np.cos(2 * np.pi * (40 * T + (3500 - 40) / (2 * T[-1]) * T ** 2)) * 0.3
    signals = [tone(k)[1] for k in (0, 30, 83)] + [(chirp + 0.05 * rng.standard_normal(N)).astype(np.float32)]
    for x in signals:
        ours = fe.complex_cqt(torch.from_numpy(x)[None])[0].abs().numpy()
        ref = np.abs(reference_cqt(x))
        assert ours.shape == ref.shape == (84, 1 + N // 320)
        # librosa runs the low octaves on resampled signals: measured 0.3-0.8 % of the peak
        # inside the clip and ~2 % in the first/last frames (its resampler's edges)
        err = np.abs(ours - ref) / ref.max()
        assert err[:, 30:-30].max() < 0.015 and err.max() < 0.04


def test_tone_peaks_at_its_bin_with_librosa_amplitude_and_phase():
    fe = CQTImage(first_centre=0)
    for k in (0, 41, 83):
        freq, x = tone(k, phase=0.3)
        ours = fe.complex_cqt(torch.from_numpy(x)[None])[0].numpy()
        mid = slice(40, -40)
        mag = np.abs(ours[:, mid]).mean(axis=1)
        assert mag.argmax() == k
        # a unit cosine gives sqrt(N_k) / 2 at its bin (librosa's scale=True convention)
        n_k = SR / (freq * (2 ** (1 / 6) - 1) / (2 ** (1 / 6) + 1))
        assert mag[k] == pytest.approx(0.5 * math.sqrt(n_k) / 2, rel=0.01)
        # phase is referenced to the frame centre: 2 pi f c_j / sr + phi, and equals librosa's
        centres = 320 * np.arange(ours.shape[1])[mid]
        expected = np.exp(1j * (2 * np.pi * freq * centres / SR + 0.3))
        assert np.abs(np.angle(ours[k, mid] * np.conj(expected))).max() < 1e-3
        ref = reference_cqt(x)[k, mid]
        assert np.abs(np.angle(ours[k, mid] * np.conj(ref))).max() < 1e-3


def test_phase_channels():
    freq, x = tone(50)
    wave = torch.from_numpy(x)[None]
    raw = CQTImage(phase="raw")(wave)[0]
    sincos = CQTImage(phase="sincos")(wave)[0]
    ifreq = CQTImage(phase="ifreq")(wave)[0]
    torch.testing.assert_close(raw[0], sincos[0])  # channel 0 is the same log magnitude
    assert raw[1].abs().max() <= math.pi + 1e-6
    torch.testing.assert_close(sincos[1], torch.sin(raw[1]))
    torch.testing.assert_close(sincos[2], torch.cos(raw[1]))
    # instantaneous frequency: frame-to-frame phase advance, wrapped to [-pi, pi); frame 0 = 0
    assert (ifreq[1, :, 0] == 0).all() and (ifreq[1] >= -math.pi).all() and (ifreq[1] < math.pi).all()
    advance = (2 * math.pi * freq * 320 / SR + math.pi) % (2 * math.pi) - math.pi
    assert (ifreq[1, 50, 5:-5] - advance).abs().max() < 1e-3
    wrapped = torch.remainder(raw[1, :, 1:] - raw[1, :, :-1] + math.pi, 2 * math.pi) - math.pi
    torch.testing.assert_close(ifreq[1, :, 1:], wrapped)


def test_log_magnitude_floor():
    out = CQTImage(phase=None, eps=1e-6)(torch.zeros(1, 4000))
    torch.testing.assert_close(out, torch.full_like(out, math.log(1e-6)))


def test_frames_follow_the_documented_grid():
    fe = CQTImage()
    assert [fe.frames_for(n) for n in (400, 719, 720, 64600, 16000)] == [1, 1, 2, 201, 49]
    assert list(fe.frame_centres(1040)) == [200, 520, 840]
    # default grid = the first_centre=0 grid shifted by 200 samples (away from the zero padding)
    x = torch.from_numpy(tone(60)[1][None])
    shifted = CQTImage(first_centre=0).complex_cqt(x[:, 200:])
    ours = fe.complex_cqt(x)
    torch.testing.assert_close(ours[..., 30:-30], shifted[..., 30:ours.shape[-1] - 30], atol=2e-4, rtol=0)


def test_frames_align_with_wav2vec2():
    """CQT frame j and wav2vec2 frame j cover the same audio, for every clip length."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                         conv_dim=(4,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                         feat_extract_norm="layer", vocab_size=8)  # XLS-R: real kernels, strides, per-frame norm
    torch.manual_seed(0)
    ssl = Wav2Vec2Model(cfg).eval()
    fe = CQTImage()
    for n in (400, 719, 720, 16000, 64600):
        assert int(ssl._get_feat_extract_output_lengths(n)) == fe.frames_for(n)
    # a click at the centre of SSL frame j changes the conv encoder's frame j only, and is
    # loudest in CQT frame j (top bins: windows shorter than a hop)
    n, j = 16000, 17
    click = torch.zeros(1, n)
    click[0, fe.frame_centres(n)[j]] = 1.0
    with torch.no_grad():
        base = ssl.feature_extractor(torch.zeros(1, n))
        moved = (ssl.feature_extractor(click) - base).abs().sum(dim=1)[0]
    assert moved.shape[-1] == fe.frames_for(n)
    assert moved.nonzero().flatten().tolist() == [j]
    top = fe(click)[0, 0, -12:].mean(dim=0)
    assert int(top.argmax()) == j


def test_errors_are_one_line():
    with pytest.raises(ValueError, match="399 samples is shorter than one frame"):
        CQTImage().frames_for(399)
    with pytest.raises(ValueError, match="phase='polar'"):
        CQTImage(phase="polar")
    with pytest.raises(ValueError, match="past Nyquist"):
        CQTImage(n_bins=96)
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        CQTImage()(torch.zeros(1, 1, 4000))
