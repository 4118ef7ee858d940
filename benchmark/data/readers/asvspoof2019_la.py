"""ASVspoof 2019 logical access (LA), as downloaded from Edinburgh DataShare.

Layout (``LA.zip``)::

    LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
    LA/ASVspoof2019_LA_{train,dev,eval}/flac/<FILE>.flac

Protocol rows: ``SPEAKER FILE - SYSTEM KEY`` (SYSTEM is ``-`` for bona fide,
A01-A06 in train/dev, A07-A19 in eval).  Audio is 16 kHz FLAC.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.data.readers.base import (
    BONAFIDE_CONDITION,
    DATASETS,
    DatasetItem,
    DatasetReader,
    parse_key,
)
from codecfake_build.schema import BONAFIDE

PROTOCOL_DIR = "ASVspoof2019_LA_cm_protocols"
SPLIT_FILES = {"train": "train.trn", "dev": "dev.trl", "eval": "eval.trl"}


@DATASETS.register("asvspoof2019-la")
class ASVspoof2019LA(DatasetReader):
    title = "ASVspoof 2019 LA"
    url = "https://datashare.ed.ac.uk/handle/10283/3336"
    layout = f"LA/{PROTOCOL_DIR}/ASVspoof2019.LA.cm.<split>.txt and LA/ASVspoof2019_LA_<split>/flac/"
    paper = "Wang et al., ASVspoof 2019: a large-scale public database of synthesized, converted and replayed speech (2020)"
    sample_rates = "16 kHz"

    def __init__(self, root, **options):
        super().__init__(root, **options)
        # Accept the folder that holds LA/ as well as LA/ itself.
        if not (self.root / PROTOCOL_DIR).is_dir() and (self.root / "LA" / PROTOCOL_DIR).is_dir():
            self.root = self.root / "LA"

    def protocol_path(self, split: str) -> Path:
        return self.root / PROTOCOL_DIR / f"ASVspoof2019.LA.cm.{SPLIT_FILES[split]}.txt"

    def _read(self) -> list[DatasetItem]:
        items = []
        for split in SPLIT_FILES:
            protocol = self.protocol_path(split)
            rows, audio = self.protocol_rows(protocol, self.root / f"ASVspoof2019_LA_{split}" / "flac", split,
                                             extensions=(".flac",), min_columns=5, name_column=1)
            for lineno, (speaker, name, _, system, key, *_) in rows:
                label = parse_key(key, f"{protocol}:{lineno}")
                attack = BONAFIDE_CONDITION if label == BONAFIDE else system
                items.append(DatasetItem(
                    utt_id=name, label=label, path=audio[name], speaker=speaker, source_id=name, split=split,
                    attack=attack, vocoder=attack, vocoder_category=attack, language="en", corpus="vctk",
                ))
        return items
