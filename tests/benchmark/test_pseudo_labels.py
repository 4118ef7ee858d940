"""FD-ADD pseudo-label transform: label tables, speed change vs torchaudio, crop/length
handling, real ffmpeg bitrates, determinism, synthesizer labels, F0 target, pickling."""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest

import codecfake_build.codecs.ffmpeg as ffmpeg_mod
from benchmark.augment.f0 import f0_frames, f0_target, yin_pitch
from benchmark.augment.pseudo_labels import (
    COMPRESSIONS,
    EXTRA_KEYS,
    IDENTITY_SPEED_LABEL,
    SPEEDS,
    Draw,
    PseudoLabelConfig,
    PseudoLabelError,
    PseudoLabelTransform,
    compression_label,
    speed_label,
)
from benchmark.augment.speed import change_speed, sinc_resample, speed_rates
from benchmark.data.loader import collate
from codecfake_build.audio import tile_to_length
from codecfake_build.codecs.base import CodecUnavailableError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fd_add_speed_reference"
SR = 16000
N = 48000
SYSTEMS = ["hifigan", "melgan", "waveglow"]


def _no_codec(**kw) -> PseudoLabelTransform:
    return PseudoLabelTransform(PseudoLabelConfig(compression=False, **kw), systems=SYSTEMS)


