"""soundstream-lyra: the real Lyra v2 models on real speech, plus weight resolution.

Model tests need ai-edge-litert and ../shared (Lyra v1.3.2 weights and its own test
utterances); weight-resolution and error tests run without the runtime.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecfake_build.codecs import CODECS, CodecUnavailableError, create_codec, parse_codec_list
from codecfake_build.codecs.lyra import LyraCodec
from tests.conftest import SHARED

FILES = ("soundstream_encoder.tflite", "quantizer.tflite", "lyragan.tflite")


def _weights(shared: Path) -> Path:
    return shared / "weights" / "lyra_v2"


def _speech(shared: Path, name: str = "sample1_16kHz.wav") -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(shared / "data" / "speech" / "en" / "lyra_testdata" / name), dtype="float32")
    return x, sr


def _best_lag(y: np.ndarray, x: np.ndarray, max_lag: int = 800) -> tuple[int, float]:
    """Lag (samples, positive = y late) maximising the normalised cross-correlation."""
    n = min(len(x), len(y))
    best = (0, -2.0)
    for lag in range(-max_lag, max_lag + 1):
        a, b = (y[lag:n], x[: n - lag]) if lag >= 0 else (y[: n + lag], x[-lag:n])
        r = float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b) + 1e-12))
        if r > best[1]:
            best = (lag, r)
    return best


@pytest.fixture
def litert():
    return pytest.importorskip("ai_edge_litert")


@pytest.fixture
def offline_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CODECFAKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODECFAKE_OFFLINE", "1")
    return tmp_path / "cache"


@pytest.fixture
def online_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CODECFAKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CODECFAKE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "cache"


# ---- registration ---------------------------------------------------------------------
def test_registered_with_lyra_bitrates():
    cls = CODECS.get("soundstream-lyra")
    assert cls is LyraCodec
    assert cls.sample_rate == 16000 and cls.frame_size == 320 and cls.default_config == "9.2kbps"
    stages = {k: c.params["num_quantizers"] for k, c in cls.configs.items()}
    assert stages == {"3.2kbps": 16, "6kbps": 30, "9.2kbps": 46}
    for c in cls.configs.values():  # 50 frames/s x 4 bits per stage
        assert c.bitrate_kbps == pytest.approx(c.params["num_quantizers"] * 4 * 50 / 1000)
    assert cls.licence == "Apache-2.0" and "google/lyra" in cls.weights_source and cls.paper
    assert [str(s) for s in parse_codec_list("soundstream-lyra@3.2kbps,soundstream-lyra")] == [
        "soundstream-lyra@3.2kbps", "soundstream-lyra@9.2kbps"]


# ---- real speech through the real models ------------------------------------------------
@pytest.fixture(scope="module")
def outputs():
    """Round trips of sample1 at every config, computed once for the module (so it
    cannot use the function-scoped ``shared`` fixture)."""
    pytest.importorskip("ai_edge_litert")
    if not SHARED.is_dir():
        pytest.skip("../shared not present")
    x, sr = _speech(SHARED)
    assert sr == 16000
    res = {}
    for cfg in LyraCodec.configs:
        codec = create_codec(f"soundstream-lyra@{cfg}", weights=str(_weights(SHARED)))
        (res[cfg],) = codec.resynthesize([x], sr)
    return x, res


@pytest.mark.parametrize("cfg, min_r", [("9.2kbps", 0.90), ("6kbps", 0.88), ("3.2kbps", 0.85)])
def test_round_trip_real_speech(outputs, cfg, min_r):
    x, res = outputs
    y = res[cfg]
    assert y.dtype == np.float32 and len(y) == len(x)  # 55177 samples: not a whole number of frames
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 0.99
    # It really was coded: measurably different, but the same speech, time-aligned.
    assert np.max(np.abs(y - x)) > 0.05
    lag, r = _best_lag(y, x)
    assert lag == 0, f"{cfg}: output is {lag} samples off after delay compensation"
    assert min_r < r < 0.99, f"{cfg}: correlation {r:.3f}"


def test_more_stages_is_closer_to_input(outputs):
    x, res = outputs
    r = {k: float(np.corrcoef(x, y)[0, 1]) for k, y in res.items()}
    assert r["9.2kbps"] > r["6kbps"] > r["3.2kbps"]
    err = {k: float(np.mean((y - x) ** 2)) for k, y in res.items()}
    assert err["9.2kbps"] < err["3.2kbps"]


def test_48khz_in_16khz_out(shared, litert):
    x48, sr = _speech(shared, "sample1_48kHz.wav")
    ref16, _ = _speech(shared, "sample1_16kHz.wav")  # the same utterance recorded at 16 kHz
    assert sr == 48000
    codec = create_codec("soundstream-lyra@9.2kbps", weights=str(_weights(shared)))
    (y,) = codec.resynthesize([x48], sr, out_sr=16000)
    assert len(y) == round(len(x48) * 16000 / 48000)
    lag, r = _best_lag(y, ref16)
    assert lag == 0 and r > 0.9


def test_same_input_twice_and_state_isolation(shared, litert):
    x, sr = _speech(shared)
    other, _ = _speech(shared, "sample2_16kHz.wav")
    codec = create_codec("soundstream-lyra", weights=str(_weights(shared)))
    (a,) = codec.resynthesize([x], sr)
    (b,) = codec.resynthesize([x], sr)
    np.testing.assert_array_equal(a, b)
    # In one batch after another utterance: any carried-over streaming state would
    # change the first second of x's output.
    c = codec.resynthesize([other, x], sr)[1]
    np.testing.assert_array_equal(a, c)


def test_clip_shorter_than_a_frame(shared, litert):
    x, sr = _speech(shared)
    codec = create_codec("soundstream-lyra", weights=str(_weights(shared)))
    short = x[8000:8100]
    outs = codec.resynthesize([short, x[:320], x[:321]], sr)
    assert [len(o) for o in outs] == [100, 320, 321]
    assert all(np.all(np.isfinite(o)) for o in outs)


# ---- weights and errors (no TFLite runtime needed) -------------------------------------------
def test_missing_weights_offline_names_file_and_flag(offline_cache):
    with pytest.raises(CodecUnavailableError) as e:
        LyraCodec().weights_dir()
    msg = str(e.value)
    for f in FILES:
        assert f in msg
    assert "--weights soundstream-lyra=" in msg and "offline" in msg
    assert not offline_cache.exists() or not any(offline_cache.rglob("*.tflite"))


def test_explicit_dir_missing_a_file(tmp_path, shared, offline_cache):
    d = tmp_path / "partial"
    d.mkdir()
    for f in FILES[:2]:
        (d / f).write_bytes((_weights(shared) / f).read_bytes())
    with pytest.raises(CodecUnavailableError, match=r"lyragan\.tflite.*--weights soundstream-lyra="):
        LyraCodec(weights=str(d)).weights_dir()


def test_load_reports_missing_weights(offline_cache, litert):
    codec = create_codec("soundstream-lyra@3.2kbps")
    with pytest.raises(CodecUnavailableError, match="--weights soundstream-lyra="):
        codec.resynthesize([np.zeros(1600, np.float32)], 16000)


def test_missing_runtime_says_how_to_install(monkeypatch, offline_cache):
    # None in sys.modules makes the import raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(CodecUnavailableError, match=r"pip install 'codecfake-bench\[lyra\]'"):
        LyraCodec().load()


def test_download_into_cache_from_file_url(shared, online_cache, monkeypatch):
    monkeypatch.setattr(LyraCodec, "weights_url_base", _weights(shared).as_uri())
    got = LyraCodec().weights_dir()
    assert got == online_cache / "soundstream-lyra"
    for f in FILES:
        assert (got / f).read_bytes() == (_weights(shared) / f).read_bytes()
        assert hashlib.sha256((got / f).read_bytes()).hexdigest() == LyraCodec.weight_files[f]
    assert sorted(p.name for p in got.iterdir()) == sorted(FILES)  # no leftover .part files
    # Second resolution is a cache hit: it must not touch the (now broken) URL.
    monkeypatch.setattr(LyraCodec, "weights_url_base", (shared / "nowhere").as_uri())
    assert LyraCodec().weights_dir() == got


def test_downloaded_weights_run(shared, online_cache, monkeypatch, litert):
    monkeypatch.setattr(LyraCodec, "weights_url_base", _weights(shared).as_uri())
    x, sr = _speech(shared)
    (y,) = create_codec("soundstream-lyra@3.2kbps").resynthesize([x[:16000]], sr)
    assert len(y) == 16000 and np.corrcoef(y, x[:16000])[0, 1] > 0.8


def test_corrupt_download_is_rejected(tmp_path, online_cache, monkeypatch):
    bad = tmp_path / "mirror"
    bad.mkdir()
    for f in FILES:
        (bad / f).write_bytes(b"not a tflite model")
    monkeypatch.setattr(LyraCodec, "weights_url_base", bad.as_uri())
    with pytest.raises(CodecUnavailableError, match="checksum mismatch"):
        LyraCodec().weights_dir()
    assert not any((online_cache / "soundstream-lyra").iterdir())


def test_unreachable_download_names_file_and_flag(tmp_path, online_cache, monkeypatch):
    monkeypatch.setattr(LyraCodec, "weights_url_base", (tmp_path / "empty").as_uri())
    with pytest.raises(CodecUnavailableError) as e:
        LyraCodec().weights_dir()
    msg = str(e.value)
    assert "soundstream_encoder.tflite could not be downloaded" in msg
    assert "--weights soundstream-lyra=" in msg
