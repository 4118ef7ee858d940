"""In-the-Wild (Müller et al., 2022): real and deepfake recordings of public
figures, published only as a test set.

Layout (``release_in_the_wild.zip``)::

    release_in_the_wild/meta.csv      header ``file,speaker,label``; label ``bona-fide`` or ``spoof``
    release_in_the_wild/<N>.wav       16 kHz
"""

from __future__ import annotations

import csv

from benchmark.data.readers.base import DATASETS, UNKNOWN, BONAFIDE_CONDITION, DatasetItem, DatasetReader, list_files, parse_key, require_audio
from benchmark.data.source import DataError
from codecfake_build.schema import BONAFIDE


@DATASETS.register("in-the-wild")
class InTheWild(DatasetReader):
    title = "In-the-Wild"
    url = "https://deepfake-total.com/in_the_wild"
    layout = "release_in_the_wild/meta.csv and release_in_the_wild/<N>.wav"
    paper = "Müller et al., Does audio deepfake detection generalize? (Interspeech 2022)"
    sample_rates = "16 kHz"

    def __init__(self, root, **options):
        super().__init__(root, **options)
        if not (self.root / "meta.csv").is_file() and (self.root / "release_in_the_wild" / "meta.csv").is_file():
            self.root = self.root / "release_in_the_wild"

    def _read(self) -> list[DatasetItem]:
        meta = self.root / "meta.csv"
        if not meta.is_file():
            raise self.missing(meta, "meta.csv")
        with open(meta, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            wanted = {"file", "speaker", "label"}
            if not reader.fieldnames or not wanted <= set(reader.fieldnames):
                raise DataError(f"{meta}: header must name the columns file,speaker,label (got {reader.fieldnames}). "
                                "Fix: use the official meta.csv")
            rows = [(i, r) for i, r in enumerate(reader, start=2)]
        audio = {p.name: p for p in list_files(self.root, (".wav", ".flac")).values()}
        require_audio(self, meta, (r["file"] for _, r in rows), audio, self.root)
        items = []
        for lineno, row in rows:
            label = parse_key(row["label"], f"{meta}:{lineno}")
            attack = BONAFIDE_CONDITION if label == BONAFIDE else UNKNOWN
            name = row["file"].rsplit(".", 1)[0]
            items.append(DatasetItem(
                utt_id=name, label=label, path=audio[row["file"]], speaker=row["speaker"], source_id=name,
                split="test", attack=attack, vocoder=attack, vocoder_category=attack, language="en",
                corpus="in-the-wild",
            ))
        return items
