"""AISHELL-3 (multi-speaker Mandarin, 218 speakers, 44.1 kHz); language always "cmn".

Layout::

    <root>/{train,test}/wav/<SSBxxxx>/<SSBxxxxnnnn>.wav
    <root>/{train,test}/content.txt

``content.txt`` lines are ``SSB00050001.wav<TAB>广 guang3 州 zhou1 ...``: each
hanzi followed by its tone-numbered pinyin.  The text kept is the hanzi only.

source_id: ``<subset>/<utt>``, e.g. ``train/SSB00050001``.  Utterance ids are
already unique across the official subsets; the prefix records which subset an
utterance came from (Utterance has no other field for it), so anyone splitting a
built dataset can follow the official train/test split.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from codecfake_build.corpora.base import CORPORA, Corpus, CorpusError, Utterance

SUBSETS = ("train", "test")
_PINYIN = re.compile(r"^[a-zü]+[1-5]$", re.IGNORECASE)


@CORPORA.register("aishell3")
class AISHELL3(Corpus):
    licence = "Apache-2.0 (AISHELL-3)"
    default_language = "cmn"
    description = "AISHELL-3: 218 Mandarin speakers, ~85 h, 44.1 kHz WAV, official train/test subsets."

    def __init__(self, root: str | Path, language: str | None = None):
        # Fixed language: the builder's --language is meant for 'folder' corpora
        # and would otherwise mislabel AISHELL-3 in a mixed build.
        super().__init__(root, language=None)

    def _expected(self) -> str:
        return (f"expected the AISHELL-3 layout {self.root}/{{train,test}}/wav/<SSBxxxx>/<utt>.wav "
                f"with {self.root}/{{train,test}}/content.txt")

    def utterances(self) -> list[Utterance]:
        out: list[Utterance] = []
        for subset in SUBSETS:
            wav_dir = self.root / subset / "wav"
            if not wav_dir.is_dir():
                # Partial downloads (only train, or only test) are common and fine.
                continue
            texts = parse_content(self.root / subset / "content.txt")
            for spk_entry in os.scandir(wav_dir):
                if not spk_entry.is_dir():
                    continue
                for entry in os.scandir(spk_entry.path):
                    if not entry.name.lower().endswith(".wav") or not entry.is_file():
                        continue
                    utt = entry.name[: -len(".wav")]
                    out.append(Utterance(
                        source_id=f"{subset}/{utt}",
                        path=Path(entry.path),
                        speaker=spk_entry.name,
                        language=self.language,
                        corpus=self.name,
                        text=texts.get(utt),
                    ))
        if not out:
            raise CorpusError(f"{self.root}: no AISHELL-3 wav files found; {self._expected()}")
        out.sort(key=lambda u: u.source_id)
        return out


def parse_content(path: Path) -> dict[str, str]:
    """Map utterance id -> hanzi text from an AISHELL-3 content.txt (missing file: empty)."""
    if not path.is_file():
        return {}
    texts: dict[str, str] = {}
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            name, sep, labels = line.strip().partition("\t")
            if not sep:
                # Tolerate a space instead of the tab (hand-edited or re-saved copies).
                name, _, labels = line.strip().partition(" ")
            if not name:
                continue
            # Filtering out pinyin rather than taking every other token survives
            # the rare line where a character lacks its pinyin.
            chars = [tok for tok in labels.split() if not _PINYIN.match(tok)]
            utt = name[: -len(".wav")] if name.lower().endswith(".wav") else name
            if chars:
                texts[utt] = "".join(chars)
    return texts
