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

Entries are float32 by default.  ``dtype="float16"`` (or the environment
variable ``CODECFAKE_CACHE_DTYPE=float16``) stores half-precision entries: half
the disk (XLS-R's (1024, 201) features: 804 KiB -> 402 KiB per utterance) for a
relative rounding error of at most 2^-11 (~4.9e-4).  A float16 cache keys its
entries apart from a float32 one, so runs of either kind never read the other's
features; an entry whose values overflow float16 is stored in float32.  Reads
always return float32.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from codecfake_build.atomic import atomic_path

#: Storage precisions of cache entries.
DTYPES = ("float32", "float16")
#: Environment variable that picks the storage precision when the code does not.
DTYPE_ENV = "CODECFAKE_CACHE_DTYPE"


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


def storage_dtype(dtype: str | None = None) -> str:
    """``dtype``, else ``$CODECFAKE_CACHE_DTYPE``, else "float32"; anything else is a one-line error."""
    chosen = dtype if dtype is not None else os.environ.get(DTYPE_ENV) or "float32"
    if chosen not in DTYPES:
        where = "dtype" if dtype is not None else f"${DTYPE_ENV}"
        raise ValueError(f"feature cache: {where} '{chosen}' is not a storage precision. "
                         f"Fix: use one of: {', '.join(DTYPES)}")
    return chosen


class FeatureCache:
    """``get``/``put`` features by the exact float32 samples they were computed from."""

    def __init__(self, root: str | Path, prefix: str, dtype: str | None = None):
        #: ``prefix`` carries everything but the samples (model, weights, layer, options).
        self.root = Path(root)
        self.prefix = prefix
        self.dtype = storage_dtype(dtype)
        self.hits = 0
        self.misses = 0

    def key(self, samples: torch.Tensor | np.ndarray) -> str:
        x = samples.detach().to("cpu") if isinstance(samples, torch.Tensor) else torch.from_numpy(np.asarray(samples))
        x = x.to(torch.float32).contiguous()
        # float32 keys stay as they were before float16 existed, so older caches keep hitting.
        prefix = self.prefix if self.dtype == "float32" else f"{self.prefix}|store={self.dtype}"
        h = hashlib.sha256(prefix.encode())
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
        return torch.from_numpy(arr.astype(np.float32, copy=False))

    def put(self, key: str, features: torch.Tensor) -> torch.Tensor:
        """Store ``features``; returns them as a later ``get`` will (float32, rounded through
        float16 in a float16 cache), so a caller can use the same values on every epoch."""
        arr = features.detach().to("cpu").float().contiguous().numpy()
        if self.dtype == "float16":
            with np.errstate(over="ignore"):  # overflow is detected just below
                half = arr.astype(np.float16)
            if np.isfinite(half).all() or not np.isfinite(arr).all():
                arr = half
        with atomic_path(self.path(key)) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        return torch.from_numpy(arr.astype(np.float32))

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.npy")) if self.root.is_dir() else 0
