"""VCTK 0.92 (CSTR VCTK Corpus, University of Edinburgh); language always "en".

Layout::

    <root>/wav48_silence_trimmed/<spk>/<spk>_<nnn>_mic1.flac   (and _mic2.flac)
    <root>/txt/<spk>/<spk>_<nnn>.txt

source_id: ``<spk>_<nnn>`` for mic1 (the default, and the microphone most work
uses), ``<spk>_<nnn>_mic2`` for mic2.  The mic2 suffix keeps ids from the two
microphones distinct, so datasets built from each can be merged without
collisions, while mic1 ids stay the plain VCTK utterance ids people cite.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from codecfake_build.corpora.base import CORPORA, Corpus, CorpusError, Utterance

_AUDIO_DIR = "wav48_silence_trimmed"
_TXT_DIR = "txt"
# <spk>_<nnn>_mic<k>.flac; speakers are p225 ... p376 and "s5".
_NAME = re.compile(r"^(?P<utt>(?P<spk>[A-Za-z]+\d+)_\d+)_(?P<mic>mic[12])\.flac$")
_MICS = ("mic1", "mic2")


@CORPORA.register("vctk")
class VCTK(Corpus):
    licence = "CC BY 4.0 (VCTK 0.92, University of Edinburgh CSTR)"
    default_language = "en"
    description = (
        "CSTR VCTK Corpus 0.92: 110 English speakers with various accents, 48 kHz FLAC, "
        "two microphones (mic1 by default)."
    )

    def __init__(self, root: str | Path, language: str | None = None, mic: str = "mic1"):
        # The language is a fact of the corpus.  The builder passes its --language
        # (meant for 'folder' corpora) to every corpus, so honouring it here would
        # mislabel VCTK in a mixed build.
        super().__init__(root, language=None)
        if mic not in _MICS:
            raise CorpusError(f"vctk: unknown mic '{mic}'. Fix: use one of {', '.join(_MICS)}")
        self.mic = mic

    def _expected(self) -> str:
        return (f"expected the VCTK 0.92 layout {self.root}/{_AUDIO_DIR}/<spk>/<spk>_<nnn>_{self.mic}.flac "
                f"with transcripts in {self.root}/{_TXT_DIR}/<spk>/<spk>_<nnn>.txt")

    def utterances(self) -> list[Utterance]:
        audio_dir = self.root / _AUDIO_DIR
        if not audio_dir.is_dir():
            hint = ""
            if (self.root / "wav48").is_dir():
                # The 0.80 release (wav48/*.wav, no mic suffix) is a different layout.
                hint = "; this looks like VCTK 0.80 (wav48/), read it with the 'folder' corpus"
            raise CorpusError(f"{self.root}: no {_AUDIO_DIR}/ folder; {self._expected()}{hint}")

        out: list[Utterance] = []
        for spk_entry in os.scandir(audio_dir):
            # wav48_silence_trimmed/ also holds log.txt; only speaker folders matter.
            if not spk_entry.is_dir():
                continue
            for entry in os.scandir(spk_entry.path):
                m = _NAME.match(entry.name)
                if m is None or m.group("mic") != self.mic or not entry.is_file():
                    continue
                utt = m.group("utt")
                txt = self.root / _TXT_DIR / spk_entry.name / f"{utt}.txt"
                out.append(Utterance(
                    source_id=utt if self.mic == "mic1" else f"{utt}_{self.mic}",
                    path=Path(entry.path),
                    speaker=spk_entry.name,
                    language=self.language,
                    corpus=self.name,
                    # Some speakers (p315) have audio but no transcripts: keep them.
                    text=_read_text(txt),
                ))
        if not out:
            raise CorpusError(f"{audio_dir}: no *_{self.mic}.flac files found; {self._expected()}")
        out.sort(key=lambda u: u.source_id)
        return out


def _read_text(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None
    return text or None
