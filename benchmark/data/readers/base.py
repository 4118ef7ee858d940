"""The reader interface, the item record every reader yields, and the audio
source that decodes items at 16 kHz.

Labels are dataset labels (bonafide=0, spoof=1, from ``benchmark.data.labels``);
bona-fide items carry ``BONAFIDE_CONDITION`` in their attack/vocoder fields so
that a per-condition breakdown never mistakes them for an attack.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import numpy as np
import soundfile as sf

from benchmark.data.labels import key_to_label
from benchmark.data.source import DataError, Item
from codecfake_build.audio import ALLOW_SILENCE, load_audio, resample
from codecfake_build.registry import Registry
from codecfake_build.schema import BONAFIDE, LABELS, STORE_RATE

DATASETS: Registry[type["DatasetReader"]] = Registry("dataset", "benchmark.data.readers")

#: Attack / vocoder / category value of every bona-fide item.
BONAFIDE_CONDITION = "bonafide"
#: Attack value of a spoofed item whose generator the dataset does not name.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class DatasetItem:
    """One labelled utterance of a public dataset.

    ``utt_id`` is unique within the dataset and names the trial in score
    files; ``source_id`` names the underlying recording, shared by every
    vocoder/codec version of it, so splits can keep those versions together.
    """

    utt_id: str
    label: int  # dataset label: bonafide=0, spoof=1
    path: Path | None
    speaker: str = "-"
    source_id: str = ""
    split: str = ""  # the dataset's own split name ("train", "eval", "C3", ...), "" if it has none
    attack: str = BONAFIDE_CONDITION  # system id as the dataset writes it (A07, hifigan, C3 ...)
    vocoder: str = BONAFIDE_CONDITION  # vocoder or neural codec name where the dataset says it
    vocoder_category: str = BONAFIDE_CONDITION
    compression: str = "none"  # transmission/compression condition (ASVspoof 2021 DF: low_mp3, ...)
    language: str = "und"
    corpus: str = ""  # where the bona-fide speech comes from (ljspeech, vctk, aishell3, ...)
    duration: float | None = None  # seconds, when the dataset records it (saves a header read)
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    #: Decodes audio that has no file of its own (rows of a built dataset); returns (wave, sample rate).
    audio: Callable[[], tuple[np.ndarray, int]] | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def label_name(self) -> str:
        return LABELS[self.label]

    def get(self, name: str) -> str:
        """A metadata field by name: a dataclass field, ``label`` as its name, or an ``extra`` key."""
        if name == "label":
            return self.label_name
        if name in _FIELD_NAMES:
            return str(getattr(self, name))
        if name in self.extra:
            return str(self.extra[name])
        raise KeyError(name)


_FIELD_NAMES = {f.name for f in fields(DatasetItem)} - {"extra", "audio", "path", "duration"}
#: Fields a protocol may filter on or name per-condition results by (plus any reader ``extra`` key).
ITEM_FIELDS = tuple(sorted(_FIELD_NAMES | {"label"}))


class DatasetReader(ABC):
    """A dataset in its official download layout.

    Subclasses set the class attributes (used in error messages and
    ``dataset_help``) and implement ``_read``.  ``items()`` is sorted by
    ``utt_id`` so that everything built on it is deterministic.
    """

    registry_name: ClassVar[str]
    title: ClassVar[str] = ""
    #: Where users get the data (official download page).
    url: ClassVar[str] = ""
    #: The layout the reader expects under its root, for error messages.
    layout: ClassVar[str] = ""
    #: The paper that introduced the dataset.
    paper: ClassVar[str] = ""
    sample_rates: ClassVar[str] = ""

    def __init__(self, root: str | Path, **options: Any):
        if options:
            raise DataError(
                f"dataset '{self.registry_name}' takes no options {sorted(options)}. Fix: remove them"
            )
        self.root = self._check_root(root)
        self._items: list[DatasetItem] | None = None

    def _check_root(self, root: str | Path | None) -> Path:
        if root is None or not Path(root).expanduser().is_dir():
            raise DataError(
                f"{root}: {self.title} not found (expected {self.layout}). "
                f"Fix: get it from {self.url} and pass its folder"
            )
        return Path(root).expanduser()

    def missing(self, path: Path, what: str) -> DataError:
        """The one-line error for a missing protocol/label file or audio folder."""
        return DataError(
            f"{path}: {what} of {self.title} not found (expected {self.layout} under {self.root}). "
            f"Fix: get the full dataset from {self.url}"
        )

    def protocol_rows(self, protocol: Path, folder: Path, what: str, *, extensions: Sequence[str],
                      min_columns: int, name_column: int, by_file_name: bool = False,
                      ) -> tuple[list[tuple[int, list[str]]], dict[str, Path]]:
        """The rows of one protocol file and its audio folder's files (stem, or file name with
        ``by_file_name``, -> path), after the one-line checks every such reader needs: the protocol and
        the folder exist and every row's file (column ``name_column``) is there."""
        if not protocol.is_file():
            raise self.missing(protocol, f"the {what} protocol")
        if not folder.is_dir():
            raise self.missing(folder, f"the {what} audio folder")
        audio = list_files(folder, extensions)
        if by_file_name:
            audio = {p.name: p for p in audio.values()}
        rows = read_rows(protocol, min_columns)
        require_audio(self, protocol, (t[name_column] for _, t in rows), audio, folder)
        return rows, audio

    @abstractmethod
    def _read(self) -> list[DatasetItem]:
        """All items of the dataset (any order)."""

    def items(self) -> list[DatasetItem]:
        if self._items is None:
            items = sorted(self._read(), key=lambda it: it.utt_id)
            dupes = [a.utt_id for a, b in zip(items, items[1:]) if a.utt_id == b.utt_id]
            if dupes:
                raise DataError(
                    f"{self.root}: {self.title} lists '{dupes[0]}' twice ({len(dupes)} duplicates). "
                    "Fix: remove the duplicate protocol lines or files"
                )
            self._items = items
        return self._items

    def splits(self) -> list[str]:
        return sorted({it.split for it in self.items()})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"


