"""benchmarks/codec_throughput.py end to end on two embedded clips through mp3
(the cheapest real codec): the JSON it writes, the batched-vs-unbatched check,
skipped codecs and argument errors.  Nothing here asserts a speed: the numbers
depend on the machine and its load."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from tests.conftest import have_ffmpeg_encoder

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "codec_throughput.py"



needs_ffmpeg = pytest.mark.skipif(not have_ffmpeg_encoder("libmp3lame"), reason="ffmpeg with libmp3lame not installed")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("codec_throughput", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclass/annotation lookups need the module registered
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


@needs_ffmpeg
def test_mp3_two_clips_json_schema_and_batched_matches(script, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = script.main(["--codec", "mp3", "--clips", "2", "--repeats", "1", "--batch-size", "2",
                      "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "baseline xRT" in printed and "mp3@32kbps" in printed

    res = json.loads(out.read_text())
    assert res["schema"] == script.SCHEMA
    for key in ("date", "commit", "torch", "device", "device_name", "settings", "clips", "codecs"):
        assert key in res
    assert res["device"] == "cpu" and res["device_name"]
    assert res["settings"]["batch_size"] == 2 and res["settings"]["repeats"] == 1
    assert res["clips"]["count"] == 2 and len(res["clips"]["ids"]) == 2
    assert res["clips"]["ids"][0].startswith("embedded/")

    (row,) = res["codecs"]
    assert row["codec"] == "mp3@32kbps" and row["status"] == "ok" and row["reason"] is None
    assert row["device"] == "cpu" and row["random_init"] is False
    assert math.isclose(row["audio_seconds"], res["clips"]["audio_seconds"])
    for mode in ("baseline", "batched"):
        assert len(row[mode]["seconds"]) == 1
        assert row[mode]["x_realtime"] > 0
        assert math.isclose(row[mode]["x_realtime"], row["audio_seconds"] / row[mode]["best_seconds"])
    assert math.isclose(row["ratio_batched_over_baseline"],
                        row["baseline"]["best_seconds"] / row["batched"]["best_seconds"])
    # The correctness half of the benchmark: batching must not change the audio.
    assert row["max_abs_diff"] <= 1e-4 and row["matches"] is True
    assert 0 < row["output_peak"] <= 1


def test_unknown_codec_is_a_one_line_error(script, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = script.main(["--codec", "mp4", "--json", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: unknown codec 'mp4'") and "mp3" in err
    assert not out.exists()


def test_codec_that_cannot_load_is_skipped_not_fatal(script, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = script.main(["--codec", "soundstream-lyra", "--weights", f"soundstream-lyra={tmp_path / 'none'}",
                      "--clips", "1", "--repeats", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    skipped = [line for line in printed.splitlines() if "skipped: " in line]
    # Once as it happens, once in the table (with the reason, so the table stands alone).
    assert len(skipped) == 2 and skipped[0].startswith("soundstream-lyra@9.2kbps: skipped: ")
    assert skipped[1].split()[0] == "soundstream-lyra@9.2kbps" and "skipped: " in skipped[1]
    (row,) = json.loads(out.read_text())["codecs"]
    assert row["status"] == "skipped" and row["reason"] and "baseline" not in row


def test_help_has_description_and_examples(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "x real time" in text and "examples:" in text and "--random-init" in text


def test_default_run_covers_every_registered_codec_and_says_why_one_is_skipped(script, tmp_path, capsys,
                                                                                monkeypatch):
    from codecfake_build.codecs import CODECS

    assert [s.name for s in script.default_specs()] == CODECS.names()
    assert all(s.config == CODECS.get(s.name).default_config for s in script.default_specs())

    def fake_bench(spec, clips, args, weights):  # no timing: only which codecs the default run visits
        return {"codec": str(spec), "status": "skipped", "reason": f"{spec.name} weights missing (test)",
                "device": None, "weights": None, "random_init": False, "note": None}

    monkeypatch.setattr(script, "bench_codec", fake_bench)
    out = tmp_path / "all.json"
    assert script.main(["--clips", "1", "--repeats", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())["codecs"]
    assert [r["codec"].split("@")[0] for r in rows] == CODECS.names()
    for name in CODECS.names():
        assert f"skipped: {name} weights missing (test)" in printed  # live line and table row


@needs_ffmpeg
def test_random_init_on_a_codec_without_it_loads_it_normally_and_says_so(script, tmp_path, capsys):
    out = tmp_path / "res.json"
    assert script.main(["--codec", "mp3", "--random-init", "--clips", "1", "--repeats", "1",
                        "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["codecs"]
    assert row["status"] == "ok" and row["random_init"] is False
    assert row["note"].startswith("no random init for this codec")
    assert "mp3@32kbps: no random init" in capsys.readouterr().out


def test_amp_is_timed_only_after_the_builders_check(script, tmp_path, capsys, hub_cache):
    from tests.codecfake_build.test_codec_funcodec import _official_dir

    weights = _official_dir(tmp_path / "gn", "gn")
    out = tmp_path / "amp.json"
    common = ["--codec", "funcodec@en-libritts-ds320-nq4", "--weights", f"funcodec={weights}", "--clips", "2",
              "--repeats", "1", "--batch-size", "2", "--json", str(out)]
    assert script.main([*common, "--amp", "bf16", "--amp-tolerance", "10"]) == 0
    amp = json.loads(out.read_text())["codecs"][0]["amp"]
    assert amp["chosen"] == "bf16" and 0 < amp["max_abs_diff"]["bf16"] <= 10
    assert amp["batched"]["best_seconds"] > 0 and amp["ratio_amp_batched_over_baseline"] > 0
    # A dtype that moves the output past the tolerance is reported and never timed.
    assert script.main([*common, "--amp", "bf16", "--amp-tolerance", "1e-9"]) == 0
    amp = json.loads(out.read_text())["codecs"][0]["amp"]
    assert amp["chosen"] is None and "changes the output" in amp["reason"] and "batched" not in amp
