"""Dataset readers on miniatures of the official download layouts (real
FLAC/WAV headers at each dataset's native sample rates, written here)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from benchmark.data.readers import DATASETS, ItemSource, dataset_help, open_dataset
from benchmark.data.source import DataError
from benchmark.runs import conditions_of
from codecfake_build.schema import BONAFIDE, SPOOF

SECONDS = 0.1


def write_audio(path: Path, sr: int, seed: int = 0) -> Path:
    """A short tone with noise, as FLAC or 16-bit WAV by extension, at ``sr``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(SECONDS * sr)
    x = 0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / sr) + 0.01 * rng.standard_normal(n)
    sf.write(str(path), x.astype(np.float32), sr, format="FLAC" if path.suffix == ".flac" else "WAV", subtype="PCM_16")
    return path


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
    return path


# ---- official-layout miniatures (shared with test_protocols) -------------------------------------------------


def make_asvspoof2019(base: Path) -> Path:
    la = base / "LA"
    rows = {
        "train": ["LA_0079 LA_T_1138215 - - bonafide", "LA_0079 LA_T_1271820 - A01 spoof", "LA_0080 LA_T_1000001 - A02 spoof"],
        "dev": ["LA_0069 LA_D_1047731 - - bonafide", "LA_0069 LA_D_1105538 - A03 spoof"],
        "eval": ["LA_0039 LA_E_2834763 - A11 spoof", "LA_0014 LA_E_8877452 - - bonafide", "LA_0014 LA_E_1000002 - A19 spoof"],
    }
    names = {"train": "train.trn", "dev": "dev.trl", "eval": "eval.trl"}
    for split, lines in rows.items():
        write_lines(la / "ASVspoof2019_LA_cm_protocols" / f"ASVspoof2019.LA.cm.{names[split]}.txt", lines)
        for i, line in enumerate(lines):
            write_audio(la / f"ASVspoof2019_LA_{split}" / "flac" / f"{line.split()[1]}.flac", 16000, i)
    return base


DF_ROWS = [
    "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -",
    "TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive Task1 team20 FF E",
    "TGF1 DF_E_2000024 mp3m4a vcc2020 Task2-team12 spoof notrim eval traditional_vocoder Task2 team12 FF G",
    "LA_0043 DF_E_2000030 high_mp3 asvspoof A16 spoof notrim eval waveform_concatenation - - - -",
    "LA_0043 DF_E_2000031 nocodec asvspoof A09 spoof notrim eval neural_vocoder_autoregressive - - - -",
    "VCC1 DF_E_2000040 low_ogg vcc2018 S05 spoof notrim hidden_track unknown - - - -",
    "LA_0044 DF_E_2000050 nocodec asvspoof bonafide bonafide notrim eval bonafide - - - -",
    "LA_0044 DF_E_2000051 low_mp3 asvspoof bonafide bonafide notrim progress bonafide - - - -",
]


def make_asvspoof2021_df(base: Path) -> Path:
    write_lines(base / "DF-keys-full" / "keys" / "DF" / "CM" / "trial_metadata.txt", DF_ROWS)
    for i, line in enumerate(DF_ROWS):  # the audio comes in several part archives
        part = f"ASVspoof2021_DF_eval_part0{i % 2}"
        write_audio(base / part / "ASVspoof2021_DF_eval" / "flac" / f"{line.split()[1]}.flac", 16000, i)
    return base


