"""Bad input never crashes a build, and each case has its documented behaviour:
clips shorter than a codec frame, silence, clipping, NaN, and audio of many minutes."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from codecfake_build.audio import chunk_starts, overlap_add
from codecfake_build.build import BuildConfig, build
from codecfake_build.codecs import Codec, CodecConfig, create_codec, parse_codec_list
from codecfake_build.quality import si_snr_db

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
SR = 16000


def voiced(seconds: float, sr: int = SR, f0: float = 130.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 7)) * (0.55 + 0.45 * np.sin(2 * np.pi * 2.5 * t))
    return (0.25 * x + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


class Identity(Codec):
    """A codec that returns its input: makes the framework's own arithmetic visible."""

    sample_rate: ClassVar[int] = SR
    configs: ClassVar[dict[str, CodecConfig]] = {"x": CodecConfig("x")}
    default_config: ClassVar[str] = "x"
    frame_size: ClassVar[int] = 320
    registry_name: ClassVar[str] = "identity-test"

    def __init__(self):
        super().__init__()
        self.calls: list[list[int]] = []

    def _resynthesize(self, batch):
        self.calls.append([len(x) for x in batch])
        assert all(len(x) >= self.frame_size for x in batch)
        return [x.copy() for x in batch]


# ---------------------------------------------------------------- short clips


def test_shorter_than_one_frame_is_padded_and_trimmed_back():
    codec = Identity()
    for n in (1, 37, 319):
        x = voiced(0.1)[:n]
        (y,) = codec.resynthesize([x], SR)
        assert len(y) == n and np.allclose(y, x, atol=1e-6)
    assert codec.calls[-1] == [320]  # the codec saw one whole frame


@needs_ffmpeg
@pytest.mark.parametrize("spec,n", [("mp3@32kbps", 100), ("aac@32kbps", 300), ("opus@16kbps", 50)])
def test_short_clip_through_a_real_codec_keeps_its_length(spec, n):
    x = voiced(0.1)[:n]
    (y,) = create_codec(spec).resynthesize([x], SR)
    assert len(y) == n and np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 0.99 + 1e-6
    (y22,) = create_codec(spec).resynthesize([voiced(0.1, 22050)[:n]], 22050, SR)
    assert len(y22) == round(n * SR / 22050)


# ---------------------------------------------------------------- long clips


def test_chunk_layout_covers_every_sample_once_after_crossfade():
    for n in (1, 999, 1000, 1001, 5432):
        starts = chunk_starts(n, window=1000, overlap=100)
        assert starts[0] == 0 and starts[-1] + 1000 >= n
        assert all(b - a == 900 for a, b in zip(starts, starts[1:]))
        chunks = [np.ones(min(1000, n - s), np.float32) for s in starts]
        assert np.allclose(overlap_add(chunks, starts, n, 100), 1.0)  # weights sum to one
    with pytest.raises(ValueError):
        chunk_starts(10, window=100, overlap=100)


def test_six_minutes_are_coded_in_frame_aligned_windows():
    codec = Identity()
    window, overlap = codec.chunk_geometry()
    assert window == 30 * SR and overlap == SR and window % 320 == 0 and overlap % 320 == 0
    long = voiced(360.0)
    short = voiced(2.0, seed=1)
    y_long, y_short = codec.resynthesize([long, short], SR)
    assert len(y_long) == len(long) and len(y_short) == len(short)
    # Identity in, identity out: the cross-fade reassembles the input (bar peak limiting).
    assert np.max(np.abs(y_long - long)) < 1e-6 and np.max(np.abs(y_short - short)) < 1e-6
    pieces = [n for call in codec.calls for n in call]
    assert max(pieces) <= window and len(pieces) == 13 + 1  # ceil((360-1)/29) windows + the short clip
    assert all(len(call) <= 2 for call in codec.calls)  # never more windows per call than the batch size


@needs_ffmpeg
def test_six_minute_clip_through_mp3():
    x = voiced(360.0, seed=3)
    (y,) = create_codec("mp3@32kbps").resynthesize([x], SR)
    assert len(y) == len(x)
    # The whole clip is as close to its source as a 20 s clip coded in one go.
    (ref,) = create_codec("mp3@32kbps").resynthesize([x[: 20 * SR]], SR)
    assert si_snr_db(x, y) > si_snr_db(x[: 20 * SR], ref) - 3
    # No seam: around each window join the copy is as good as elsewhere.
    hop = 29 * SR
    for join in (hop, 2 * hop, 12 * hop):
        seg = slice(join - SR, join + 2 * SR)
        assert si_snr_db(x[seg], y[seg]) > si_snr_db(x, y) - 6


