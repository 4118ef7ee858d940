"""Corpus readers: official layouts rebuilt in miniature, the shared real-speech
tree for `folder`, and the packaged synthetic `embedded` corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import soundfile as sf

from codecfake_build.corpora import CORPORA, CorpusError, open_corpus
from codecfake_build.corpora.aishell3 import parse_content
from codecfake_build.corpora.embedded import DATA_DIR
from codecfake_build.corpora.vctk import VCTK


def touch(path: Path, data: bytes = b"not decoded by readers") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_registry_has_all_readers():
    assert {"vctk", "aishell3", "folder", "embedded"} <= set(CORPORA.names())


# ---------------------------------------------------------------- VCTK 0.92


@pytest.fixture
def vctk_root(tmp_path: Path) -> Path:
    root = tmp_path / "VCTK-Corpus-0.92"
    wav = root / "wav48_silence_trimmed"
    txt = root / "txt"
    for spk, n in (("p225", 2), ("p226", 1)):
        for i in range(1, n + 1):
            touch(wav / spk / f"{spk}_{i:03d}_mic1.flac")
            touch(wav / spk / f"{spk}_{i:03d}_mic2.flac")
            (txt / spk).mkdir(parents=True, exist_ok=True)
            (txt / spk / f"{spk}_{i:03d}.txt").write_text(f"Please call Stella {spk} {i}.\n")
    # p315 ships audio without transcripts.
    touch(wav / "p315" / "p315_001_mic1.flac")
    touch(wav / "log.txt")
    touch(wav / "p225" / "notes.txt")
    touch(root / "speaker-info.txt")
    return root


def test_vctk_mic1(vctk_root: Path):
    utts = open_corpus("vctk", vctk_root).utterances()
    assert [u.source_id for u in utts] == ["p225_001", "p225_002", "p226_001", "p315_001"]
    assert all(u.path.name.endswith("_mic1.flac") for u in utts)
    by_id = {u.source_id: u for u in utts}
    assert by_id["p225_002"].text == "Please call Stella p225 2."
    assert by_id["p225_002"].speaker == "p225"
    assert by_id["p315_001"].text is None
    assert {u.language for u in utts} == {"en"} and {u.corpus for u in utts} == {"vctk"}
    assert VCTK.licence == "CC BY 4.0 (VCTK 0.92, University of Edinburgh CSTR)"
    assert open_corpus("vctk", vctk_root, language="cmn").utterances()[0].language == "en"


def test_vctk_mic2(vctk_root: Path):
    utts = VCTK(vctk_root, mic="mic2").utterances()
    assert [u.source_id for u in utts] == ["p225_001_mic2", "p225_002_mic2", "p226_001_mic2"]
    assert all(u.path.name.endswith("_mic2.flac") for u in utts)
    assert utts[0].text == "Please call Stella p225 1."
    with pytest.raises(CorpusError, match="mic3"):
        VCTK(vctk_root, mic="mic3")


def test_vctk_wrong_root(tmp_path: Path):
    touch(tmp_path / "wav48" / "p225" / "p225_001.wav")
    with pytest.raises(CorpusError, match="wav48_silence_trimmed") as exc:
        open_corpus("vctk", tmp_path).utterances()
    assert str(tmp_path) in str(exc.value) and "\n" not in str(exc.value)
    empty = tmp_path / "empty"
    (empty / "wav48_silence_trimmed" / "p225").mkdir(parents=True)
    with pytest.raises(CorpusError, match="_mic1.flac"):
        open_corpus("vctk", empty).utterances()


# ---------------------------------------------------------------- AISHELL-3

CONTENT_TRAIN = (
    "SSB00050001.wav\t广 guang3 州 zhou1 女 nv3 大 da4 学 xue2 生 sheng1 登 deng1 山 shan1 失 shi1 联 lian2\n"
    "SSB00050002.wav\t尊 zun1 敬 jing4 的 de5 客 ke4 人 ren2\n"
    "SSB00090001.wav\t今 jin1 天 tian1 天 tian1 气 qi4 很 hen3 好 hao3\n"
)
CONTENT_TEST = "SSB00730001.wav\t我 wo3 们 men5 走 zou3 吧 ba5\n"


@pytest.fixture
def aishell3_root(tmp_path: Path) -> Path:
    root = tmp_path / "data_aishell3"
    for utt in ("SSB00050001", "SSB00050002", "SSB00090001", "SSB00090002"):
        touch(root / "train" / "wav" / utt[:7] / f"{utt}.wav")
    touch(root / "test" / "wav" / "SSB0073" / "SSB00730001.wav")
    touch(root / "train" / "wav" / "SSB0005" / "desktop.ini")
    (root / "train" / "content.txt").write_text(CONTENT_TRAIN, encoding="utf-8")
    (root / "test" / "content.txt").write_text(CONTENT_TEST, encoding="utf-8")
    touch(root / "spk-info.txt")
    return root


def test_aishell3_content_parsing(aishell3_root: Path):
    texts = parse_content(aishell3_root / "train" / "content.txt")
    assert texts == {
        "SSB00050001": "广州女大学生登山失联",
        "SSB00050002": "尊敬的客人",
        "SSB00090001": "今天天气很好",
    }


def test_aishell3_utterances(aishell3_root: Path):
    utts = open_corpus("aishell3", aishell3_root).utterances()
    assert [u.source_id for u in utts] == [
        "test/SSB00730001", "train/SSB00050001", "train/SSB00050002", "train/SSB00090001", "train/SSB00090002",
    ]
    by_id = {u.source_id: u for u in utts}
    assert by_id["train/SSB00050001"].speaker == "SSB0005"
    assert by_id["train/SSB00050001"].text == "广州女大学生登山失联"
    assert by_id["test/SSB00730001"].text == "我们走吧"
    assert by_id["test/SSB00730001"].path.parent.name == "SSB0073"
    assert by_id["train/SSB00090002"].text is None  # wav without a content.txt line
    assert {u.language for u in utts} == {"cmn"}
    assert CORPORA.get("aishell3").licence == "Apache-2.0 (AISHELL-3)"
    # --language is meant for folder corpora; it must not relabel a fixed-language corpus.
    assert open_corpus("aishell3", aishell3_root, language="en").utterances()[0].language == "cmn"


def test_aishell3_wrong_root(tmp_path: Path):
    touch(tmp_path / "wav" / "SSB0005" / "SSB00050001.wav")
    with pytest.raises(CorpusError, match=r"train,test\}/wav") as exc:
        open_corpus("aishell3", tmp_path).utterances()
    assert str(tmp_path) in str(exc.value) and "\n" not in str(exc.value)


# ---------------------------------------------------------------- folder


def test_folder_on_shared_speech(shared: Path):
    root = shared / "data" / "speech"
    utts = open_corpus("folder", root, language="mul").utterances()
    ids = [u.source_id for u in utts]
    assert len(utts) == 54  # the .txt transcripts and metadata.csv are ignored
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert ids == [u.source_id for u in open_corpus("folder", root).utterances()]
    per_speaker = Counter(u.speaker for u in utts)
    assert per_speaker["ljspeech"] == 32 and per_speaker["commonvoice"] == 8 and per_speaker["librispeech"] == 5
    by_id = {u.source_id: u for u in utts}
    lj = by_id["en/ljspeech/LJ001-0001"]
    assert lj.path == root / "en" / "ljspeech" / "LJ001-0001.wav"
    assert lj.speaker == "ljspeech" and lj.language == "mul" and lj.text is None
    # Only the final, audio extension is removed.
    assert "en/librispeech/198-209-0000.hq" in by_id
    assert "en/vctk/p240_00000" in by_id and "zh/aishell1/BAC009S0724W0121" in by_id
    for u in utts:
        assert u.path.is_file()
        assert u.source_id == u.path.relative_to(root).with_suffix("").as_posix()


def test_folder_defaults_and_oddities(tmp_path: Path):
    touch(tmp_path / "spk1" / "a.WAV")
    touch(tmp_path / "spk1" / "._a.wav")
    touch(tmp_path / ".cache" / "b.wav")
    touch(tmp_path / "spk1" / "readme.md")
    utts = open_corpus("folder", tmp_path).utterances()
    assert [(u.source_id, u.speaker, u.language) for u in utts] == [("spk1/a", "spk1", "und")]
    touch(tmp_path / "spk1" / "a.flac")
    with pytest.raises(CorpusError, match="spk1/a"):
        open_corpus("folder", tmp_path).utterances()


def test_folder_wrong_root(tmp_path: Path):
    touch(tmp_path / "notes.txt")
    with pytest.raises(CorpusError, match="no audio files") as exc:
        open_corpus("folder", tmp_path).utterances()
    assert str(tmp_path) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(CorpusError, match="not a directory"):
        open_corpus("folder", tmp_path / "missing")


# ---------------------------------------------------------------- embedded


def test_embedded_needs_no_root():
    corpus = open_corpus("embedded", None)
    utts = corpus.utterances()
    assert corpus.root == DATA_DIR
    assert Counter(u.language for u in utts) == {"en": 12, "cmn": 12, "ja": 12}
    assert len(Counter(u.speaker for u in utts)) == 6
    assert all(n == 6 for n in Counter(u.speaker for u in utts).values())
    ids = [u.source_id for u in utts]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert "en/en-us+m3/0001" in ids
    assert all(u.text for u in utts)
    assert "NOT human speech" in corpus.licence and "NOT human speech" in (corpus.__doc__ or "")
    assert "NOT human speech" in corpus.description
    assert "NOT human speech" in (DATA_DIR / "README.md").read_text(encoding="utf-8")


def test_embedded_audio_decodes_at_16k():
    utts = open_corpus("embedded", None).utterances()
    total = 0
    for u in utts:
        x, sr = sf.read(str(u.path), dtype="float32")
        assert sr == 16000 and x.ndim == 1, u.path
        assert 1.5 <= len(x) / sr <= 4.0, u.path
        assert 0.1 < abs(x).max() < 1.0, u.path
        total += u.path.stat().st_size
    assert total < 1.6e6  # the package-data budget


def test_embedded_language_filter():
    utts = open_corpus("embedded", None, language="ja").utterances()
    assert len(utts) == 12 and {u.language for u in utts} == {"ja"}
    with pytest.raises(CorpusError, match="xx"):
        open_corpus("embedded", None, language="xx").utterances()


def test_embedded_wrong_root(tmp_path: Path):
    with pytest.raises(CorpusError, match="metadata.tsv") as exc:
        open_corpus("embedded", tmp_path).utterances()
    assert str(tmp_path) in str(exc.value)
