"""Plain folders of audio: ASVspoof-style protocol folders and unlabelled file lists."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import soundfile as sf

from benchmark.data.labels import key_to_label
from benchmark.data.source import DataError, Item
from codecfake_build.audio import ALLOW_SILENCE, load_audio
from codecfake_build.schema import STORE_RATE

# flac first: ASVspoof ships flac, and a folder holding both keeps the lossless copy.
AUDIO_EXTENSIONS: tuple[str, ...] = (".flac", ".wav", ".ogg", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64", ".rf64")
# Scoring wants a score for every file, so silence is data here, not an error.


@dataclass(frozen=True)
class ProtocolEntry:
    filename: str
    label: int
    speaker: str
    system: str
    path: Path
    line: int


def _durations(paths: Iterable[Path]) -> np.ndarray:
    out = []
    for p in paths:
        try:
            out.append(sf.info(str(p)).duration)
        except Exception:  # only used to group similar lengths; unreadable files fail later, loudly
            out.append(0.0)
    return np.asarray(out, dtype=np.float64)


class _FileSource:
    sample_rate = STORE_RATE
    _paths: list[Path]
    _names: list[str]
    _durs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._paths)

    @property
    def filenames(self) -> list[str]:
        return list(self._names)

    def durations(self) -> np.ndarray:
        if self._durs is None:
            self._durs = _durations(self._paths)
        return self._durs

    def _load(self, index: int) -> np.ndarray:
        return load_audio(self._paths[index], target_sr=self.sample_rate, check=ALLOW_SILENCE)[0]


class ProtocolFolder(_FileSource):
    """Audio under ``root`` labelled by a protocol file.

    Accepted protocol lines (whitespace separated):

    * ASVspoof 2019: ``SPEAKER FILE - SYSTEM KEY``; also the longer 2021 and
      ASVspoof 5 lines: FILE is column 2, KEY the bonafide/spoof word and
      SYSTEM the column just before it;
    * a keys table ``FILE<TAB>KEY`` with an optional header line
      (e.g. ``filename<TAB>cm-label``).

    FILE (no extension) is looked up as ``root/flac/FILE.flac``, then
    ``root/FILE.<ext>`` for any audio extension; FILE may also carry its extension.
    """

    def __init__(self, root: str | Path, protocol: str | Path):
        self.root = Path(root)
        self.protocol = Path(protocol)
        if not self.protocol.is_file():
            raise DataError(f"{self.protocol}: protocol file not found. Fix: pass the path of the protocol/keys file")
        if not self.root.is_dir():
            raise DataError(f"{self.root}: audio folder not found. Fix: pass the folder that holds the audio (or its flac/ subfolder)")
        rows = parse_protocol(self.protocol)
        index = _AudioIndex(self.root)
        entries, missing = [], []
        for filename, label, speaker, system, line in rows:
            path = index.find(filename)
            if path is None:
                missing.append((filename, line))
            else:
                entries.append(ProtocolEntry(filename, label, speaker, system, path, line))
        if missing:
            name, line = missing[0]
            raise DataError(
                f"{self.protocol}:{line}: no audio for '{name}' (looked for {self.root / 'flac' / name}.flac and "
                f"{self.root / name}.<{'|'.join(e[1:] for e in AUDIO_EXTENSIONS[:4])}|...>); "
                f"{len(missing)} of {len(rows)} entries have no audio. "
                "Fix: pass the folder that contains the audio (or flac/) as root, or drop those lines from the protocol"
            )
        self.entries: list[ProtocolEntry] = entries
        self._paths = [e.path for e in entries]
        self._names = [e.filename for e in entries]
        self._labels = np.asarray([e.label for e in entries], dtype=np.int64)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def meta(self, index: int) -> dict[str, Any]:
        e = self.entries[index]
        return {"filename": e.filename, "speaker": e.speaker, "system": e.system, "path": str(e.path)}

    def __getitem__(self, index: int) -> Item:
        return Item(self._load(index), int(self._labels[index]), self.meta(index))

    def __repr__(self) -> str:
        return f"ProtocolFolder({str(self.root)!r}, {str(self.protocol)!r}, files={len(self)})"


def parse_protocol(path: str | Path) -> list[tuple[str, int, str, str, int]]:
    """(filename, dataset label, speaker, system, line number) per protocol line."""
    path = Path(path)
    rows: list[tuple[str, int, str, str, int]] = []
    seen: dict[str, int] = {}
    first_content = True
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            tokens = line.split("\t") if "\t" in line else line.split()
            tokens = [t.strip() for t in tokens]
            keys = [i for i, t in enumerate(tokens) if key_to_label(t) is not None]
            is_header, first_content = first_content and not keys, False
            if is_header:
                continue
            if len(tokens) < 2 or not keys or (len(tokens) > 2 and keys[-1] < 2):
                raise DataError(
                    f"{path}:{lineno}: cannot parse '{line[:80]}'. Fix: use 'SPEAKER FILE - SYSTEM KEY' or "
                    "'FILE<TAB>KEY' lines with KEY bonafide or spoof"
                )
            k = keys[-1]
            label = key_to_label(tokens[k])
            assert label is not None
            if len(tokens) == 2:
                filename, speaker, system = tokens[0], "-", "-"
            else:
                filename, speaker, system = tokens[1], tokens[0], tokens[k - 1]
            if filename in seen:
                raise DataError(
                    f"{path}:{lineno}: '{filename}' is listed twice (first on line {seen[filename]}). "
                    "Fix: remove the duplicate line, scores are keyed by file name"
                )
            seen[filename] = lineno
            rows.append((filename, label, speaker, system, lineno))
    if not rows:
        raise DataError(f"{path}: no protocol entries. Fix: pass a protocol with 'SPEAKER FILE - SYSTEM KEY' lines")
    return rows


class _AudioIndex:
    """Resolve protocol names to files with two directory listings instead of
    several stat calls per line (protocols have up to ~10^6 lines)."""

    def __init__(self, root: Path):
        self.root = root
        self._flac = self._listing(root / "flac")
        self._top = self._listing(root)

    @staticmethod
    def _listing(folder: Path) -> set[str]:
        try:
            return {e.name for e in os.scandir(folder) if not e.is_dir()}
        except (FileNotFoundError, NotADirectoryError):
            return set()

    def find(self, name: str) -> Path | None:
        if "/" in name or os.sep in name:  # nested names are rare; fall back to stat calls
            candidates = [self.root / "flac" / f"{name}.flac", self.root / name]
            candidates += [self.root / f"{name}{ext}" for ext in AUDIO_EXTENSIONS]
            return next((c for c in candidates if c.is_file()), None)
        if f"{name}.flac" in self._flac:
            return self.root / "flac" / f"{name}.flac"
        if Path(name).suffix.lower() in AUDIO_EXTENSIONS and name in self._top:
            return self.root / name
        for ext in AUDIO_EXTENSIONS:
            if f"{name}{ext}" in self._top:
                return self.root / f"{name}{ext}"
        return None


class FileList(_FileSource):
    """Unlabelled audio for scoring: files and/or folders (searched recursively).

    File names are the path relative to the folder given (or the bare name for
    a file given directly) without the extension, matching protocol naming.
    """

    def __init__(self, paths: str | Path | Iterable[str | Path], *, recursive: bool = True):
        if isinstance(paths, (str, Path)):
            paths = [paths]
        found: list[tuple[str, Path]] = []
        for p in map(Path, paths):
            if p.is_file():
                found.append((p.stem, p))
            elif p.is_dir():
                pattern = "**/*" if recursive else "*"
                files = sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
                if not files:
                    raise DataError(
                        f"{p}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS[:4])}, ...). "
                        "Fix: pass a folder that contains audio files"
                    )
                found += [(f.relative_to(p).with_suffix("").as_posix(), f) for f in files]
            else:
                raise DataError(f"{p}: no such file or folder. Fix: check the path")
        if not found:
            raise DataError("no input files given. Fix: pass at least one audio file or folder")
        first: dict[str, Path] = {}
        for name, f in found:
            if name in first and first[name] != f:
                raise DataError(
                    f"{f}: file name '{name}' is also used by {first[name]}. Fix: score them in separate runs or rename one"
                )
            first.setdefault(name, f)
        self._names = list(first)
        self._paths = list(first.values())

    @property
    def labels(self) -> None:
        return None

    def meta(self, index: int) -> dict[str, Any]:
        return {"filename": self._names[index], "path": str(self._paths[index])}

    def __getitem__(self, index: int) -> Item:
        return Item(self._load(index), None, self.meta(index))

    def __repr__(self) -> str:
        return f"FileList(files={len(self)})"
