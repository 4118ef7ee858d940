"""Crash-safe file writes: write a temp file beside the target, fsync, rename.

A reader (or a resumed job after ``kill -9``) sees either the old file or the
complete new one, never a torn write.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Read once at import, in the main thread (os.umask can only be read by setting it, which is
#: not thread-safe later, when prefetch and pool threads run).
_UMASK = _read_umask()
#: The mode ``open()`` would give a new file.  mkstemp makes 0600 files, which would leave
#: datasets, checkpoints and results unreadable to the rest of a team on a shared server.
FILE_MODE = 0o666 & ~_UMASK
#: ``atomic_path``'s temp names: ".<target>.<mkstemp's 8 random characters>.tmp".
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path in the target's directory; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_killed_writes(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """Delete the temp files of ``atomic_path`` writes that a ``kill -9`` interrupted in ``folder``
    (and its sub-folders with ``recursive``): never renamed, nothing reads them, but each crash
    would leave one more (and a dataset folder's would be globbed as data).  Returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    stale = sorted(p for p in candidates if p.is_file() and _TEMP_NAME.match(p.name))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