def make_in_the_wild(base: Path) -> Path:
    root = base / "release_in_the_wild"
    rows = [("0.wav", "Alec Guinness", "spoof"), ("1.wav", "Alec Guinness", "bona-fide"), ("2.wav", "Barack Obama", "spoof"),
            ("3.wav", "Barack Obama", "bona-fide")]
    root.mkdir(parents=True)
    with open(root / "meta.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "speaker", "label"])
        writer.writerows(rows)
    for i, (name, _, _) in enumerate(rows):
        write_audio(root / name, 16000, i)
    return base


LJ_IDS = [f"LJ001-{i:04d}" for i in range(1, 11)]
JSUT_IDS = [f"BASIC5000_{i:04d}" for i in range(1, 5)]
#: WaveFake folder -> file-name suffix as released.
WAVEFAKE_LJ = {"melgan": "_gen", "parallel_wavegan": "_gen", "multi_band_melgan": "_gen", "full_band_melgan": "_gen",
               "hifiGAN": "_generated", "melgan_large": "_gen", "waveglow": ""}


def make_wavefake(base: Path, fdadd_layout: bool = False) -> Path:
    """The official WaveFake download beside LJSpeech 1.1 and JSUT 1.1 (returns ``base``), or with
    ``fdadd_layout`` the FD-ADD authors' single folder (returns ``base/WaveFake``): real corpora as
    ``ljspeech_real/wavs`` and ``jsut_real``, the TTS prompts as ``ljspeech_tts``."""
    root = base / "WaveFake" if fdadd_layout else base
    gen = root if fdadd_layout else base / "generated_audio"
    for vocoder, suffix in WAVEFAKE_LJ.items():
        for i, uid in enumerate(LJ_IDS):
            write_audio(gen / f"ljspeech_{vocoder}" / f"{uid}{suffix}.wav", 22050, i)
    for vocoder in ("multi_band_melgan", "parallel_wavegan"):
        for i, uid in enumerate(JSUT_IDS):
            write_audio(gen / f"jsut_{vocoder}" / f"{uid}_gen.wav", 24000, i)
    tts = "ljspeech_tts" if fdadd_layout else "common_voices_prompts_from_conformer_fastspeech2_pwg_ljspeech"
    write_audio(gen / tts / "gen_0.wav", 22050)
    lj = root / "ljspeech_real" / "wavs" if fdadd_layout else base / "LJSpeech-1.1" / "wavs"
    jsut = root / "jsut_real" if fdadd_layout else base / "jsut_ver1.1" / "basic5000" / "wav"
    for i, uid in enumerate(LJ_IDS):
        write_audio(lj / f"{uid}.wav", 22050, i)
    for i, uid in enumerate(JSUT_IDS):
        write_audio(jsut / f"{uid}.wav", 48000, i)
    return root


LIBRI_IDS = [f"{spk}_123349_{p:06d}_000000" for spk in (27, 103, 1034) for p in range(4)]
LIBRI_VOCODERS = ("diffwave", "melgan", "parallel_wave_gan", "wavegrad", "wavenet", "wavernn")


def make_librisevoc(base: Path, lists: bool = True) -> Path:
    root = base / "LibriSeVoc"
    for i, uid in enumerate(LIBRI_IDS):
        write_audio(root / "gt" / f"{uid}.wav", 24000, i)
        for vocoder in LIBRI_VOCODERS:
            write_audio(root / vocoder / f"{uid}_gen.wav", 24000, i)
    if lists:
        write_lines(root / "train.txt", [f"{u}.wav" for u in LIBRI_IDS[:8]])
        write_lines(root / "dev.txt", [f"{u}.wav" for u in LIBRI_IDS[8:10]])
        write_lines(root / "test.txt", [f"{u}.wav" for u in LIBRI_IDS[10:]])
    return root


DECRO_ROWS = {
    "en_train": ["LA_0079 LA_T_1138215 - asv19 bonafide", "4 4-727-124443-0055 - baidu spoof", "5 5-2012-1-0032 - hifigan spoof"],
    "en_dev": ["LA_0069 LA_D_1047731 - asv19 bonafide", "7 7-1-1-0001 - fs2 spoof"],
    "en_eval": ["LA_0039 LA_E_1000001 - asv19 bonafide", "1 1-4993-40677-0048 - baidu_en spoof", "2 2-1-1-0002 - FastSpeech2 spoof"],
    "ch_train": ["G0034 T0055G0034S0223 - aidatatang bonafide", "unknown 20032114 - baidu spoof"],
    "ch_dev": ["SSB0005 SSB00050001 - aishell3 bonafide", "unknown 20032115 - Tacotron spoof"],
    "ch_eval": ["G0035 T0055G0035S0001 - aidatatang bonafide", "unknown 20032200 - fs2mtts spoof", "unknown 20032201 - StarGAN spoof"],
}


def make_decro(base: Path) -> Path:
    root = base / "DECRO"
    for name, lines in DECRO_ROWS.items():
        write_lines(root / f"{name}.txt", lines)
        for i, line in enumerate(lines):
            write_audio(root / name / f"{line.split()[1]}.wav", (16000, 22050, 24000, 44100)[i % 4], i)
    return root


#: Codecfake miniature: per split, (file, key, type) rows; codec copies at mixed native rates.
CODECFAKE_ROWS = {
    "train": [("p225_001.wav", "real", "0"), ("F01_p225_001.wav", "fake", "1"), ("F02_p225_001.wav", "fake", "2"),
              ("SSB00050001.wav", "real", "0"), ("F03_SSB00050001.wav", "fake", "3"), ("F06_SSB00050001.wav", "fake", "6"),
              ("p226_002.wav", "real", "0"), ("F04_p226_002.wav", "fake", "4"), ("F05_p226_002.wav", "fake", "5")],
    "dev": [("p227_003.wav", "real", "0"), ("F01_p227_003.wav", "fake", "1"), ("SSB00060002.wav", "real", "0"),
            ("F02_SSB00060002.wav", "fake", "2")],
    **{f"C{k}": [("p228_028.wav", "real", "0"), (f"F0{k}_p228_028.wav", "fake", str(k)),
                 ("SSB17820316.wav", "real", "0"), (f"F0{k}_SSB17820316.wav", "fake", str(k))] for k in range(1, 8)},
    "A1": [("p229_010.wav", "real", "0"), ("alm_0001.wav", "fake", "1")],
}
NATIVE_RATES = (16000, 24000, 44100, 48000)


def make_codecfake(base: Path, flat_tests: tuple[str, ...] = ("C7",)) -> Path:
    root = base / "Codecfake"
    for split, rows in CODECFAKE_ROWS.items():
        write_lines(root / "label" / f"{split}.txt", [" ".join(r) for r in rows])
        folder = root / split if split in ("train", "dev") or split in flat_tests else root / "test" / split
        for i, (name, _, _) in enumerate(rows):
            write_audio(folder / name, NATIVE_RATES[i % len(NATIVE_RATES)], i)
    return root


# ---- tests -----------------------------------------------------------------------------------------------------


def test_registry_lists_every_reader():
    assert DATASETS.names() == ["asvspoof2019-la", "asvspoof2021-df", "built", "codecfake", "decro", "in-the-wild",
                                "librisevoc", "wavefake"]
    assert "https://datashare.ed.ac.uk/handle/10283/3336" in dataset_help("asvspoof2019-la")


def test_asvspoof2019_la(tmp_path):
    base = make_asvspoof2019(tmp_path)
    for root in (base, base / "LA"):  # the folder holding LA/ or LA/ itself
        items = open_dataset("asvspoof2019-la", root).items()
        assert len(items) == 8
    by_id = {it.utt_id: it for it in items}
    assert by_id["LA_T_1138215"].label == BONAFIDE and by_id["LA_T_1138215"].attack == "bonafide"
    assert by_id["LA_E_2834763"].label == SPOOF and by_id["LA_E_2834763"].attack == "A11"
    assert by_id["LA_E_2834763"].speaker == "LA_0039" and by_id["LA_E_2834763"].split == "eval"
    assert open_dataset("asvspoof2019-la", base).splits() == ["dev", "eval", "train"]
    src = ItemSource([it for it in items if it.split == "eval"], condition_by="attack")
    wave, label, meta = src[0]
    assert wave.dtype == np.float32 and len(wave) == 1600 and meta["filename"] == src.filenames[0]
    assert conditions_of(src) == ["A19", "A11", "bonafide"]  # the run records' per-condition breakdown works


def test_asvspoof2021_df_categories_codecs_and_part_folders(tmp_path):
    reader = open_dataset("asvspoof2021-df", make_asvspoof2021_df(tmp_path))
    items = {it.utt_id: it for it in reader.items()}
    assert len(items) == len(DF_ROWS)
    it = items["DF_E_2000013"]
    assert (it.vocoder_category, it.compression, it.corpus, it.attack, it.speaker) == (
        "neural_vocoder_nonautoregressive", "low_m4a", "vcc2020", "Task1-team20", "TEF2")
    assert it.extra["subset"] == "eval" and it.get("subset") == "eval"
    assert {i.vocoder_category for i in items.values() if i.label == SPOOF} == {
        "traditional_vocoder", "waveform_concatenation", "neural_vocoder_autoregressive",
        "neural_vocoder_nonautoregressive", "unknown"}
    assert items["DF_E_2000050"].vocoder_category == "bonafide" and items["DF_E_2000050"].label == BONAFIDE
    assert "part01" in str(items["DF_E_2000013"].path)


def test_in_the_wild(tmp_path):
    base = make_in_the_wild(tmp_path)
    items = open_dataset("in-the-wild", base).items()
    assert [(it.utt_id, it.label, it.speaker, it.split) for it in items] == [
        ("0", SPOOF, "Alec Guinness", "test"), ("1", BONAFIDE, "Alec Guinness", "test"),
        ("2", SPOOF, "Barack Obama", "test"), ("3", BONAFIDE, "Barack Obama", "test")]
    bad = base / "release_in_the_wild" / "meta.csv"
    bad.write_text("file,speaker,label\n0.wav,A,maybe\n")
    with pytest.raises(DataError, match=r"meta.csv:2: 'maybe' is not a bonafide/spoof key"):
        open_dataset("in-the-wild", base).items()


def test_wavefake_groups_every_vocoder_version_by_utterance(tmp_path):
    base = make_wavefake(tmp_path)
    items = open_dataset("wavefake", base).items()
    lj = [it for it in items if it.source_id == "ljspeech/LJ001-0001"]
    # one real + seven vocoders, whatever their file-name suffix (_gen, _generated, none)
    assert sorted(it.vocoder for it in lj) == sorted(["bonafide", *WAVEFAKE_LJ])
    assert {it.language for it in items if it.corpus == "jsut"} == {"ja"}
    tts = [it for it in items if it.corpus == "commonvoice-prompts"]
    assert len(tts) == 1 and tts[0].vocoder_category == "tts"
    # native 22.05 / 24 / 48 kHz are all read as 16 kHz
    src = ItemSource([it for it in items if it.source_id in ("ljspeech/LJ001-0001", "jsut/BASIC5000_0001")])
    assert {len(src[i].wave) for i in range(len(src))} == {1600}
    assert np.allclose(src.durations(), SECONDS)


def test_wavefake_without_real_corpus_says_where_to_get_it(tmp_path):
    base = make_wavefake(tmp_path)
    (base / "LJSpeech-1.1" / "wavs").rename(base / "elsewhere")
    with pytest.raises(DataError, match=r"LJSpeech-1.1/wavs: bona-fide ljspeech audio not found.*keithito.com"):
        open_dataset("wavefake", base).items()
    items = open_dataset("wavefake", base, ljspeech_root=base / "elsewhere").items()
    assert sum(it.label == BONAFIDE for it in items) == len(LJ_IDS) + len(JSUT_IDS)
    assert all(it.label == SPOOF for it in open_dataset("wavefake", base, real=False).items())


def test_librisevoc_official_lists_and_vocoders(tmp_path):
    root = make_librisevoc(tmp_path)
    reader = open_dataset("librisevoc", root)
    items = reader.items()
    assert len(items) == len(LIBRI_IDS) * 7
    assert reader.splits() == ["dev", "test", "train"]
    versions = [it for it in items if it.source_id == LIBRI_IDS[9]]
    assert {it.split for it in versions} == {"dev"} and len(versions) == 7
    assert {it.vocoder_category for it in items if it.vocoder in ("wavenet", "wavernn")} == {"autoregressive"}
    assert versions[0].speaker == "1034"
    assert len(ItemSource(versions[:1])[0].wave) == 1600  # 24 kHz -> 16 kHz
    (root / "dev.txt").unlink()
    with pytest.raises(DataError, match=r"dev.txt: a split list of LibriSeVoc not found"):
        open_dataset("librisevoc", root).items()


def test_decro_languages_and_canonical_attacks(tmp_path):
    reader = open_dataset("decro", make_decro(tmp_path))
    items = {it.utt_id: it for it in reader.items()}
    assert len(items) == sum(len(v) for v in DECRO_ROWS.values())
    en = items["en_eval/1-4993-40677-0048"]
    assert (en.attack, en.extra["system"], en.language, en.split) == ("baidu", "baidu_en", "en", "eval")
    zh = items["ch_eval/20032200"]
    assert (zh.attack, zh.language) == ("fs2", "zh")
    assert items["ch_eval/20032201"].attack == "starganv2" and items["ch_dev/20032115"].attack == "tacotron"
    real = items["ch_train/T0055G0034S0223"]
    assert (real.label, real.attack, real.corpus) == (BONAFIDE, "bonafide", "aidatatang")
    src = ItemSource(list(items.values()))
    assert {len(src[i].wave) for i in range(len(src))} == {1600}  # 16 / 22.05 / 24 / 44.1 kHz in


def test_codecfake_mixed_rates_conditions_and_languages(tmp_path):
    root = make_codecfake(tmp_path)
    reader = open_dataset("codecfake", root)
    assert reader.splits() == sorted(["train", "dev", *(f"C{k}" for k in range(1, 8)), "A1"])
    items = {it.utt_id: it for it in reader.items()}
    fake = items["train/F03_SSB00050001"]
    assert (fake.attack, fake.language, fake.corpus, fake.speaker, fake.source_id) == (
        "C3", "zh", "aishell3", "SSB0005", "aishell3/SSB00050001")
    assert items["C7/F07_p228_028"].attack == "C7" and items["C7/F07_p228_028"].language == "en"  # flat C7/ folder
    assert items["C2/p228_028"].label == BONAFIDE and items["C2/p228_028"].attack == "bonafide"
    assert items["A1/alm_0001"].vocoder_category == "alm" and items["A1/alm_0001"].language == "und"
    src = ItemSource([it for it in reader.items() if it.split == "train"])
    rates = {sf.info(str(it.path)).samplerate for it in src.items}
    assert rates == set(NATIVE_RATES)
    assert {len(src[i].wave) for i in range(len(src))} == {1600}  # every native rate read at 16 kHz


def test_built_dataset_reader(tmp_path):
    from tests.benchmark.test_data import write_built_dataset

    root = write_built_dataset(tmp_path / "built", sizes={"train": 4, "validation": 2, "test": 2})
    reader = open_dataset("built", root)
    assert reader.splits() == ["dev", "test", "train"]
    items = reader.items()
    spoof = next(it for it in items if it.label == SPOOF)
    assert "@" in spoof.vocoder and spoof.vocoder_category == "codec" and spoof.path is None
    src = ItemSource(items, condition_by="vocoder")
    assert src[0].wave.dtype == np.float32 and len(src[0].wave) == round(src.durations()[0] * 16000)


def test_missing_root_protocol_and_audio_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: ASVspoof 2019 LA not found .*Fix: get it from https://datashare"):
        open_dataset("asvspoof2019-la", tmp_path / "nowhere")
    base = make_asvspoof2019(tmp_path)
    (base / "LA" / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt").unlink()
    with pytest.raises(DataError, match=r"cm.dev.trl.txt: the dev protocol of ASVspoof 2019 LA not found"):
        open_dataset("asvspoof2019-la", base).items()
    df = make_asvspoof2021_df(tmp_path / "df")
    next((df / "ASVspoof2021_DF_eval_part00" / "ASVspoof2021_DF_eval" / "flac").iterdir()).unlink()
    with pytest.raises(DataError, match=r"trial_metadata.txt: no audio for .*1 of 8 entries missing") as err:
        open_dataset("asvspoof2021-df", df).items()
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="takes no options"):
        open_dataset("in-the-wild", tmp_path, colour="red")
