"""LibriSeVoc (Sun et al., 2023): LibriTTS utterances ("gt") re-synthesised
by six neural vocoders.

Layout (the Google Drive archive; the split lists come from
github:csun22/Synthetic-Voice-Detection-Vocoder-Artifacts)::

    gt/<SPK>_<CHAPTER>_<PARA>_<SENT>.wav
    {diffwave,melgan,parallel_wave_gan,wavegrad,wavenet,wavernn}/<SPK>_<CHAPTER>_<PARA>_<SENT>_gen.wav
    train.txt dev.txt test.txt          one bona-fide file name per line (optional)

Audio is 24 kHz.  When the three lists are present every item takes the
split of its utterance id (split ``""`` for ids in no list); without them all
items have split ``""`` and protocols use a ratio split.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.data.readers.base import BONAFIDE_CONDITION, DATASETS, DatasetItem, DatasetReader, list_files
from benchmark.data.readers.wavefake import utterance_id
from benchmark.data.source import DataError
from codecfake_build.schema import BONAFIDE, SPOOF

VOCODERS = ("diffwave", "melgan", "parallel_wave_gan", "wavegrad", "wavenet", "wavernn")
#: How the LibriSeVoc paper groups its vocoders.
VOCODER_CATEGORY = {
    "wavenet": "autoregressive", "wavernn": "autoregressive", "diffwave": "diffusion", "wavegrad": "diffusion",
    "melgan": "gan", "parallel_wave_gan": "gan",
}
LISTS = {"train": "train.txt", "dev": "dev.txt", "test": "test.txt"}


@DATASETS.register("librisevoc")
class LibriSeVoc(DatasetReader):
    title = "LibriSeVoc"
    url = "https://github.com/csun22/Synthetic-Voice-Detection-Vocoder-Artifacts"
    layout = "gt/*.wav, {diffwave,melgan,parallel_wave_gan,wavegrad,wavenet,wavernn}/*_gen.wav, optional train/dev/test.txt"
    paper = "Sun et al., AI-Synthesized Voice Detection Using Neural Vocoder Artifacts (CVPR Workshops 2023)"
    sample_rates = "24 kHz"

    def __init__(self, root, *, lists: str | Path | None = None, **options):
        super().__init__(root, **options)
        self.lists_dir = Path(lists).expanduser() if lists is not None else self.root

    def official_splits(self) -> dict[str, str]:
        """Utterance id -> official split, from the three list files ({} if they are absent)."""
        present = {s: self.lists_dir / f for s, f in LISTS.items() if (self.lists_dir / f).is_file()}
        if not present:
            return {}
        if len(present) != len(LISTS):
            absent = sorted(set(LISTS) - set(present))
            raise self.missing(self.lists_dir / LISTS[absent[0]], "a split list")
        out: dict[str, str] = {}
        for split, path in present.items():
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                name = line.strip()
                if not name:
                    continue
                uid = utterance_id(Path(name).stem)
                if uid in out and out[uid] != split:
                    raise DataError(f"{path}:{lineno}: '{uid}' is also in the {out[uid]} list. Fix: use the official lists")
                out[uid] = split
        return out

    def _read(self) -> list[DatasetItem]:
        gt = self.root / "gt"
        if not gt.is_dir():
            raise self.missing(gt, "the bona-fide folder gt/")
        splits = self.official_splits()
        items = []
        for folder in ["gt", *VOCODERS]:
            if not (self.root / folder).is_dir():
                raise self.missing(self.root / folder, f"the {folder}/ folder")
            for stem, path in list_files(self.root / folder, (".wav",)).items():
                uid = utterance_id(stem)
                real = folder == "gt"
                condition = BONAFIDE_CONDITION if real else folder
                items.append(DatasetItem(
                    utt_id=f"{folder}/{stem}", label=BONAFIDE if real else SPOOF, path=path, speaker=uid.split("_")[0],
                    source_id=uid, split=splits.get(uid, ""), attack=condition, vocoder=condition,
                    vocoder_category=condition if real else VOCODER_CATEGORY[folder], language="en", corpus="libritts",
                ))
        return items
