"""ASVspoof 2021 deepfake (DF) evaluation set with the full keys and metadata.

Layout: the audio archives (``ASVspoof2021_DF_eval_part0{0..3}.tar.gz`` on
Zenodo) each unpack to ``ASVspoof2021_DF_eval/flac/``; the keys package
(``DF-keys-full.tar.gz`` from asvspoof.org) to ``keys/DF/CM/trial_metadata.txt``.
Both may sit under ``root`` directly or in their archive-named folders::

    [ASVspoof2021_DF_eval_part0N/]ASVspoof2021_DF_eval/flac/DF_E_*.flac
    [DF-keys-full/]keys/DF/CM/trial_metadata.txt

``trial_metadata.txt`` rows (whitespace separated)::

    SPEAKER TRIAL CODEC SOURCE ATTACK KEY TRIM SUBSET VOCODER [TASK TEAM GENDER-PAIR LANG-PAIR]
    LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -

CODEC is the compression condition (nocodec, low_mp3, high_m4a, ...),
SOURCE the corpus the attack came from (asvspoof, vcc2018, vcc2020), SUBSET
the challenge phase (progress, eval, hidden_track) and VOCODER the category:
traditional_vocoder, waveform_concatenation, neural_vocoder_autoregressive,
neural_vocoder_nonautoregressive, unknown (``bonafide`` for bona fide).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.data.readers.base import (
    BONAFIDE_CONDITION,
    DATASETS,
    DatasetItem,
    DatasetReader,
    list_files,
    parse_key,
    read_rows,
    require_audio,
)
from codecfake_build.schema import BONAFIDE
from benchmark.data.source import DataError

VOCODER_CATEGORIES = (
    "traditional_vocoder", "waveform_concatenation", "neural_vocoder_autoregressive",
    "neural_vocoder_nonautoregressive", "unknown",
)
KEYS_RELATIVE = Path("keys") / "DF" / "CM" / "trial_metadata.txt"


@DATASETS.register("asvspoof2021-df")
class ASVspoof2021DF(DatasetReader):
    title = "ASVspoof 2021 DF (eval audio + full keys)"
    url = "https://zenodo.org/records/4835108 (audio) and https://www.asvspoof.org/resources/DF-keys-full.tar.gz (keys)"
    layout = "ASVspoof2021_DF_eval/flac/ (or ASVspoof2021_DF_eval_part0N/ASVspoof2021_DF_eval/flac/) and keys/DF/CM/trial_metadata.txt"
    paper = "Liu et al., ASVspoof 2021: Towards spoofed and deepfake speech detection in the wild (2023)"
    sample_rates = "16 kHz"

    def __init__(self, root, *, keys: str | Path | None = None, **options):
        super().__init__(root, **options)
        self.keys = Path(keys) if keys is not None else self._find_keys()

    def _find_keys(self) -> Path:
        candidates = [self.root / KEYS_RELATIVE, self.root / "DF-keys-full" / KEYS_RELATIVE,
                      self.root / "trial_metadata.txt"]
        return next((c for c in candidates if c.is_file()), candidates[0])

    def audio_folders(self) -> list[Path]:
        folders = [self.root / "ASVspoof2021_DF_eval" / "flac", self.root / "flac"]
        folders += sorted(self.root.glob("ASVspoof2021_DF_eval_part*/ASVspoof2021_DF_eval/flac"))
        return [f for f in folders if f.is_dir()]

    def _read(self) -> list[DatasetItem]:
        if not self.keys.is_file():
            raise self.missing(self.keys, "the keys file (DF-keys-full)")
        folders = self.audio_folders()
        if not folders:
            raise self.missing(self.root / "ASVspoof2021_DF_eval" / "flac", "the eval audio folder")
        audio: dict[str, Path] = {}
        for folder in folders:
            for stem, path in list_files(folder, (".flac",)).items():
                audio.setdefault(stem, path)
        rows = read_rows(self.keys, 9)
        require_audio(self, self.keys, (t[1] for _, t in rows), audio, folders[0])
        items = []
        for lineno, (speaker, trial, codec, source, attack, key, trim, subset, vocoder, *rest) in rows:
            label = parse_key(key, f"{self.keys}:{lineno}")
            if label == BONAFIDE:
                attack = vocoder = BONAFIDE_CONDITION
            elif vocoder not in VOCODER_CATEGORIES:
                raise DataError(
                    f"{self.keys}:{lineno}: unknown vocoder category '{vocoder}' (expected one of "
                    f"{', '.join(VOCODER_CATEGORIES)}). Fix: use the official DF-keys-full trial_metadata.txt"
                )
            items.append(DatasetItem(
                utt_id=trial, label=label, path=audio[trial], speaker=speaker, source_id=trial, split="eval",
                attack=attack, vocoder=attack, vocoder_category=vocoder, compression=codec, language="en",
                corpus=source, extra={"trim": trim, "subset": subset},
            ))
        return items
