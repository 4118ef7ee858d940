"""WaveFake (Frank & Schönherr, 2021): LJSpeech (English) and JSUT (Japanese)
utterances re-synthesised by several vocoders, plus a TTS folder.

Layout: the Zenodo archive unpacks to ``generated_audio/`` with one folder per
corpus and vocoder; the bona-fide corpora are separate downloads that go next
to it (or are passed as ``ljspeech_root`` / ``jsut_root``)::

    generated_audio/ljspeech_{melgan,melgan_large,multi_band_melgan,full_band_melgan,
                              parallel_wavegan,hifiGAN,waveglow}/LJ001-0001_gen.wav
    generated_audio/jsut_{multi_band_melgan,parallel_wavegan}/BASIC5000_0001_gen.wav
    generated_audio/common_voices_prompts_from_conformer_fastspeech2_pwg_ljspeech/*.wav
    LJSpeech-1.1/wavs/LJ001-0001.wav          (22.05 kHz)
    jsut_ver1.1/basic5000/wav/BASIC5000_0001.wav (48 kHz; generated JSUT is 24 kHz)

File names differ by vocoder (``_gen``, ``_generated`` or no suffix); the
utterance id (``source_id``) is the name without that suffix, so every
vocoder version of an utterance shares the real file's id.

The FD-ADD authors' layout is read too (RedamancyAY/Robust-AI-Synthesized-
Speech-Detection a0bf83c, data/datasets/wavefake.py): everything in one
``WaveFake/`` folder, the real corpora renamed ``ljspeech_real/`` (holding
``wavs/``) and ``jsut_real/`` (their table counts 5,000 files: basic5000),
the TTS folder renamed ``ljspeech_tts/``.  A ``<corpus>_real`` folder is
bona fide, never a vocoder called "real".
"""

from __future__ import annotations

import re
from pathlib import Path

from benchmark.data.readers.base import (
    BONAFIDE_CONDITION,
    DATASETS,
    DatasetItem,
    DatasetReader,
    list_files,
)
from benchmark.data.source import DataError
from codecfake_build.schema import BONAFIDE, SPOOF

TTS_FOLDER = "common_voices_prompts_from_conformer_fastspeech2_pwg_ljspeech"
#: The FD-ADD authors' name for the TTS folder.
TTS_FOLDER_RENAMED = "ljspeech_tts"
#: Corpus prefix of a generated folder -> (language, where its bona-fide audio lives under the root).
CORPORA = {
    "ljspeech": ("en", Path("LJSpeech-1.1") / "wavs", "https://keithito.com/LJ-Speech-Dataset/"),
    "jsut": ("ja", Path("jsut_ver1.1") / "basic5000" / "wav", "https://sites.google.com/site/shinnosuketakamichi/publication/jsut"),
}
_SUFFIX = re.compile(r"(_gen|_generated)$")


def utterance_id(stem: str) -> str:
    return _SUFFIX.sub("", stem)


@DATASETS.register("wavefake")
class WaveFake(DatasetReader):
    title = "WaveFake"
    url = "https://zenodo.org/records/5642694"
    layout = ("generated_audio/<corpus>_<vocoder>/*.wav plus LJSpeech-1.1/wavs and jsut_ver1.1/basic5000/wav "
              "(or FD-ADD's: <corpus>_<vocoder>/, ljspeech_real/wavs, jsut_real, ljspeech_tts in one folder)")
    paper = "Frank & Schönherr, WaveFake: A Data Set to Facilitate Audio Deepfake Detection (NeurIPS D&B 2021)"
    sample_rates = "22.05 kHz (LJSpeech), 24 kHz (generated JSUT), 48 kHz (real JSUT)"

    def __init__(self, root, *, ljspeech_root: str | Path | None = None, jsut_root: str | Path | None = None,
                 real: bool = True, **options):
        super().__init__(root, **options)
        generated = self.root / "generated_audio"
        self.generated = generated if generated.is_dir() else self.root
        self.real_roots = {"ljspeech": ljspeech_root, "jsut": jsut_root}
        self.real = real

    def _real_folder(self, corpus: str) -> Path:
        relative = CORPORA[corpus][1]
        given = self.real_roots[corpus]
        if given is not None:
            given = Path(given).expanduser()
            # Accept the corpus root (LJSpeech-1.1) as well as its wav folder.
            inner = given.joinpath(*relative.parts[1:])
            return inner if inner.is_dir() else given
        for base in (self.root, self.generated.parent):
            if (base / relative).is_dir():
                return base / relative
        renamed = self.generated / f"{corpus}_real"  # the FD-ADD authors' layout
        for inner in (Path(*relative.parts[1:]), Path("wavs"), Path()):
            if list_files(renamed / inner, (".wav",)):
                return renamed / inner
        return self.root / relative

    def _read(self) -> list[DatasetItem]:
        items: list[DatasetItem] = []
        seen_corpora = set()
        folders = sorted(p for p in self.generated.iterdir() if p.is_dir()) if self.generated.is_dir() else []
        for folder in folders:
            if folder.name in (TTS_FOLDER, TTS_FOLDER_RENAMED):
                corpus, vocoder, language = "commonvoice-prompts", "conformer_fastspeech2_pwg", "en"
            else:
                prefix, _, vocoder = folder.name.partition("_")
                if prefix not in CORPORA or not vocoder or vocoder == "real":
                    continue  # not a vocoder folder (e.g. the real corpora placed here)
                corpus, language = prefix, CORPORA[prefix][0]
                seen_corpora.add(corpus)
            for stem, path in list_files(folder, (".wav",)).items():
                uid = utterance_id(stem)
                items.append(DatasetItem(
                    utt_id=f"{folder.name}/{stem}", label=SPOOF, path=path, speaker=corpus,
                    source_id=f"{corpus}/{uid}", attack=vocoder, vocoder=vocoder,
                    vocoder_category="tts" if corpus == "commonvoice-prompts" else "vocoder",
                    language=language, corpus=corpus,
                ))
        if not items:
            raise self.missing(self.generated, "the generated_audio/<corpus>_<vocoder>/ folders")
        if self.real:
            for corpus in sorted(seen_corpora):
                folder = self._real_folder(corpus)
                files = list_files(folder, (".wav",))
                if not files:
                    raise DataError(
                        f"{folder}: bona-fide {corpus} audio not found (WaveFake ships only the fakes). "
                        f"Fix: download it from {CORPORA[corpus][2]} and extract it next to generated_audio/ "
                        f"(or pass {corpus}_root=PATH, or real=false to read the fakes only)"
                    )
                for stem, path in files.items():
                    items.append(DatasetItem(
                        utt_id=f"{corpus}_real/{stem}", label=BONAFIDE, path=path, speaker=corpus,
                        source_id=f"{corpus}/{stem}", attack=BONAFIDE_CONDITION, vocoder=BONAFIDE_CONDITION,
                        vocoder_category=BONAFIDE_CONDITION, language=CORPORA[corpus][0], corpus=corpus,
                    ))
        return items
