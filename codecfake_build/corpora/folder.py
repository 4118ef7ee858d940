"""Any directory tree of audio files (the fallback for corpora without a reader).

Every file whose extension is in ``AUDIO_EXTENSIONS`` (case-insensitive) counts.
speaker = the name of the folder holding the file; language = the ``language``
argument (``--language``; default "und"); source_id = the path relative to the
root with the audio extension removed and ``/`` separators, e.g.
``en/ljspeech/LJ001-0001``.  No transcripts are read.  Symlinked folders are
followed, each real folder once.
"""

from __future__ import annotations

import os
from pathlib import Path

from codecfake_build.corpora.base import AUDIO_EXTENSIONS, CORPORA, Corpus, CorpusError, Utterance


@CORPORA.register("folder")
class Folder(Corpus):
    licence = "unknown (folder corpus: check the licence of your own files)"
    default_language = "und"
    description = "Any folder tree of audio files; speaker = parent folder name."

    def utterances(self) -> list[Utterance]:
        by_id: dict[str, Path] = {}
        # Symlinked folders are followed (corpora are often assembled from links), each real
        # folder once, so a link back up the tree cannot loop.
        seen = {os.path.realpath(self.root)}
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            # Hidden folders (.git, .cache) never hold corpus audio.
            dirnames[:] = [d for d in sorted(dirnames) if not d.startswith(".")]
            for d in list(dirnames):
                real = os.path.realpath(os.path.join(dirpath, d))
                if real in seen:
                    dirnames.remove(d)
                seen.add(real)
            for fn in filenames:
                # "._x.wav" files are macOS resource forks, not audio.
                if fn.startswith("."):
                    continue
                stem, ext = os.path.splitext(fn)
                if ext.lower() not in AUDIO_EXTENSIONS:
                    continue
                path = Path(dirpath) / fn
                sid = path.relative_to(self.root).with_name(stem).as_posix()
                if sid in by_id:
                    raise CorpusError(
                        f"{path}: same source_id '{sid}' as {by_id[sid]} (same name, different extension); "
                        "source_ids must be unique. Fix: remove or rename one of them"
                    )
                by_id[sid] = path
        if not by_id:
            raise CorpusError(
                f"{self.root}: no audio files found; expected a folder tree containing files with "
                f"extensions {', '.join(AUDIO_EXTENSIONS)}"
            )
        return [
            Utterance(
                source_id=sid,
                path=path,
                # Files directly under the root have no parent folder of their own.
                speaker=path.parent.name if path.parent != self.root else self.root.resolve().name,
                language=self.language,
                corpus=self.name,
            )
            for sid, path in sorted(by_id.items())
        ]
