"""--quality in a real (small) build: the columns, the nulls and their reasons, the card,
the fixed schema per build and the refused resume with another setting."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from codecfake_build.build import BuildConfig, build
from codecfake_build.codecs import parse_codec_list
from codecfake_build.quality import QUALITY_INSTALL
from codecfake_build.schema import DATASET_FEATURES
from codecfake_build.writer import OutputConflictError

from .test_quality_optional import speechlike

pytestmark = [
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed"),
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("pesq", "pystoi")),
                       reason=f"the optional quality extra is not installed: {QUALITY_INSTALL}"),
]

SR = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Two speech-like clips with values, one of 0.2 s (too short for both measures)."""
    root = tmp_path_factory.mktemp("qcorpus")
    (root / "spk").mkdir()
    sf.write(root / "spk" / "long_a.wav", speechlike(1.5), SR)
    sf.write(root / "spk" / "long_b.wav", speechlike(1.2)[::-1].copy(), SR)
    sf.write(root / "spk" / "tiny.wav", speechlike(0.5)[1000:1000 + int(0.2 * SR)], SR)
    return root


def cfg_for(corpus: Path, out: Path, **kw) -> BuildConfig:
    return BuildConfig(corpora=[("folder", str(corpus))], codecs=parse_codec_list("mp3@32kbps"), out=out,
                       language="en", progress=False, ratios=(0, 0, 1), **kw)


