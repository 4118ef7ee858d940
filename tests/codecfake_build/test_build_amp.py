"""--amp in a real (small) build with the tiny official-format FunCodec checkpoint: the
check runs before any work, its decision is in the report and the fingerprint, and a resume
that would mix precisions is refused.  CPU autocast (bf16) stands in for CUDA here."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import codecfake_build.build as build_module
import codecfake_build.codecs.precision as precision
from codecfake_build.build import REPORT, BuildConfig, build
from codecfake_build.cli import main
from codecfake_build.codecs import parse_codec_list
from codecfake_build.writer import OutputConflictError
from tests.codecfake_build.test_codec_funcodec import _official_dir

SPEC = "funcodec@en-libritts-ds320-nq4"


@pytest.fixture
def weights(tmp_path, hub_cache):
    return str(_official_dir(tmp_path / "gn", "gn"))


def _cfg(out, weights, amp):
    return BuildConfig(corpora=[("embedded", None)], codecs=parse_codec_list(SPEC), out=out, limit=3,
                       weights={"funcodec": weights}, amp=amp, progress=False, shard_size=50)


def _audio(out):
    """Each row's FLAC bytes by (source, codec)."""
    rows = [r for f in sorted(out.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return {(r["source_id"], r["codec"]): r["audio"]["bytes"] for r in rows}


def test_auto_on_cpu_stays_float32_and_keeps_the_fingerprint(tmp_path, weights):
    off, auto = tmp_path / "off", tmp_path / "auto"
    build(_cfg(off, weights, "off"))
    build(_cfg(auto, weights, "auto"))
    report = json.loads((auto / REPORT).read_text())
    assert report["amp_checks"][SPEC]["chosen"] is None
    assert "only on CUDA" in report["amp_checks"][SPEC]["reason"]
    assert all(c.get("amp") is None for c in report["conditions"][1:])
    assert _audio(off) == _audio(auto)  # float32 either way: the same bytes
    build(_cfg(off, weights, "auto"))  # and the same build: resuming it is allowed


def test_a_dtype_that_passes_is_used_recorded_and_not_mixed_on_resume(tmp_path, weights, monkeypatch):
    monkeypatch.setattr(precision, "_candidates", lambda requested, device: ("bf16",))
    monkeypatch.setattr(build_module, "choose_amp",
                        lambda codec, clips, sr, requested: precision.choose_amp(codec, clips, sr, requested, 10.0))
    off, amp = tmp_path / "off", tmp_path / "amp"
    build(_cfg(off, weights, "off"))
    build(_cfg(amp, weights, "auto"))
    report = json.loads((amp / REPORT).read_text())
    assert report["amp_checks"][SPEC]["chosen"] == "bf16"
    assert report["conditions"][1]["amp"] == "bf16" and "--amp auto" in report["command"]
    fakes = {k: v for k, v in _audio(amp).items() if k[1] == "funcodec"}
    assert fakes and any(v != _audio(off)[k] for k, v in fakes.items())  # autocast really ran
    # Resuming the float32 build with a run that would write bf16 fakes is refused.
    with pytest.raises(OutputConflictError, match=f"amp float32 there, {SPEC}=bf16 now"):
        build(_cfg(off, weights, "auto"))


def test_explicit_dtype_that_fails_stops_before_any_work(tmp_path, weights, capsys):
    out = tmp_path / "bf16"
    rc = main(["--codec", SPEC, "--weights", f"funcodec={weights}", "--limit", "2", "--amp", "bf16",
               "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "--amp bf16 changes the output by up to" in err and "Fix: use --amp auto or off" in err
    assert not out.exists()
