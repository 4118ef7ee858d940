"""DECRO, the DEepfake CROss-lingual evaluation dataset (English and Chinese
subsets spoofed with the same algorithms).

Layout (Zenodo record 7603208; protocols also in github:petrichorwq/DECRO-dataset)::

    {en,ch}_{train,dev,eval}.txt      rows ``SPEAKER FILE - SYSTEM KEY`` (FILE without extension)
    {en,ch}_{train,dev,eval}/<FILE>.wav

For bona-fide rows SYSTEM names the source corpus (asv19, aishell3, ...).  The
released protocols spell some systems differently between splits (``fs2`` /
``FastSpeech2``, ``starganv2`` / ``StarGAN``, ``baidu`` / ``baidu_en`` ...);
``attack`` holds one canonical name per algorithm, ``extra['system']`` the
original spelling.  Audio comes at mixed native rates (16-44.1 kHz).
"""

from __future__ import annotations

from benchmark.data.readers.base import (
    BONAFIDE_CONDITION,
    DATASETS,
    UNKNOWN,
    DatasetItem,
    DatasetReader,
    parse_key,
)
from codecfake_build.schema import BONAFIDE

LANGUAGES = {"en": "en", "ch": "zh"}
SPLITS = ("train", "dev", "eval")
#: Spelling in the protocols -> one name per synthesis algorithm.
CANONICAL_ATTACK = {
    "Tacotron": "tacotron", "FastSpeech2": "fs2", "fs2mtts": "fs2", "StarGAN": "starganv2",
    "nvcnet-cn": "nvcnet", "baidu_en": "baidu",
}


@DATASETS.register("decro")
class DECRO(DatasetReader):
    title = "DECRO"
    url = "https://zenodo.org/records/7603208"
    layout = "{en,ch}_{train,dev,eval}.txt and {en,ch}_{train,dev,eval}/<FILE>.wav"
    paper = "Ba et al., Transferring Audio Deepfake Detection Capability across Languages (WWW 2023)"
    sample_rates = "mixed (16, 22.05, 24, 44.1 kHz)"

    def _read(self) -> list[DatasetItem]:
        items = []
        for prefix, language in LANGUAGES.items():
            for split in SPLITS:
                protocol = self.root / f"{prefix}_{split}.txt"
                rows, audio = self.protocol_rows(protocol, self.root / f"{prefix}_{split}", f"{prefix}_{split}",
                                                 extensions=(".wav", ".flac"), min_columns=5, name_column=1)
                for lineno, (speaker, name, _, system, key, *_) in rows:
                    label = parse_key(key, f"{protocol}:{lineno}")
                    if label == BONAFIDE:
                        attack, corpus = BONAFIDE_CONDITION, system
                    else:
                        attack, corpus = CANONICAL_ATTACK.get(system, system), ""
                    items.append(DatasetItem(
                        utt_id=f"{prefix}_{split}/{name}", label=label, path=audio[name], speaker=speaker,
                        source_id=f"{prefix}/{name}", split=split, attack=attack, vocoder=attack,
                        vocoder_category=attack if label == BONAFIDE else UNKNOWN, language=language, corpus=corpus,
                        extra={"system": system, "subset": prefix},
                    ))
        return items
