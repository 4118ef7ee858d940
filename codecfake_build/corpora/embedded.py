"""The built-in corpus: SYNTHETIC espeak-ng speech shipped with the package.

It needs no download and no root argument, so the builder runs offline on a
fresh machine.  It is NOT human speech; see embedded_data/README.md.
"""

from __future__ import annotations

import csv
from pathlib import Path

from codecfake_build.corpora.base import CORPORA, Corpus, CorpusError, Utterance

DATA_DIR = Path(__file__).resolve().parent / "embedded_data"
METADATA = "metadata.tsv"


@CORPORA.register("embedded")
class Embedded(Corpus):
    """SYNTHETIC stand-in speech generated with espeak-ng: NOT human speech.

    36 short utterances (English, Mandarin, Japanese; two espeak-ng voices
    each), 16 kHz FLAC, installed as package data.  Use it for smoke tests and
    demos only: results on it say nothing about real bona fide speech.

    ``root`` defaults to the packaged data; ``language`` (e.g. "ja") keeps only
    that language, since the corpus is multilingual and each utterance carries
    its own language tag.
    """

    licence = ("CC0-1.0 (SYNTHETIC espeak-ng speech, NOT human speech; "
               "sentences written for codecfake-bench)")
    default_language = "mul"
    description = (
        "Built-in SYNTHETIC stand-in corpus generated with espeak-ng (NOT human speech): "
        "en, cmn and ja sentences, two voices each, 16 kHz. For offline smoke tests only."
    )

    def __init__(self, root: str | Path | None = None, language: str | None = None):
        super().__init__(DATA_DIR if root is None else root, language=None)
        self.language_filter = language

    def utterances(self) -> list[Utterance]:
        meta = self.root / METADATA
        if not meta.is_file():
            raise CorpusError(
                f"{self.root}: no {METADATA}; expected the embedded layout <root>/{METADATA} "
                "plus <root>/<lang>/<voice>/<nnnn>.flac (regenerate with scripts/make_embedded_corpus.py)"
            )
        out: list[Utterance] = []
        with open(meta, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\"):
                if self.language_filter and row["language"] != self.language_filter:
                    continue
                path = self.root / f"{row['id']}.flac"
                if not path.is_file():
                    raise CorpusError(f"{path}: listed in {meta} but missing. Fix: reinstall the package "
                                      "or rerun scripts/make_embedded_corpus.py")
                out.append(Utterance(
                    source_id=row["id"],
                    path=path,
                    speaker=row["speaker"],
                    language=row["language"],
                    corpus=self.name,
                    text=row["text"] or None,
                ))
        if not out:
            wanted = f" with language '{self.language_filter}'" if self.language_filter else ""
            raise CorpusError(f"{meta}: no utterances{wanted}; expected rows id/speaker/language/text "
                              "for <root>/<lang>/<voice>/<nnnn>.flac")
        out.sort(key=lambda u: u.source_id)
        return out