def _signal(n: int, seed: int = 0) -> np.ndarray:
    """Speech-like: a harmonic tone with a slow envelope plus noise (codecs have work to do)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    tone = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.2 * env * tone + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _peak_hz(y: np.ndarray) -> float:
    y = y[200:-200]
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / SR)[spec.argmax()])


@pytest.fixture
def ffmpeg_ok():
    try:
        for fmt in ffmpeg_mod.FORMATS.values():
            ffmpeg_mod.require_ffmpeg(fmt.encoder)
    except CodecUnavailableError as exc:
        pytest.skip(str(exc))


# ---- label tables -----------------------------------------------------------------------


def test_speed_labels_round_trip():
    assert len(SPEEDS) == 16 and len(set(SPEEDS)) == 16
    assert SPEEDS[0] == 0.5 and SPEEDS[-1] == 2.0 and SPEEDS[IDENTITY_SPEED_LABEL] == 1.0
    assert IDENTITY_SPEED_LABEL == 5  # the official label of an unchanged clip
    for label, speed in enumerate(SPEEDS):
        assert speed_label(speed) == label
    rates = {speed_rates(s) for s in SPEEDS}
    assert len(rates) == 16 and speed_rates(1.1) == (11, 10) and speed_rates(2.0) == (2, 1)
    with pytest.raises(ValueError, match="not one of FD-ADD's speeds"):
        speed_label(2.1)


def test_compression_labels_round_trip():
    assert len(COMPRESSIONS) == 10 and len(set(COMPRESSIONS)) == 10
    assert COMPRESSIONS[0].codec == "none"
    # The official effector order: AAC, Opus, MP3, each 16/32/64 kbps.
    assert [c.name for c in COMPRESSIONS[1:4]] == ["aac@16kbps", "aac@32kbps", "aac@64kbps"]
    assert COMPRESSIONS[4].name == "opus@16kbps" and COMPRESSIONS[9].name == "mp3@64kbps"
    for label, c in enumerate(COMPRESSIONS):
        assert compression_label(c.codec, c.kbps) == label
        assert c.codec == "none" or c.codec in ffmpeg_mod.FORMATS
    with pytest.raises(ValueError, match="no FD-ADD compression label for mp3@128kbps"):
        compression_label("mp3", 128)


# ---- speed change -----------------------------------------------------------------------


def test_speed_change_matches_torchaudio_kaiser():
    ref = np.load(FIXTURES / "torchaudio_kaiser_speed.npz")
    x = ref["input"]
    for speed in SPEEDS:
        if speed == 1.0:
            continue
        expected = ref[f"speed_{speed:.1f}"]
        got = change_speed(x, speed)
        assert got.shape == expected.shape, speed
        assert np.abs(got - expected).max() < 1e-4, speed


@pytest.mark.parametrize("speed", [0.5, 0.7, 1.3, 2.0])
def test_speed_moves_a_sine_and_shortens(speed):
    t = np.arange(16000) / SR
    y = change_speed(np.sin(2 * np.pi * 1000 * t).astype(np.float32), speed)
    assert len(y) == int(np.ceil(16000 / speed))
    assert abs(_peak_hz(y) - 1000 * speed) < 3


def test_speed_up_suppresses_aliases():
    # 6 kHz at speed 2 would land at 12 kHz, above the 8 kHz Nyquist: the low-pass removes it
    # instead of folding it back to 4 kHz (plain decimation would keep all of it).  With
    # torchaudio's short filter (6 zero crossings) the alias sits ~48 dB down.
    t = np.arange(16000) / SR
    x = np.sin(2 * np.pi * 6000 * t).astype(np.float32)
    assert np.sqrt(np.mean(x[::2] ** 2)) > 0.7
    y = change_speed(x, 2.0)
    assert np.sqrt(np.mean(y[100:-100] ** 2)) < 0.01 * np.sqrt(0.5)
    assert np.array_equal(sinc_resample(t.astype(np.float32), 3, 3), t.astype(np.float32))


# ---- crop and duration ------------------------------------------------------------------


@pytest.mark.parametrize("n_in", [1000, 48010, 96010, 150000])
@pytest.mark.parametrize("speed", [0.5, 1.0, 2.0])
def test_output_is_exactly_num_samples(n_in, speed):
    t = _no_codec()
    need = int(N * speed) + 10
    draw = Draw(speed_label(speed), 0, max(0, n_in - need) // 2, need)
    x = _signal(n_in)
    y = t.apply(x, draw)
    assert y.shape == (N,) and y.dtype == np.float32
    # The crop is taken before the speed change, so the output is the speed-changed crop.
    crop = tile_to_length(x[draw.crop_start:], need)
    assert np.array_equal(y, tile_to_length(change_speed(crop, speed), N))


def test_crop_window_and_short_clip_tiling():
    t = _no_codec(speed=False)
    x = _signal(60000)
    for seed in range(5):
        y, extras = t(x, np.random.default_rng(seed), target=1, system="bonafide")
        assert extras["speed"] == IDENTITY_SPEED_LABEL and extras["compression"] == 0
        start = int(np.flatnonzero(x == y[0])[0])
        assert np.array_equal(y, x[start:start + N]) and start + N + 10 <= len(x)
    short = _signal(7000)
    y, _ = t(short, np.random.default_rng(0), target=1, system="bonafide")
    assert np.array_equal(y, tile_to_length(short, N))
    with pytest.raises(ValueError, match="empty waveform"):
        t(np.zeros(0, np.float32), np.random.default_rng(0), target=1, system="x")


def test_random_draws_cover_the_tables():
    t = PseudoLabelTransform(PseudoLabelConfig(), systems=SYSTEMS)
    draws = [t.draw(100000, np.random.default_rng(s)) for s in range(400)]
    assert {d.speed_label for d in draws} == set(range(16))
    assert {d.compression_label for d in draws} == set(range(10))
    assert 0.05 < np.mean([d.compression_label == 0 for d in draws]) < 0.17  # p_compression 0.9
    off = PseudoLabelTransform(PseudoLabelConfig(speed=False, compression=False))
    for s in range(20):
        d = off.draw(100000, np.random.default_rng(s))
        assert (d.speed_label, d.compression_label, d.crop_length) == (IDENTITY_SPEED_LABEL, 0, N + 10)


# ---- compression through the real ffmpeg -------------------------------------------------


def test_ffmpeg_runs_at_the_labelled_bitrate(ffmpeg_ok, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where ffmpeg's scratch files go
    seen = []
    real = ffmpeg_mod.ffmpeg_encode_decode

    def spy(x, sr, codec, kbps):
        y, enc = real(x, sr, codec, kbps)
        seen.append(enc)
        return y, enc

    monkeypatch.setattr(ffmpeg_mod, "ffmpeg_encode_decode", spy)
    t = PseudoLabelTransform(PseudoLabelConfig(), systems=SYSTEMS)
    x = _signal(N + 10, seed=3)
    for label, setting in enumerate(COMPRESSIONS):
        if label == 0:
            continue
        y = t.apply(x, Draw(IDENTITY_SPEED_LABEL, label, 0, N + 10))
        enc = seen[-1]
        assert (enc.codec, enc.requested_kbps, enc.applied_kbps) == (setting.codec, setting.kbps, setting.kbps)
        assert enc.sample_rate == SR and enc.n_samples == N + 10
        # File size over duration: CBR MP3 / constrained-VBR Opus sit at the label plus container
        # overhead; ffmpeg's ABR AAC overspends a little on this signal.
        assert 0.85 * setting.kbps < enc.bitrate_kbps < 1.25 * setting.kbps, (setting.name, enc.bitrate_kbps)
        # Lossy but aligned: far from bit-exact, still close to the input at lag 0.
        assert y.shape == (N,) and not np.array_equal(y, x[:N])
        corr = np.corrcoef(y, x[:N])[0, 1]
        assert corr > 0.9, (setting.name, corr)
    assert len(seen) == 9
    assert list(tmp_path.iterdir()) == []  # no scratch files left behind


def test_ffmpeg_failure_is_one_line(monkeypatch):
    monkeypatch.setenv(ffmpeg_mod.FFMPEG_ENV, "/nonexistent/ffmpeg")
    t = PseudoLabelTransform(PseudoLabelConfig(), systems=SYSTEMS)
    with pytest.raises(PseudoLabelError) as err:
        t.apply(_signal(2000), Draw(IDENTITY_SPEED_LABEL, compression_label("opus", 32), 0, N + 10))
    msg = str(err.value)
    assert "\n" not in msg and "opus@32kbps" in msg and "Fix:" in msg and "compression: false" in msg


# ---- determinism, synthesizer labels, extras, pickling ------------------------------------


def test_same_rng_same_output(ffmpeg_ok):
    t = PseudoLabelTransform(PseudoLabelConfig(), systems=SYSTEMS)
    x = _signal(70000, seed=1)
    a = t(x, np.random.default_rng((1, 2, 3)), target=0, system="melgan")
    b = t(x, np.random.default_rng((1, 2, 3)), target=0, system="melgan")
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    other = [t.draw(len(x), np.random.default_rng((1, 2, s))) for s in range(4, 9)]
    assert len(set(other)) > 1


def test_synthesizer_labels():
    t = _no_codec(speed=False)
    x = _signal(N + 10)
    rng = np.random.default_rng
    assert t(x, rng(0), target=1, system="hifigan")[1]["synthesizer"] == 0  # real, whatever its system
    for i, name in enumerate(SYSTEMS):
        assert t(x, rng(0), target=0, system=name)[1]["synthesizer"] == 1 + i
    with pytest.raises(ValueError) as err:
        t(x, rng(0), target=0, system="vits")
    assert "\n" not in str(err.value) and "'vits'" in str(err.value) and "systems=" in str(err.value)


def test_extras_keys_fixed_and_batchable():
    plain = _no_codec()
    with_f0 = _no_codec(f0=True)
    items = []
    for seed, (target, system) in enumerate([(1, "x"), (0, "waveglow")]):
        wave, extras = with_f0(_signal(50000, seed), np.random.default_rng(seed), target=target, system=system)
        assert set(extras) == set(EXTRA_KEYS) | {"f0"}
        assert extras["f0"].shape == (f0_frames(N),) == (192,) and extras["f0"].dtype == np.float32
        items.append({"wave": wave, "target": target, "filename": f"{seed}.wav", "meta": {}, "extras": extras})
        assert set(plain(_signal(50000, seed), np.random.default_rng(seed), target=target, system=system)[1]) \
            == set(EXTRA_KEYS)
    batch = collate(items)
    assert batch.wave.shape == (2, N)
    assert batch.extras["speed"].shape == (2,) and batch.extras["synthesizer"].tolist() == [0, 3]
    assert tuple(batch.extras["f0"].shape) == (2, 192)


def test_transform_pickles():
    t = _no_codec(f0=False)
    clone = pickle.loads(pickle.dumps(t))
    x = _signal(60000)
    a = t(x, np.random.default_rng(5), target=0, system="melgan")
    b = clone(x, np.random.default_rng(5), target=0, system="melgan")
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and clone.systems == SYSTEMS


def test_config_validation():
    with pytest.raises(ValueError, match="p_compression"):
        PseudoLabelConfig(p_compression=1.5)


# ---- F0 target ----------------------------------------------------------------------------


def test_f0_target_matches_torch_yin():
    ref = np.load(FIXTURES / "torchyin_f0_target.npz")
    got = f0_target(ref["input"])
    assert got.shape == ref["f0_target"].shape
    assert np.abs(got - ref["f0_target"]).max() < 1e-4
    assert (ref["f0_target"] > 0).any() and (ref["f0_target"] == 0).any()  # voiced and aperiodic frames


def test_f0_of_a_sine_and_frame_count():
    t = np.arange(N) / SR
    pitch = yin_pitch(np.sin(2 * np.pi * 200 * t))
    assert pitch.shape == (192,) and np.allclose(pitch, 200.0)
    assert f0_frames(1000) == 1 and yin_pitch(np.zeros(1000)).tolist() == [0.0]


class _MemorySource:
    """Four clips in memory, dataset labels (bonafide=0), each with its system name."""

    sample_rate = SR

    def __init__(self):
        self.rows = [(_signal(20000 + 9000 * i, i), label, system)
                     for i, (label, system) in enumerate([(0, "bonafide"), (1, "melgan"), (1, "waveglow"), (0, "-")])]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        wave, label, system = self.rows[i]
        return wave, label, {"filename": f"{i}.wav", "system": system}

    def meta(self, i):
        return self.__getitem__(i)[2]

    @property
    def labels(self):
        return np.array([r[1] for r in self.rows])

    @property
    def filenames(self):
        return [f"{i}.wav" for i in range(len(self.rows))]

    def durations(self):
        return np.array([len(r[0]) / SR for r in self.rows])


def test_training_loader_batches_the_pseudo_labels():
    from benchmark.data.loader import make_loader

    loader = make_loader(_MemorySource(), batch_size=4, train=True, num_samples=N, seed=3,
                         transform=_no_codec(f0=True))
    batch = next(iter(loader))
    assert batch.wave.shape == (4, N)
    assert set(batch.extras) == set(EXTRA_KEYS) | {"f0"} and tuple(batch.extras["f0"].shape) == (4, 192)
    by_file = dict(zip(batch.filenames, batch.extras["synthesizer"].tolist()))
    assert by_file == {"0.wav": 0, "1.wav": 2, "2.wav": 3, "3.wav": 0}
    assert all(0 <= s < 16 for s in batch.extras["speed"].tolist())
