"""Content-addressed on-disk cache of frozen front-end features.

A frozen SSL front-end maps the same input samples to the same features on
every epoch, for every back-end and every run, so its output is stored once
under a key that names everything it depends on:

    sha256(namespace, model id, weights fingerprint, layer, options, exact input samples)

Nothing else (file names, dataset paths, epoch) enters the key, so a renamed
file or a second experiment on the same audio hits the cache, and a different
crop, layer or checkpoint can never read stale features.

Entries are ``.npy`` files written through ``codecfake_build.atomic`` (temp file
+ fsync + rename), so concurrent writers (DDP ranks, DataLoader workers,
parallel runs) at worst compute the same entry twice and readers never see a
torn file.  The cache object is a path plus a prefix, hence cheap to pickle
into worker processes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from codecfake_build.atomic import atomic_path


def default_cache_dir() -> Path:
    """``$CODECFAKE_CACHE/ssl_features`` (default ``~/.cache/codecfake_bench/ssl_features``)."""
    root = Path(os.environ.get("CODECFAKE_CACHE", Path.home() / ".cache" / "codecfake_bench"))
    return root / "ssl_features"


def fingerprint_state(module: torch.nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of every tensor in a state dict.

    Hashing the loaded tensors (not a file) makes the fingerprint independent of
    where the weights came from (hub cache, local dir, safetensors or .bin)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class FeatureCache:
    """``get``/``put`` features by the exact float32 samples they were computed from."""

    def __init__(self, root: str | Path, prefix: str):
        #: ``prefix`` carries everything but the samples (model, weights, layer, options).
        self.root = Path(root)
        self.prefix = prefix
        self.hits = 0
        self.misses = 0

    def key(self, samples: torch.Tensor | np.ndarray) -> str:
        x = samples.detach().to("cpu") if isinstance(samples, torch.Tensor) else torch.from_numpy(np.asarray(samples))
        x = x.to(torch.float32).contiguous()
        h = hashlib.sha256(self.prefix.encode())
        h.update(f"|{tuple(x.shape)}|".encode())
        h.update(x.numpy().tobytes())
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> torch.Tensor | None:
        path = self.path(key)
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (ValueError, OSError, EOFError):
            # Unreadable entry (disk trouble, foreign file): recompute and overwrite it.
            self.misses += 1
            return None
        self.hits += 1
        return torch.from_numpy(arr)

    def put(self, key: str, features: torch.Tensor) -> None:
        arr = features.detach().to("cpu").contiguous().numpy()
        with atomic_path(self.path(key)) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.npy")) if self.root.is_dir() else 0
