"""The build's CPU pipeline: the next shard decoded and resampled ahead in a thread, every row's
FLAC and each source's log-mel computed once in the quality pool.  None of it changes a byte:
shards, manifest and report are the same with the pipeline off (0 workers, no prefetch) and on."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecfake_build import build as build_module
from codecfake_build import quality, quality_pool
from codecfake_build.build import PREFETCH_ENV, BuildConfig, ShardPrefetch, build, list_utterances, load_shard, plan
from codecfake_build.codecs import parse_codec_list

from .test_quality_optional import speechlike, with_noise

SR = 16000
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Five sources in three shards of two (sorted by id); the corrupt one sits in the last shard,
    the one loaded ahead; one at 22.05 kHz so the prefetch thread resamples."""
    root = tmp_path_factory.mktemp("pipeline")
    (root / "spk").mkdir()
    sf.write(root / "spk" / "a.wav", speechlike(1.0), SR)
    sf.write(root / "spk" / "b.wav", with_noise(speechlike(0.8), 30), SR)
    sf.write(root / "spk" / "c.wav", speechlike(1.2)[::-1].copy(), SR)
    sf.write(root / "spk" / "d.wav", speechlike(0.9, sr=22050), 22050)
    (root / "spk" / "e.wav").write_bytes(b"RIFF\x00\x01garbage" * 20)
    return root


def cfg_for(corpus: Path, out: Path, workers: int, codecs: str = "mp3@32kbps,opus@16kbps") -> BuildConfig:
    return BuildConfig(corpora=[("folder", str(corpus))], codecs=parse_codec_list(codecs), out=out, language="en",
                       progress=False, ratios=(0, 0, 1), shard_size=2, quality_workers=workers)


def checksums(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "data").glob("*.parquet"))}


def report_without_timing(out: Path) -> dict:
    report = json.loads((out / "build_report.json").read_text().replace(str(out), "<out>"))
    report["summary"] = report["summary"].rsplit(" in ", 1)[0]  # "... in 1.2s": the only timing
    report["config"].pop("quality_workers")  # the setting compared, not an output
    return report


def warnings_of(caplog, out: Path) -> list[str]:
    return [r.getMessage().replace(str(out), "<out>") for r in caplog.records if r.levelno == logging.WARNING]


@needs_ffmpeg
def test_pipeline_on_and_off_give_the_same_bytes_report_and_log(corpus, tmp_path, monkeypatch, caplog):
    encoded_here = []
    real_encode = quality_pool.encode_flac
    monkeypatch.setattr(quality_pool, "encode_flac", lambda x, sr: encoded_here.append(1) or real_encode(x, sr))
    monkeypatch.setattr(build_module, "encode_flac", lambda x, sr: encoded_here.append(1) or real_encode(x, sr))
    off, on = tmp_path / "off", tmp_path / "on"

    monkeypatch.setenv(PREFETCH_ENV, "0")
    with caplog.at_level(logging.WARNING, logger="codecfake_build"):
        build(cfg_for(corpus, off, 0))
    log_off = warnings_of(caplog, off)
    assert len(encoded_here) == 4 * 3  # 0 workers: every row (real + 2 fakes) encoded in this process
    caplog.clear()
    encoded_here.clear()

    monkeypatch.setenv(PREFETCH_ENV, "1")
    with caplog.at_level(logging.WARNING, logger="codecfake_build"):
        build(cfg_for(corpus, on, 1))
    assert encoded_here == []  # with a worker, no row is encoded in the build process
    assert warnings_of(caplog, on) == log_off and any("e.wav" in m and "cannot decode" in m for m in log_off)

    assert len(checksums(off)) == 2 and checksums(on) == checksums(off)  # the all-bad third shard: no file
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (off, on)]
    assert manifests[0] == manifests[1]  # fingerprint, sha256s, skips
    assert report_without_timing(on) == report_without_timing(off)
    assert [s["path"].endswith("e.wav") for s in report_without_timing(on)["skipped"]] == [True]

    # A resume after a torn shard, with the pipeline on: the same bytes again.
    torn = sorted((on / "data").glob("*.parquet"))[0]
    torn.write_bytes(torn.read_bytes()[:100])
    build(cfg_for(corpus, on, 0))
    assert checksums(on) == checksums(off)


def test_the_next_shard_is_loaded_in_another_thread_one_ahead(corpus, monkeypatch, caplog):
    cfg = cfg_for(corpus, Path("unused"), 0)
    shards = plan(cfg, list_utterances(cfg)[0])["test"]
    loads: list[tuple[str, str]] = []
    real_load = build_module.load_audio
    monkeypatch.setattr(build_module, "load_audio",
                        lambda path: loads.append((Path(path).name, threading.current_thread().name))
                        or real_load(path))
    prefetch = ShardPrefetch(shards, None)
    with caplog.at_level(logging.WARNING, logger="codecfake_build"):
        first = prefetch.take(0)
        assert [n for n, _ in loads[:2]] == ["a.wav", "b.wav"]
        second = prefetch.take(1)
        third = prefetch.take(2)
    assert caplog.records == []  # the corrupt file's warning waits for build_shard (log_warnings)
    threads = dict(loads)
    assert threads["a.wav"] == "MainThread" and threads["c.wav"] == threads["e.wav"] == "shard-prefetch"
    assert prefetch._ahead is None  # nothing past the last shard
    # What a loader thread returns equals a load in place, array for array.
    for k, got in enumerate((first, second, third)):
        want = load_shard(shards[k], None)
        assert got.skipped == want.skipped and got.clipped == want.clipped
        assert all(np.array_equal(got.reals[i], want.reals[i]) for i in want.reals)
    assert [s["path"].endswith("e.wav") for s in third.skipped] == [True] and len(third.warnings) == 1


def test_prefetch_switch(monkeypatch):
    for value, on in (("0", False), ("off", False), ("1", True), ("", True)):
        monkeypatch.setenv(PREFETCH_ENV, value)
        assert ShardPrefetch.enabled_by_env() is on
    monkeypatch.delenv(PREFETCH_ENV)
    assert ShardPrefetch.enabled_by_env()


@needs_ffmpeg
def test_each_source_log_mel_is_computed_once_per_shard(corpus, tmp_path, monkeypatch):
    calls = []
    real_log_mel = quality.log_mel
    monkeypatch.setattr(quality, "log_mel", lambda x, sr=SR: calls.append(len(x)) or real_log_mel(x, sr))
    monkeypatch.setenv(PREFETCH_ENV, "0")
    build(cfg_for(corpus, tmp_path / "x", 0))
    sources, fakes = 4, 4 * 2
    assert len(calls) == sources + fakes  # before: 2 per fake (source and copy) = 16
