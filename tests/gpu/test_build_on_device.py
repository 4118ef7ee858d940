"""A small ``codecfake_build`` build on each device (the tiny official-format FunCodec
checkpoint of tests/fixtures/funcodec_reference, 3 embedded utterances, ``--amp auto``)
against the same build on the CPU: the same rows in the same shards, every fake decodes to
the source's length, and the audio agrees.

Tolerance for the audio: bytes equal on the CPU (the build is deterministic).  On CUDA the
convolutions sum in another order, so samples may differ by float32 rounding, which after
16-bit FLAC is a few LSB; but a residual quantiser picks the nearest code, and a rounding
difference at a near tie flips a code and changes that frame (320 samples here) outright.  So
the CUDA bound is that 99% of samples agree within 1e-3 (about 33 LSB).  Codecs switch TF32 off
themselves unless it was chosen (``Codec._precision``), so the same build started with the
device's default flags (cuDNN convolutions in TF32) should agree as closely; it is recorded
beside it, not asserted.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from codecfake_build.build import REPORT, BuildConfig, build
from codecfake_build.codecs import parse_codec_list
from tests.codecfake_build.test_codec_funcodec import _official_dir
from tests.gpu.conftest import DEVICES, record, strict_float32

SPEC = "funcodec@en-libritts-ds320-nq4"


def _build(out, weights: str, device: str) -> dict:
    build(BuildConfig(corpora=[("embedded", None)], codecs=parse_codec_list(SPEC), out=out, limit=3,
                      weights={"funcodec": weights}, device=device, amp="auto", progress=False, shard_size=50))
    return json.loads((out / REPORT).read_text())


def _rows(out) -> dict[tuple[str, str], dict]:
    rows = [r for f in sorted(out.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return {(r["source_id"], r["codec"]): r for r in rows}


def _compare(cpu: dict, dev: dict, same_bytes: bool) -> tuple[float, int, int]:
    """(largest |difference|, samples off by more than 1e-3, samples) over matching rows."""
    worst, off, total = 0.0, 0, 0
    for key, row in dev.items():
        y, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        x, _ = sf.read(io.BytesIO(cpu[key]["audio"]["bytes"]), dtype="float32")
        assert sr == 16000 and len(y) == len(x) and np.isfinite(y).all(), key
        if same_bytes:
            assert row["audio"]["bytes"] == cpu[key]["audio"]["bytes"], key
        d = np.abs(y.astype(np.float64) - x)
        worst, off, total = max(worst, float(d.max(initial=0.0))), off + int((d > 1e-3).sum()), total + len(d)
    return worst, off, total


@pytest.mark.parametrize("device", DEVICES)
def test_build_on_device_matches_the_cpu_build(tmp_path, hub_cache, device):
    weights = str(_official_dir(tmp_path / "gn", "gn"))
    _build(tmp_path / "cpu", weights, "cpu")
    with strict_float32():
        report = _build(tmp_path / device, weights, device)
    cpu, dev = _rows(tmp_path / "cpu"), _rows(tmp_path / device)
    assert dev.keys() == cpu.keys() and any(codec != "none" for _, codec in dev)
    assert sorted(p.name for p in (tmp_path / device).rglob("*.parquet")) == \
        sorted(p.name for p in (tmp_path / "cpu").rglob("*.parquet"))
    worst, off, total = _compare(cpu, dev, same_bytes=device == "cpu")
    amp = report["amp_checks"][SPEC]
    extra = {}
    if device == "cuda":  # started with the device's default (TF32) flags, as a user's build is
        _build(tmp_path / "default_flags", weights, device)
        d_worst, d_off, _ = _compare(cpu, _rows(tmp_path / "default_flags"), same_bytes=False)
        extra = {"default_flags_max_abs_diff": d_worst, "default_flags_samples_over_tolerance": d_off}
    record("build_vs_cpu", device, max_abs_diff=worst, samples_over_tolerance=off, samples=total,
           amp_chosen=amp["chosen"], amp_diffs=amp["max_abs_diff"], **extra)
    assert off <= 0.01 * total, f"{off} of {total} samples differ by more than 1e-3 (largest {worst:.3g})"
    if device == "cpu":
        assert amp["chosen"] is None
    elif amp["chosen"] is not None:  # kept only if the check passed, as the codec test asserts in detail
        assert amp["max_abs_diff"][amp["chosen"]] <= 1e-3
