"""The optional --quality measures (wide-band PESQ, STOI) on inputs with known answers."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from codecfake_build.audio import load_audio, resample
from codecfake_build.quality import (QUALITY_INSTALL, IsolatedPesq, MeasureFailed, QualityUnavailableError,
                                     optional_quality, parse_quality_list, pesq_wb, require_measures, stoi_score)
from codecfake_build.schema import DATASET_FEATURES, dataset_features

pytest.importorskip("pesq", reason=f"the optional quality extra is not installed: {QUALITY_INSTALL}")
pytest.importorskip("pystoi", reason=f"the optional quality extra is not installed: {QUALITY_INSTALL}")

SR = 16000
BOTH = ["pesq", "stoi"]
#: P.862.2's mapping tops out here: the score of an identical copy.
PESQ_WB_MAX = 4.644


def speechlike(seconds: float = 2.0, sr: int = SR) -> np.ndarray:
    """Voiced syllables with gaps: harmonics of a gliding f0 up to ~4 kHz, so every STOI band has
    signal, and a 3 Hz syllable envelope that falls to zero, so PESQ finds utterances."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 * (1 + 0.1 * np.sin(2 * np.pi * 1.3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / np.sqrt(k) for k in range(1, 33))
    env = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2
    return (0.05 * x * env).astype(np.float32)


