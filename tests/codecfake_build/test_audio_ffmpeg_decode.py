"""Sources in containers libsndfile cannot read (.m4a/.aac: VoxCeleb2 ships AAC in .m4a) are
decoded by the real ffmpeg binary, with one-line errors when that is impossible."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from codecfake_build.audio import AudioError, load_audio
from codecfake_build.codecs.ffmpeg import FFMPEG_ENV

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")


@pytest.fixture(scope="module")
def m4a(tmp_path_factory):
    path = tmp_path_factory.mktemp("m4a") / "spk1_utt1.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:"
                    "duration=1.5", "-ac", "2", "-c:a", "aac", "-b:a", "96k", str(path)], check=True)
    return path


def test_m4a_is_decoded_by_ffmpeg_to_mono_at_its_rate(m4a):
    x, sr = load_audio(m4a)
    assert sr == 44100 and x.ndim == 1 and x.dtype == np.float32
    assert abs(len(x) - int(1.5 * 44100)) <= 2048  # AAC frames are 1024 samples
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * sr / len(x) - 440) < 2
    y, rate = load_audio(m4a, target_sr=16000)
    assert rate == 16000 and abs(len(y) - len(x) * 16000 / 44100) <= 1


def test_without_ffmpeg_the_error_says_what_to_install(m4a, monkeypatch):
    monkeypatch.setenv(FFMPEG_ENV, "/nonexistent/ffmpeg")
    with pytest.raises(AudioError, match=r"does not read \.m4a files and ffmpeg is not installed.*apt-get install "
                                         r"ffmpeg") as err:
        load_audio(m4a)
    assert "\n" not in str(err.value) and str(m4a) in str(err.value)


def test_a_corrupt_m4a_is_one_line_naming_ffmpeg(tmp_path):
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(b"\x00\x01not an mp4 container" * 50)
    with pytest.raises(AudioError, match=r"bad\.m4a: cannot decode audio \(ffmpeg: .+\)\. Fix: re-download") as err:
        load_audio(bad)
    assert "\n" not in str(err.value)
