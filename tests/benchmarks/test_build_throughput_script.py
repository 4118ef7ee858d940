"""benchmarks/build_throughput.py end to end on a tiny folder corpus through mp3: the JSON and the
printed line report the sources the build really had, not the --clips limit asked for (the
committed result once said 33 sources for a folder of 32).  No speed is asserted."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import have_ffmpeg_encoder

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "build_throughput.py"



@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("build_throughput", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


@pytest.mark.skipif(not have_ffmpeg_encoder("libmp3lame"), reason="ffmpeg with libmp3lame not installed")
def test_sources_counts_what_the_corpus_held_not_the_limit(script, tmp_path, capsys):
    corpus = tmp_path / "clips" / "spk"
    corpus.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        tone = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * np.arange(8000) / 16000)
        sf.write(corpus / f"u{i}.wav", (tone + 0.01 * rng.standard_normal(8000)).astype(np.float32), 16000)
    out = tmp_path / "res.json"
    rc = script.main(["--corpus", f"folder={corpus.parent}", "--clips", "5", "--workers", "1",
                      "--repeats", "1", "--shard-size", "2", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    res = json.loads(out.read_text())
    assert res["clips"] == 5 and res["sources"] == 3 and res["rows"] == 6
    assert "6 rows (3 sources, mp3@32kbps)" in printed
    assert res["identical_output"] is True
