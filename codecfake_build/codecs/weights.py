"""Where codec weights come from: an explicit ``--weights NAME=PATH``, the
project cache, the Hugging Face cache, or a download from the official source.

Resolution order (first hit wins):
  1. an explicit path (file or directory) given by the user;
  2. ``$CODECFAKE_CACHE/<codec>/`` (default ``~/.cache/codecfake_bench/<codec>/``);
  3. the Hugging Face hub cache (``hf_snapshot``), online only if allowed;
  4. a download from the official URL into (2), written atomically.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from codecfake_build.atomic import FILE_MODE
from codecfake_build.codecs.base import CodecUnavailableError


def cache_root() -> Path:
    return Path(os.environ.get("CODECFAKE_CACHE", Path.home() / ".cache" / "codecfake_bench"))


def cache_dir(codec: str) -> Path:
    return cache_root() / codec


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False") or os.environ.get(
        "CODECFAKE_OFFLINE", "0"
    ) not in ("0", "", "false", "False")


def missing_weights_error(codec: str, what: str, detail: str = "") -> CodecUnavailableError:
    extra = f" ({detail})" if detail else ""
    return CodecUnavailableError(
        f"weights for codec '{codec}' not found: {what}{extra}. Fix: pass --weights {codec}=PATH "
        f"(a directory holding them), put them in {cache_dir(codec)}, or run once online to download them"
    )


def find_files(codec: str, files: list[str], explicit: str | Path | None) -> Path | None:
    """Return a directory holding all ``files`` from the explicit path or the cache, else None.
    An explicit path that lacks a file is an error (the user asked for it)."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if p.is_file() and len(files) == 1 and p.name == Path(files[0]).name:
            return p.parent
        missing = [f for f in files if not (p / f).is_file()]
        if missing:
            raise missing_weights_error(codec, f"{p / missing[0]} does not exist")
        return p
    c = cache_dir(codec)
    if all((c / f).is_file() for f in files):
        return c
    return None


def download(url: str, dest: Path, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download to ``dest`` through a temp file and an atomic rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.fchmod(fd, FILE_MODE)  # a shared weights cache stays readable to the team (mkstemp gives 0600)
    try:
        with os.fdopen(fd, "wb") as fh, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, fh)
        if sha256 is not None:
            got = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
            if got != sha256:
                raise CodecUnavailableError(f"{url}: checksum mismatch (got {got}); retry the download")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def hf_snapshot(codec: str, repo_id: str, explicit: str | Path | None = None,
                revision: str | None = None, allow_patterns: list[str] | None = None) -> Path:
    """Directory of a Hugging Face model: an explicit local dir, else the HF cache,
    else (when online) a download into the HF cache."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_dir():
            raise missing_weights_error(codec, f"{p} is not a directory")
        return p
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=allow_patterns,
                                      local_files_only=True))
    except Exception:
        if offline():
            raise missing_weights_error(codec, f"Hugging Face model {repo_id} is not in the HF cache",
                                        "offline mode") from None
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=allow_patterns))
    except Exception as exc:
        raise missing_weights_error(codec, f"Hugging Face model {repo_id} could not be downloaded",
                                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