def open_dataset(name: str, root: str | Path | None, **options: Any) -> DatasetReader:
    return DATASETS.get(name)(root, **options)


def dataset_help(name: str) -> str:
    """One line: what the dataset is and where to download it."""
    cls = DATASETS.get(name)
    return f"{name}: {cls.title}; get it from {cls.url}; expected layout {cls.layout}"


# ---- helpers shared by readers -------------------------------------------------------------------------------


def list_files(folder: Path, extensions: Sequence[str]) -> dict[str, Path]:
    """File stem -> path for files in ``folder`` with one of the extensions (one directory listing:
    protocols have up to ~10^6 lines, so no stat call per line)."""
    out: dict[str, Path] = {}
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return out
    for entry in entries:
        stem, ext = os.path.splitext(entry.name)
        if ext.lower() in extensions and not entry.name.startswith(".") and stem not in out:
            out[stem] = Path(entry.path)
    return out


def require_audio(reader: DatasetReader, protocol: Path, names: Iterable[str], found: Mapping[str, Path],
                  folder: Path) -> None:
    """Fail with one line if protocol entries have no audio file."""
    names = list(names)
    missing = [n for n in names if n not in found]
    if missing:
        raise DataError(
            f"{protocol}: no audio for '{missing[0]}' in {folder} ({len(missing)} of {len(names)} entries missing). "
            f"Fix: extract the complete audio archive of {reader.title} (from {reader.url}) there"
        )


def parse_key(word: str, where: str) -> int:
    label = key_to_label(word)
    if label is None:
        raise DataError(f"{where}: '{word}' is not a bonafide/spoof key. Fix: check that this is the official file")
    return label


def read_rows(path: Path, min_columns: int) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-split tokens) of the non-empty lines of a protocol file."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            tokens = raw.split()
            if not tokens:
                continue
            if len(tokens) < min_columns:
                raise DataError(
                    f"{path}:{lineno}: expected at least {min_columns} columns, got {len(tokens)} "
                    f"('{raw.strip()[:80]}'). Fix: use the official, unmodified protocol file"
                )
            rows.append((lineno, tokens))
    return rows


# ---- the AudioSource view ----------------------------------------------------------------------------------------


class ItemSource:
    """An ``AudioSource`` over dataset items: every file is decoded to mono
    float32 and resampled to 16 kHz on read (datasets mix native rates).

    ``meta()['system']`` is the item's value of ``condition_by``, which is what
    ``benchmark.runs.conditions_of`` breaks results down by.
    """

    sample_rate = STORE_RATE

    def __init__(self, items: Sequence[DatasetItem], *, name: str = "", condition_by: str = "attack"):
        if not items:
            raise DataError(f"{name or 'dataset selection'}: no items. Fix: check the protocol's filters and dataset roots")
        names = [it.utt_id for it in items]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise DataError(f"{name}: trial '{dup}' is selected twice. Fix: make the protocol's sets disjoint")
        self.items = list(items)
        self.name = name
        self.condition_by = condition_by
        self._labels = np.asarray([it.label for it in self.items], dtype=np.int64)
        self._durs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def filenames(self) -> list[str]:
        return [it.utt_id for it in self.items]

    def conditions(self) -> list[str]:
        return [it.get(self.condition_by) for it in self.items]

    def durations(self) -> np.ndarray:
        if self._durs is None:
            out = []
            for it in self.items:
                if it.duration is not None:
                    out.append(it.duration)
                    continue
                try:
                    out.append(sf.info(str(it.path)).duration)
                except Exception:  # only used to group similar lengths; unreadable files fail later, loudly
                    out.append(0.0)
            self._durs = np.asarray(out, dtype=np.float64)
        return self._durs

    def meta(self, index: int) -> dict[str, Any]:
        it = self.items[index]
        meta = {name: getattr(it, name) for name in sorted(_FIELD_NAMES)}
        meta.update({f"extra_{k}": v for k, v in it.extra.items()})
        meta.update(filename=it.utt_id, label=it.label_name, path=str(it.path) if it.path else None,
                    system=it.get(self.condition_by))
        return meta

    def load(self, index: int) -> np.ndarray:
        it = self.items[index]
        if it.audio is not None:
            wave, sr = it.audio()
            if sr != self.sample_rate:
                wave = resample(wave, sr, self.sample_rate)
            return wave
        return load_audio(it.path, target_sr=self.sample_rate, check=ALLOW_SILENCE)[0]

    def __getitem__(self, index: int) -> Item:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return Item(self.load(index), int(self._labels[index]), self.meta(index))

    def class_counts(self) -> dict[str, int]:
        return {LABELS[BONAFIDE]: int(np.sum(self._labels == BONAFIDE)), LABELS[1 - BONAFIDE]: int(np.sum(self._labels != BONAFIDE))}

    def __repr__(self) -> str:
        return f"ItemSource({self.name!r}, items={len(self)}, condition_by={self.condition_by!r})"
