"""``--preset codecfake``: the paper's table, availability checks before any work,
and an end-to-end build on miniature VCTK + AISHELL-3 trees with cheap ffmpeg
codecs substituted for the seven neural codecs (same preset logic, seconds not hours)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from codecfake_build import presets
from codecfake_build.build import BuildConfig, build, plan
from codecfake_build.cli import main as cli_main
from codecfake_build.codecs import CODECS, CodecUnavailableError
from codecfake_build.corpora import Utterance
from codecfake_build.presets import CODECFAKE, Condition, Preset

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")

PAPER_ORDER = ["soundstream-lyra", "speechtokenizer", "funcodec", "encodec", "audiodec", "hificodec", "dac"]
# Seven distinct cheap configs standing in for C1..C7 (C7 again test-only).
SUBSTITUTES = ["mp3@16kbps", "mp3@32kbps", "opus@16kbps", "opus@32kbps", "aac@16kbps", "aac@32kbps", "mp3@64kbps"]


def substitute(preset: Preset, specs: list[str]) -> Preset:
    conds = tuple(dataclasses.replace(c, codec=s.split("@")[0], config=s.split("@")[1] if "@" in s else None)
                  for c, s in zip(preset.conditions, specs))
    return dataclasses.replace(preset, conditions=conds)


def tone(seconds: float, sr: int, f0: float) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(9 * t))).astype(
        np.float32)


def make_vctk_and_aishell3(root: Path) -> tuple[Path, Path]:
    vctk = root / "VCTK-Corpus-0.92"
    for s, spk in enumerate(("p225", "p226")):
        for i in range(1, 4):
            path = vctk / "wav48_silence_trimmed" / spk / f"{spk}_{i:03d}_mic1.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(0.4 + 0.1 * i, 48000, 120 + 30 * s), 48000)
            (vctk / "txt" / spk).mkdir(parents=True, exist_ok=True)
            (vctk / "txt" / spk / f"{spk}_{i:03d}.txt").write_text("Please call Stella.\n")
    aishell = root / "data_aishell3"
    lines = []
    for s, spk in enumerate(("SSB0005", "SSB0009")):
        for i in range(1, 4):
            utt = f"{spk}{i:04d}"
            path = aishell / "train" / "wav" / spk / f"{utt}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(0.4 + 0.1 * i, 44100, 200 + 30 * s), 44100)
            lines.append(f"{utt}.wav\t你 ni3 好 hao3\n")
    (aishell / "train" / "content.txt").write_text("".join(lines), encoding="utf-8")
    return vctk, aishell


def read_rows(out: Path) -> list[dict]:
    cols = ["split", "codec", "codec_config", "condition", "source_id", "corpus", "logmel_distance", "si_snr_db",
            "clipped", "label"]
    return [r for p in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(p, columns=cols).to_pylist()]


# ---------------------------------------------------------------- the table


def test_codecfake_table_is_the_papers_order_with_dac_unseen():
    assert [c.label for c in CODECFAKE.conditions] == [f"C{k}" for k in range(1, 8)]
    assert [c.codec for c in CODECFAKE.conditions] == PAPER_ORDER
    assert [c.test_only for c in CODECFAKE.conditions] == [False] * 6 + [True]
    assert CODECFAKE.split_by == "utterance" and CODECFAKE.ratios == (0.8, 0.1, 0.1)
    assert CODECFAKE.corpora == ("vctk", "aishell3")
    assert all(c.why and c.get_it for c in CODECFAKE.conditions)
    # The module doc carries the same table (the card copies `why`).
    for c in CODECFAKE.conditions:
        assert c.codec in presets.__doc__


@pytest.mark.parametrize("cond", CODECFAKE.conditions, ids=lambda c: c.label)
def test_real_preset_names_registered_codecs(cond: Condition):
    if cond.codec not in CODECS:
        pytest.skip(f"{cond.codec} is not registered yet (the preset reports it as unavailable)")
    cls = CODECS.get(cond.codec)
    assert cond.config is None or cond.config in cls.configs, (cond.codec, list(cls.configs))


def test_preset_splits_are_80_10_10_utterances_over_both_corpora():
    utts = [Utterance(f"{spk}_{i:03d}", Path("x"), spk, "en", "vctk") for spk in ("p225", "p226", "p227")
            for i in range(300)]
    utts += [Utterance(f"train/{spk}{i:04d}", Path("y"), spk, "cmn", "aishell3") for spk in ("SSB0005", "SSB0009")
             for i in range(300)]
    cfg = BuildConfig.from_preset("codecfake", corpora=[("vctk", "a"), ("aishell3", "b")], out=Path("o"),
                                  shard_size=10_000)
    shards = plan(cfg, utts)
    counts = {s: sum(len(sh) for sh in lst) for s, lst in shards.items()}
    assert counts == {"train": 1200, "validation": 150, "test": 150}
    speakers = {s: {p.utt.speaker for sh in lst for p in sh} for s, lst in shards.items()}
    # Utterance-level: every speaker of both corpora is in every split.
    assert all(sp == {"p225", "p226", "p227", "SSB0005", "SSB0009"} for sp in speakers.values())


# ---------------------------------------------------------------- availability


def test_unavailable_codecs_are_all_named_before_any_work(monkeypatch, tmp_path):
    broken = substitute(CODECFAKE, ["mp3@16kbps", "no-such-codec", "mp3@7kbps", "soundstream-lyra", "opus",
                                    "aac", "mp3@64kbps"])
    monkeypatch.setitem(presets.PRESETS, "codecfake", broken)
    vctk, aishell = make_vctk_and_aishell3(tmp_path / "corpora")
    out = tmp_path / "out"
    cfg = BuildConfig.from_preset("codecfake", corpora=[("vctk", str(vctk)), ("aishell3", str(aishell))], out=out,
                                  weights={"soundstream-lyra": str(tmp_path / "no_weights")}, progress=False)
    with pytest.raises(CodecUnavailableError) as info:
        build(cfg)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("preset codecfake: 3 of 7 codecs unavailable")
    assert "C2 no-such-codec: codec 'no-such-codec' is not registered" in msg
    assert "C3 mp3@7kbps" in msg and "C4 soundstream-lyra@9.2kbps" in msg
    assert "get it: " in msg and "--skip-unavailable" in msg
    assert not out.exists()  # nothing was written: the check ran before any work


def test_cli_preset_errors(monkeypatch, tmp_path, capsys):
    assert cli_main(["--preset", "codecfake", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --preset codecfake needs the paper's corpora: --corpus vctk=PATH --corpus "
                          "aishell3=PATH")
    assert cli_main(["--preset", "nope", "--corpus", "vctk=/x", "--out", str(tmp_path / "o")]) == 2
    assert "unknown preset 'nope'. Choose one of: codecfake" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --codec and --preset exclude each other
        cli_main(["--preset", "codecfake", "--codec", "mp3"])


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def preset_build(tmp_path_factory):
    """C2 made unavailable on purpose; --skip-unavailable builds C1, C3..C7."""
    mp = pytest.MonkeyPatch()
    specs = list(SUBSTITUTES)
    specs[1] = "no-such-codec"
    mp.setitem(presets.PRESETS, "codecfake", substitute(CODECFAKE, specs))
    root = tmp_path_factory.mktemp("preset")
    vctk, aishell = make_vctk_and_aishell3(root / "corpora")
    out = root / "out"
    argv = ["--preset", "codecfake", "--skip-unavailable", "--corpus", f"vctk={vctk}", "--corpus",
            f"aishell3={aishell}", "--ratios", "50/17/33", "--export", "codecfake", "--no-progress",
            "--out", str(out)]
    rc = cli_main(argv)
    mp.undo()
    assert rc == 0
    return out


@needs_ffmpeg
def test_preset_rows_conditions_and_pairs(preset_build):
    rows = read_rows(preset_build)
    by_split = defaultdict(Counter)
    for r in rows:
        by_split[r["split"]][r["condition"]] += 1
        assert (r["condition"] == "real") == (r["codec"] == "none")
    train_conds = {"real", "C1", "C3", "C4", "C5", "C6"}
    for split in ("train", "validation"):
        assert set(by_split[split]) == train_conds, split  # no C7 (unseen), no C2 (unavailable)
    assert set(by_split["test"]) == train_conds | {"C7"}
    # Every test condition pairs with the same real test utterances.
    real_test = {r["source_id"] for r in rows if r["split"] == "test" and r["condition"] == "real"}
    assert len(real_test) == 4 and {r["corpus"] for r in rows if r["split"] == "test"} == {"vctk", "aishell3"}
    for cond in ("C1", "C3", "C4", "C5", "C6", "C7"):
        assert {r["source_id"] for r in rows if r["split"] == "test" and r["condition"] == cond} == real_test
    # C7 is the substitute for DAC: mp3@64kbps, only in test.
    assert {(r["codec"], r["codec_config"]) for r in rows if r["condition"] == "C7"} == {("mp3", "64kbps")}


@needs_ffmpeg
def test_preset_quality_columns(preset_build):
    rows = read_rows(preset_build)
    for r in rows:
        if r["label"] == 0:
            assert r["logmel_distance"] is None and r["si_snr_db"] is None
        else:
            assert r["logmel_distance"] > 0 and np.isfinite(r["si_snr_db"])
        assert r["clipped"] is False
    mean = {c: np.mean([r["si_snr_db"] for r in rows if r["condition"] == c]) for c in ("C1", "C7")}
    assert mean["C7"] > mean["C1"]  # mp3 at 64 kbps is closer to its source than at 16 kbps


@needs_ffmpeg
def test_preset_report_card_and_export(preset_build):
    out = preset_build
    report = json.loads((out / "build_report.json").read_text())
    assert report["preset"] == "codecfake"
    assert [u["condition"] for u in report["unavailable"]] == ["C2"]
    assert report["command"].startswith("python -m codecfake_build --preset codecfake --skip-unavailable")
    conds = {c["condition"]: c for c in report["conditions"]}
    assert conds["C7"]["test_only"] and set(conds["C7"]["rows"]) == {"test"}
    assert conds["C1"]["mean_logmel_distance"] > 0
    card = (out / "README.md").read_text()
    assert "### Preset `codecfake`" in card and "Conditions left out" in card and "C2 `no-such-codec`" in card
    assert "test only (unseen in training)" in card and "## Quality columns" in card

    cf = out / "codecfake"
    assert (cf / "codec_map.txt").read_text().splitlines() == [
        "F01 mp3@16kbps", "F03 opus@16kbps", "F04 opus@32kbps", "F05 aac@16kbps", "F06 aac@32kbps", "F07 mp3@64kbps"]
    train = [ln.split() for ln in (cf / "label" / "train.txt").read_text().splitlines()]
    assert {k for _, _, k in train} == {"0", "1", "3", "4", "5", "6"}
    # Source names as in the release: p225_001.wav, SSB00050001.wav, F01_p225_001.wav.
    names = {n for n, _, _ in train}
    assert any(n.startswith("SSB") for n in names) and any(n.startswith("F01_p22") for n in names)
    assert not any("/" in n or n.startswith(("vctk_", "aishell3_", "train_")) for n in names)
    real_sets = []
    for k in (1, 3, 4, 5, 6, 7):
        lines = [ln.split() for ln in (cf / "label" / f"C{k}.txt").read_text().splitlines()]
        fakes = [n for n, kind, _ in lines if kind == "fake"]
        reals = sorted(n for n, kind, _ in lines if kind == "real")
        assert len(fakes) == len(reals) == 4 and all(n.startswith(f"F{k:02d}_") for n in fakes)
        assert sorted(p.name for p in (cf / "test" / f"C{k}").iterdir()) == sorted(fakes + reals)
        real_sets.append(reals)
    assert all(r == real_sets[0] for r in real_sets)
    assert not (cf / "test" / "C2").exists() and not (cf / "label" / "C2.txt").exists()


@needs_ffmpeg
def test_benchmark_reader_loads_the_preset_build(preset_build, tmp_path):
    from benchmark.data.built import BuiltDataset

    test = BuiltDataset(preset_build, "test", codecs=["none", "mp3@64kbps"], cache_dir=tmp_path / "hf")
    assert len(test) == 8  # 4 real test utterances + their C7 copies
    assert sorted(set(test.column("codec"))) == ["mp3", "none"]
