"""Find and read one released checkpoint file (Wav2CLIP.pt, AudioCLIP-*.pt): the explicit
path, else ``$CODECFAKE_CACHE/<cache_name>/<filename>``, else an atomic download of the
official release into that cache.  Every failure is one line of ``error`` naming the file
and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def find_released_checkpoint(path: str | Path | None, *, owner: str, cache_name: str, filename: str, url: str,
                             error: type[Exception], allow_download: bool = True, timeout: float = 120.0) -> Path:
    from codecfake_build.codecs.weights import download, offline

    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise error(f"{p}: {owner} checkpoint not found. Fix: pass checkpoint=<path to {filename}> "
                        f"(download: {url})")
        return p
    cached = cached_checkpoint(cache_name, filename)
    if cached.is_file():
        return cached
    if not allow_download or offline():
        raise error(f"{cached}: {owner} checkpoint not found (offline). Fix: download {url} "
                    "to that path or pass checkpoint=<path>")
    try:
        return download(url, cached, timeout=timeout)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise error(f"{cached}: {owner} checkpoint could not be downloaded ({first}). Fix: "
                    f"download {url} to that path or pass checkpoint=<path>") from None


def cached_checkpoint(cache_name: str, filename: str) -> Path:
    from codecfake_build.codecs.weights import cache_dir

    return cache_dir(cache_name) / filename


def read_state_dict(file: Path, *, error: type[Exception], fix: str) -> dict[str, Any]:
    """A plain state dict, or the ``state_dict`` of a Lightning checkpoint; ``fix`` ends each error."""
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise error(f"{file}: cannot read ({type(exc).__name__}). Fix: {fix}") from None
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise error(f"{file}: not a state dict. Fix: {fix}")
    return raw
