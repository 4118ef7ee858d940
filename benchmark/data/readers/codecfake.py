"""The official Codecfake release (Xie et al., 2024): VCTK (English) and
AISHELL-3 (Chinese) speech re-synthesised by neural codecs, plus audio from
audio language models (ALMs).

Layout (Zenodo records 13838106 ff., as in github:xieyuankun/Codecfake)::

    label/{train,dev,C1..C7,A1..A3}.txt      rows ``FILE real|fake TYPE`` (FILE with .wav)
    train/*.wav  dev/*.wav
    test/{C1..C7,A1..A3}/*.wav               (test/ may be omitted: C1/ ... directly under the root)

Fakes are named ``F<k>_<original>.wav`` (k = the codec, TYPE 0 = real).
Conditions: C1-C6 are the codecs seen in training, C7 an unseen codec,
A1-A3 ALM outputs.  Files come at the codecs' native rates (16-48 kHz) and
are resampled to 16 kHz on read (as Codecfake issue #10 shows is needed).
Only the splits whose label file is present are read.
"""

from __future__ import annotations

import re

from benchmark.data.readers.base import (
    BONAFIDE_CONDITION,
    DATASETS,
    UNKNOWN,
    DatasetItem,
    DatasetReader,
    parse_key,
)
from codecfake_build.schema import BONAFIDE

TRAIN_SPLITS = ("train", "dev")
CODEC_TESTS = tuple(f"C{i}" for i in range(1, 8))
ALM_TESTS = ("A1", "A2", "A3")
SPLITS = TRAIN_SPLITS + CODEC_TESTS + ALM_TESTS
_FAKE_PREFIX = re.compile(r"^F\d+_")
_VCTK = re.compile(r"^(p\d{3}|s\d)_")
_AISHELL3 = re.compile(r"^(SSB\d{4})\d{4}$")


def origin(stem: str) -> tuple[str, str, str]:
    """(corpus, language, speaker) from an original (bona-fide) file stem."""
    if m := _VCTK.match(stem):
        return "vctk", "en", m[1]
    if m := _AISHELL3.match(stem):
        return "aishell3", "zh", m[1]
    return UNKNOWN, "und", "-"


@DATASETS.register("codecfake")
class Codecfake(DatasetReader):
    title = "Codecfake"
    url = "https://github.com/xieyuankun/Codecfake (Zenodo links for train, dev, C1-C7, A1-A3)"
    layout = "label/<split>.txt, train/, dev/, test/<C1..C7|A1..A3>/"
    paper = "Xie et al., The Codecfake Dataset and Countermeasures for the Universally Detection of Deepfake Audio (2024)"
    sample_rates = "mixed (16, 24, 44.1, 48 kHz)"

    def audio_folder(self, split: str):
        if split in TRAIN_SPLITS:
            return self.root / split
        nested = self.root / "test" / split
        return nested if nested.is_dir() else self.root / split

    def _read(self) -> list[DatasetItem]:
        label_dir = self.root / "label"
        present = [s for s in SPLITS if (label_dir / f"{s}.txt").is_file()]
        if not present:
            raise self.missing(label_dir / "train.txt", "the label files")
        items = []
        for split in present:
            rows, audio = self.protocol_rows(label_dir / f"{split}.txt", self.audio_folder(split), split,
                                             extensions=(".wav", ".flac"), min_columns=2, name_column=0,
                                             by_file_name=True)
            protocol = label_dir / f"{split}.txt"
            for lineno, (name, key, *rest) in rows:
                label = parse_key(key, f"{protocol}:{lineno}")
                kind = rest[0] if rest else ""
                stem = name.rsplit(".", 1)[0]
                original = _FAKE_PREFIX.sub("", stem) if label != BONAFIDE else stem
                corpus, language, speaker = origin(original)
                if label == BONAFIDE:
                    attack = category = BONAFIDE_CONDITION
                elif split in TRAIN_SPLITS:
                    attack, category = (f"C{int(kind)}" if kind.isdigit() and int(kind) > 0 else UNKNOWN), "codec"
                else:
                    attack, category = split, "alm" if split in ALM_TESTS else "codec"
                items.append(DatasetItem(
                    utt_id=f"{split}/{stem}", label=label, path=audio[name], speaker=speaker,
                    source_id=f"{corpus}/{original}", split=split, attack=attack, vocoder=attack,
                    vocoder_category=category, language=language, corpus=corpus, extra={"type": kind},
                ))
        return items
