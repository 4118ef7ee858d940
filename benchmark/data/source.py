"""What every audio source (built dataset, protocol folder, file list) offers.

Sources return audio at 16 kHz as float32 numpy arrays and labels in the
*dataset* convention (bonafide=0, spoof=1, None = unlabelled).  Conversion
to model targets happens only in ``benchmark.data.labels``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np


class Item(NamedTuple):
    wave: np.ndarray
    label: int | None
    meta: dict[str, Any]


@runtime_checkable
class AudioSource(Protocol):
    sample_rate: int

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Item: ...

    @property
    def labels(self) -> np.ndarray | None:
        """Dataset labels of all items, without decoding audio; None if unlabelled."""

    @property
    def filenames(self) -> list[str]: ...

    def durations(self) -> np.ndarray:
        """Length of each item in seconds (for length bucketing); may be approximate."""


class DataError(ValueError):
    """A one-line, actionable problem with a dataset, protocol or file list."""
