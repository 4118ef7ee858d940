"""A corpus reader turns a directory in an official layout into Utterances.

Readers only list files and metadata; they never decode audio (the builder
does that, so that one unreadable file is skipped and reported, not fatal).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from codecfake_build.registry import Registry

CORPORA: Registry[type["Corpus"]] = Registry("corpus", "codecfake_build.corpora")

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".sph")


class CorpusError(ValueError):
    """The corpus root is missing or not in the expected layout; the message says what was expected."""


@dataclass(frozen=True)
class Utterance:
    source_id: str  # unique within the corpus; stable across machines
    path: Path
    speaker: str
    language: str  # ISO 639-3-ish tag, e.g. "en", "cmn", "ja"
    corpus: str
    text: str | None = None


class Corpus(ABC):
    #: Licence of the source audio, copied into the dataset card.
    licence: ClassVar[str] = "unknown"
    default_language: ClassVar[str] = "und"
    description: ClassVar[str] = ""
    registry_name: ClassVar[str]

    def __init__(self, root: str | Path, language: str | None = None):
        self.root = Path(root).expanduser()
        self.language = language or self.default_language
        if not self.root.is_dir():
            raise CorpusError(
                f"{self.root}: corpus root for '{self.registry_name}' is not a directory. "
                f"Fix: pass --corpus {self.registry_name}=/path/to/the/corpus"
            )

    @property
    def name(self) -> str:
        return self.registry_name

    @abstractmethod
    def utterances(self) -> list[Utterance]:
        """All utterances, sorted by source_id (deterministic across machines)."""


def open_corpus(kind: str, root: str | Path | None, language: str | None = None) -> Corpus:
    cls = CORPORA.get(kind)
    if root is not None:
        return cls(root, language=language)
    if inspect.signature(cls.__init__).parameters["root"].default is inspect.Parameter.empty:
        raise CorpusError(f"--corpus {kind}: this corpus needs its folder. Fix: pass --corpus {kind}=PATH")
    return cls(language=language)