def with_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(x))
    noise *= np.sqrt(float(x.astype(np.float64) @ x) / (noise @ noise) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


def test_identical_signals_score_the_maximum():
    x = speechlike()
    values, failures = optional_quality(x, x.copy(), BOTH)
    assert failures == {}
    assert values["pesq_wb"] == pytest.approx(PESQ_WB_MAX, abs=1e-3)
    assert values["stoi"] == pytest.approx(1.0, abs=1e-6)


def test_gain_barely_matters():
    x = speechlike()
    assert pesq_wb(x, 0.5 * x) == pytest.approx(PESQ_WB_MAX, abs=1e-3)
    assert stoi_score(x, 0.5 * x) == pytest.approx(1.0, abs=1e-6)


def test_more_noise_means_lower_scores():
    x = speechlike()
    scores = [optional_quality(x, with_noise(x, snr), BOTH)[0] for snr in (30, 10, 0)]
    pesq = [s["pesq_wb"] for s in scores]
    stoi = [s["stoi"] for s in scores]
    assert PESQ_WB_MAX - 0.5 > pesq[0] > pesq[1] > pesq[2] >= 1.0
    assert 1.0 > stoi[0] > stoi[1] > stoi[2] > 0.5


def test_other_rates_are_resampled_to_16k_first():
    x = speechlike()
    y = with_noise(x, 20)
    at_16k = optional_quality(x, y, BOTH)[0]
    x22, y22 = resample(x, SR, 22050), resample(y, SR, 22050)
    at_22k = optional_quality(x22, y22, BOTH, sr=22050)[0]
    # The same signals through a round trip 16 k -> 22.05 k -> 16 k: values barely move.
    assert at_22k["pesq_wb"] == pytest.approx(at_16k["pesq_wb"], abs=0.05)
    assert at_22k["stoi"] == pytest.approx(at_16k["stoi"], abs=0.01)


def test_silence_and_short_clips_become_null_with_a_reason():
    x = speechlike()
    silent = np.zeros_like(x)
    values, failures = optional_quality(silent, x, BOTH)
    assert values == {"pesq_wb": None, "stoi": None}
    assert failures == {"pesq": "the source is silent", "stoi": "the source is silent"}
    values, failures = optional_quality(x, silent, BOTH)
    assert values["pesq_wb"] is None and "codec output is silent" in failures["pesq"]
    assert values["stoi"] == pytest.approx(0.0, abs=1e-6) and "stoi" not in failures  # defined: unintelligible
    short = x[1000:1000 + int(0.2 * SR)]
    values, failures = optional_quality(short, short, BOTH)
    assert values == {"pesq_wb": None, "stoi": None}
    assert "0.25 s" in failures["pesq"] and "0.4 s" in failures["stoi"]
    # One syllable in 0.3 s: PESQ's own voice activity finds no utterance (its C code raises).
    one = x[: int(0.3 * SR)]
    values, failures = optional_quality(one, one, BOTH)
    assert values == {"pesq_wb": None, "stoi": None}
    assert failures["pesq"] == "PESQ: No utterances detected" and "0.4 s" in failures["stoi"]
    # 0.6 s = two syllables: PESQ has a value; STOI's silence removal leaves < 30 frames.
    two = x[: int(0.6 * SR)]
    values, failures = optional_quality(two, two, BOTH)
    assert values["pesq_wb"] == pytest.approx(PESQ_WB_MAX, abs=1e-3) and values["stoi"] is None
    assert list(failures) == ["stoi"]


def test_pesq_errors_become_reasons_in_the_worker(monkeypatch):
    """The function the worker process runs, called here: errors come back as tagged reasons."""
    import pesq

    from codecfake_build._pesq_worker import pesq_wb_in_worker

    x = speechlike(0.5)
    assert pesq_wb_in_worker(x, x, SR) == ("ok", pytest.approx(PESQ_WB_MAX, abs=1e-3))

    def out_of_memory(*args, **kwargs):
        raise pesq.OutOfMemoryError(b"Not enough memory")

    monkeypatch.setattr(pesq, "pesq", out_of_memory)
    assert pesq_wb_in_worker(x, x, SR) == ("failed", "PESQ: Not enough memory")
    monkeypatch.setattr(pesq, "pesq", lambda *a, **k: int(float("nan")))
    assert pesq_wb_in_worker(x, x, SR) == ("failed", "PESQ: ValueError: cannot convert float NaN to integer")


#: A worker that starts like the real one and dies the way the ITU code does on some long inputs.
CRASHING_WORKER = [sys.executable, "-c", "import ctypes, sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); "
                   "sys.stdin.buffer.read(16); ctypes.string_at(0)"]


def test_a_crash_of_the_c_code_costs_one_value_not_the_process():
    x = speechlike(1.0)
    crashing = IsolatedPesq(command=CRASHING_WORKER)
    try:
        with pytest.raises(MeasureFailed, match=r"PESQ C code crashed on this clip \(signal SIGSEGV"):
            crashing(x, x)
    finally:
        crashing.close()
    # The shared worker survives a real crash of the ITU code: 120 s of 360 syllables
    # overflows its tables (SIGSEGV); the next clip gets a value again from a new worker.
    values, failures = optional_quality(np.tile(x, 120), np.tile(x, 120), ["pesq"])
    assert values == {"pesq_wb": None} and "crashed" in failures["pesq"]
    assert pesq_wb(x, x) == pytest.approx(PESQ_WB_MAX, abs=1e-3)


def test_a_worker_that_cannot_start_names_the_fix():
    broken = IsolatedPesq(command=[sys.executable, "-c", "raise ImportError('No module named pesq')"])
    with pytest.raises(QualityUnavailableError, match=r"did not start: ImportError: No module named pesq\. "
                                                      r"Fix: pip install pesq==0\.0\.4"):
        broken(speechlike(0.5), speechlike(0.5))


def test_an_unforeseen_fault_costs_one_value_not_the_build(monkeypatch):
    import pystoi

    def broken(*args, **kwargs):
        raise IndexError("boom\nsecond line")

    monkeypatch.setattr(pystoi, "stoi", broken)
    x = speechlike(1.0)
    values, failures = optional_quality(x, x, BOTH)
    assert values["pesq_wb"] == pytest.approx(PESQ_WB_MAX, abs=1e-3) and values["stoi"] is None
    assert failures == {"stoi": "stoi: IndexError: boom second line"}


def test_unequal_lengths_are_a_reason_too():
    x = speechlike(1.0)
    values, failures = optional_quality(x, x[:-1], ["pesq"])
    assert values == {"pesq_wb": None} and "equal lengths" in failures["pesq"]


def test_no_measures_no_columns():
    x = speechlike(0.5)
    assert optional_quality(x, x, []) == ({}, {})


def test_parse_quality_list():
    assert parse_quality_list(None) == [] and parse_quality_list("") == []
    assert parse_quality_list("stoi,pesq") == ["pesq", "stoi"]  # canonical order: one build, one fingerprint
    assert parse_quality_list(" PESQ , pesq ") == ["pesq"]
    assert parse_quality_list(["stoi"]) == ["stoi"]
    with pytest.raises(ValueError, match=r"--quality visqol: unknown measure; choose from pesq, stoi"):
        parse_quality_list("pesq,visqol")


def test_missing_package_names_the_install(monkeypatch):
    require_measures(BOTH)  # installed here: no error
    monkeypatch.setitem(sys.modules, "pystoi", None)  # an import of it now raises ImportError
    with pytest.raises(QualityUnavailableError) as err:
        require_measures(BOTH)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("--quality stoi needs the package(s) pystoi")
    assert "pip install pesq==0.0.4 pystoi==0.4.1" in msg
    require_measures(["pesq"])  # only what was asked for is required


def test_schema_has_the_optional_columns_only_when_asked():
    assert dataset_features([]) is DATASET_FEATURES
    both = dataset_features(["stoi", "pesq"])
    assert list(both)[: len(DATASET_FEATURES)] == list(DATASET_FEATURES)
    assert list(both)[len(DATASET_FEATURES):] == ["pesq_wb", "stoi"]
    assert both["pesq_wb"].dtype == "float32" and both["stoi"].dtype == "float32"
    assert list(dataset_features(["stoi"]))[-1] == "stoi" and "pesq_wb" not in dataset_features(["stoi"])
    with pytest.raises(ValueError, match="choose from pesq, stoi"):
        dataset_features(["mos"])


def test_real_speech_values(shared):
    """Real speech (CMU ARCTIC a0007): identical -> the maxima; white noise lowers both,
    by amounts close to those published for noisy speech."""
    x, sr = load_audio(shared / "data/speech/en/arctic/arctic_a0007.wav")
    x = resample(x, sr, SR)
    same = optional_quality(x, x, BOTH)[0]
    assert same["pesq_wb"] == pytest.approx(PESQ_WB_MAX, abs=1e-3) and same["stoi"] == pytest.approx(1.0, abs=1e-6)
    noisy = [optional_quality(x, with_noise(x, snr, seed=0), BOTH)[0] for snr in (20, 10, 0)]
    assert [round(v["stoi"], 2) for v in noisy] == pytest.approx([0.94, 0.88, 0.73], abs=0.03)
    assert noisy[0]["pesq_wb"] > noisy[1]["pesq_wb"] > noisy[2]["pesq_wb"] >= 1.0