# ---------------------------------------------------------------- the build


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    spk = root / "spk"
    spk.mkdir()
    sf.write(spk / "normal.wav", voiced(1.0), SR)
    sf.write(spk / "tiny.wav", voiced(0.01), SR)  # 160 samples: under every codec's frame
    sf.write(spk / "one_sample.wav", voiced(0.01)[:1] + 0.1, SR)
    sf.write(spk / "clipped_int16.wav", np.clip(4 * voiced(1.0, seed=5), -1, 1), SR, subtype="PCM_16")
    sf.write(spk / "over_full_scale.wav", 6 * voiced(1.0, seed=6), SR, subtype="FLOAT")  # peak ~1.6
    sf.write(spk / "silent.wav", np.zeros(SR, np.float32), SR)
    nan = voiced(1.0, seed=7)
    nan[50] = np.nan
    sf.write(spk / "nan.wav", nan, SR, subtype="FLOAT")
    sf.write(spk / "six_minutes.flac", voiced(360.0, seed=8), SR)
    return root


def run_build(corpus: Path, out: Path, **kw) -> tuple[list[dict], dict]:
    cfg = BuildConfig(corpora=[("folder", str(corpus))], codecs=parse_codec_list("mp3@32kbps"), out=out,
                      language="en", ratios=(0, 0, 1), progress=False, **kw)
    build(cfg)
    rows = [r for p in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    return rows, json.loads((out / "build_report.json").read_text())


@pytest.fixture(scope="module")
def built(bad_corpus, tmp_path_factory):
    return run_build(bad_corpus, tmp_path_factory.mktemp("out"))


@needs_ffmpeg
def test_build_survives_every_bad_input(built):
    rows, report = built
    kept = {r["source_id"] for r in rows}
    assert kept == {"spk/normal", "spk/tiny", "spk/one_sample", "spk/clipped_int16", "spk/over_full_scale",
                    "spk/six_minutes"}
    reasons = {Path(s["path"]).stem: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"silent", "nan"}
    assert "silence" in reasons["silent"] and "NaN" in reasons["nan"]
    for r in rows:
        wave, sr = sf.read(io.BytesIO(r["audio"]["bytes"]), dtype="float32")
        assert sr == SR and np.max(np.abs(wave)) <= 0.99 + 1e-4
        assert np.all(np.isfinite(wave))


@needs_ffmpeg
def test_short_and_long_copies_keep_the_source_length(built):
    rows, _ = built
    dur = {}
    for r in rows:
        dur.setdefault(r["source_id"], set()).add(round(r["duration_s"], 6))
    assert all(len(d) == 1 for d in dur.values()), dur  # copy == source, per utterance
    assert dur["spk/tiny"] == {0.01} and dur["spk/one_sample"] == {round(1 / SR, 6)}
    assert dur["spk/six_minutes"] == {360.0}
    long_fake = next(r for r in rows if r["source_id"] == "spk/six_minutes" and r["codec"] == "mp3")
    assert long_fake["si_snr_db"] > 5 and long_fake["logmel_distance"] > 0


@needs_ffmpeg
def test_clipped_sources_are_kept_and_flagged(built):
    rows, report = built
    flagged = {r["source_id"] for r in rows if r["clipped"]}
    assert flagged == {"spk/clipped_int16", "spk/over_full_scale"}
    assert report["clipped_sources"] == ["folder/spk/clipped_int16", "folder/spk/over_full_scale"]
    over = [r for r in rows if r["source_id"] == "spk/over_full_scale"]
    assert {r["condition"] for r in over} == {"real", "C1"}
    # Scaled to 0.99 before the codec, so mp3 adds no clipping of its own: still a close copy.
    assert next(r for r in over if r["codec"] == "mp3")["si_snr_db"] > 5


@needs_ffmpeg
def test_max_seconds_refuses_long_sources_with_a_reason(bad_corpus, tmp_path):
    small = tmp_path / "c"
    (small / "spk").mkdir(parents=True)
    shutil.copy(bad_corpus / "spk" / "normal.wav", small / "spk")
    shutil.copy(bad_corpus / "spk" / "six_minutes.flac", small / "spk")
    rows, report = run_build(small, tmp_path / "o", max_seconds=60)
    assert {r["source_id"] for r in rows} == {"spk/normal"}
    (skip,) = report["skipped"]
    assert skip["path"].endswith("six_minutes.flac")
    assert skip["reason"] == ("audio is longer than --max-seconds (360.0 s > 60 s); raise --max-seconds "
                              "(0 = no limit) or split the file")
    assert "--max-seconds 60" in report["command"]


def test_undecodable_embedded_bytes_give_a_stable_one_line_error():
    from codecfake_build.audio import AudioError, decode_audio_bytes

    messages = set()
    for _ in range(2):  # a fresh buffer each time: its address must not reach the message
        with pytest.raises(AudioError) as err:
            decode_audio_bytes(b"not audio" * 8, name="train row 7")
        messages.add(str(err.value))
    (message,) = messages
    assert message.startswith("train row 7: cannot decode embedded audio (")
    assert "0x" not in message and "\n" not in message and message.endswith("Fix: rebuild the dataset")