def rows_of(out: Path) -> list[dict]:
    return [r for p in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("qds")
    return out, build(cfg_for(corpus, out, quality=["stoi", "pesq"]))


def test_columns_values_and_nulls(built):
    out, result = built
    table = pq.read_table(sorted((out / "data").glob("*.parquet"))[0])
    assert table.schema.names == [*DATASET_FEATURES, "pesq_wb", "stoi"]
    rows = {(r["source_id"], r["codec"]): r for r in rows_of(out)}
    assert len(rows) == 6
    for (src, codec), r in rows.items():
        if codec == "none":
            assert r["pesq_wb"] is None and r["stoi"] is None
        elif src == "spk/tiny":
            assert r["pesq_wb"] is None and r["stoi"] is None and r["si_snr_db"] is not None  # row kept
        else:  # MP3 at 32 kbps of a clean signal: audibly close, fully intelligible
            assert 1.0 <= r["pesq_wb"] < 4.644 and 0.9 < r["stoi"] <= 1.0
    assert result.quality == ["pesq", "stoi"] and result.quality_failure_counts() == {"pesq": 1, "stoi": 1}
    assert "quality null where the measure failed: pesq_wb on 1, stoi on 1 of 3 fakes" in result.summary()


def test_report_lists_each_null_with_its_reason(built):
    out, _ = built
    report = json.loads((out / "build_report.json").read_text())
    assert report["quality"] == ["pesq", "stoi"]
    failures = {f["measure"]: f for f in report["quality_failures"]}
    assert set(failures) == {"pesq", "stoi"}
    assert all(f["source_id"] == "spk/tiny" and f["codec"] == "mp3@32kbps" for f in failures.values())
    assert "0.25 s" in failures["pesq"]["reason"] and "0.4 s" in failures["stoi"]["reason"]
    assert sum(report["quality_failure_counts"]["pesq"].values()) == 1
    assert report["skipped"] == []  # a null measure is not a skipped row
    c1 = next(c for c in report["conditions"] if c["condition"] == "C1")
    assert 1.0 <= c1["mean_pesq_wb"] < 4.644 and 0.9 < c1["mean_stoi"] <= 1.0  # means over the two values
    assert "--quality pesq,stoi" in report["command"]


def test_card_documents_the_measures(built):
    card = (built[0] / "README.md").read_text()
    assert "mean PESQ (wb) | mean STOI |" in card
    assert "`pesq_wb`: ITU-T P.862.2 wide-band PESQ" in card and "mode `wb`" in card
    assert "| pesq_wb | Value |" in card and "| stoi | Value |" in card
    assert "`pesq_wb` 1, `stoi` 1 of 3 fakes" in card


def test_without_the_flag_the_columns_do_not_exist(corpus, tmp_path):
    out = tmp_path / "plain"
    result = build(cfg_for(corpus, out))
    table = pq.read_table(sorted((out / "data").glob("*.parquet"))[0])
    assert table.schema.names == list(DATASET_FEATURES)
    report = json.loads((out / "build_report.json").read_text())
    assert report["quality"] == [] and "quality_failures" not in report
    assert "quality null" not in result.summary() and "pesq" not in (out / "README.md").read_text()
    # The quality setting is recorded, so a later resume can name it.
    options = json.loads((out / "manifest.json").read_text())["options"]
    assert options["--quality"] == "none" and options["amp"] == "float32"


def test_resume_with_another_setting_is_refused(corpus, built, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(built[0], out)
    for other, named in ((None, "none"), (["pesq"], "pesq")):
        with pytest.raises(OutputConflictError) as err:
            build(cfg_for(corpus, out, quality=other or []))
        msg = str(err.value)
        assert "\n" not in msg and f"(--quality pesq,stoi there, {named} now)" in msg and "--overwrite" in msg
    # The same measures in another order are the same build: it resumes (nothing to redo).
    shards = {p: p.read_bytes() for p in (out / "data").glob("*.parquet")}
    result = build(cfg_for(corpus, out, quality=["pesq", "stoi"]))
    assert {p: p.read_bytes() for p in (out / "data").glob("*.parquet")} == shards
    # The failures recorded per shard survive the resume.
    assert result.quality_failure_counts() == {"pesq": 1, "stoi": 1}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (a subprocess would spend seconds importing)."""
    from codecfake_build.cli import main

    rc = main(list(args))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def one_error_line(result: tuple[int, str, str]) -> str:
    rc, _, err = result
    assert rc == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_cli_flag_errors_are_one_line(corpus, built, tmp_path, capsys, monkeypatch):
    base = ["--codec", "mp3@32kbps", "--corpus", f"folder={corpus}", "--language", "en", "--ratios", "0/0/1",
            "--no-progress"]
    line = one_error_line(run_cli(capsys, *base, "--quality", "pesq,visqol", "--out", str(tmp_path / "a")))
    assert "--quality visqol: unknown measure; choose from pesq, stoi" in line
    # Resuming the module's build without --quality names both settings.
    line = one_error_line(run_cli(capsys, *base, "--out", str(built[0])))
    assert "(--quality pesq,stoi there, none now)" in line
    # A missing package stops the build before any work, naming the pip command.
    monkeypatch.setitem(sys.modules, "pystoi", None)
    out = tmp_path / "b"
    line = one_error_line(run_cli(capsys, *base, "--quality", "stoi", "--out", str(out)))
    assert "needs the package(s) pystoi" in line and "pip install pesq==0.0.4 pystoi==0.4.1" in line
    assert not out.exists()
    # So does a PESQ worker process that cannot start.
    from codecfake_build import quality

    broken = quality.IsolatedPesq(command=[sys.executable, "-c", "raise SystemExit('cannot load the C code')"])
    monkeypatch.setattr(quality, "_ISOLATED_PESQ", broken)
    line = one_error_line(run_cli(capsys, *base, "--quality", "pesq", "--out", str(out)))
    assert "the PESQ worker" in line and "did not start: cannot load the C code" in line
    assert not out.exists()


def test_cli_builds_with_the_flag(corpus, tmp_path, capsys):
    out = tmp_path / "cli"
    rc, stdout, err = run_cli(capsys, "--codec", "mp3@32kbps", "--corpus", f"folder={corpus}", "--language", "en",
                              "--ratios", "0/0/1", "--no-progress", "--quality", "stoi", "--out", str(out))
    assert rc == 0, err
    assert "stoi on 1 of 3 fakes" in stdout
    rows = rows_of(out)
    assert "stoi" in rows[0] and "pesq_wb" not in rows[0]
    assert all(np.isfinite(r["stoi"]) for r in rows if r["codec"] != "none" and r["source_id"] != "spk/tiny")
    assert "--quality stoi" in (out / "README.md").read_text()  # the reproducing command
