"""Readers for the public anti-spoofing datasets in the layout their users download.

One file per dataset registers a ``DatasetReader`` in ``DATASETS``.  A reader
only lists files and metadata (never decodes audio); ``ItemSource`` turns a
list of its items into an ``AudioSource`` that decodes and resamples every
file to 16 kHz on read.
"""

from benchmark.data.readers.base import (  # noqa: F401
    BONAFIDE_CONDITION,
    DATASETS,
    DatasetItem,
    DatasetReader,
    ItemSource,
    dataset_help,
    open_dataset,
)

__all__ = ["BONAFIDE_CONDITION", "DATASETS", "DatasetItem", "DatasetReader", "ItemSource", "dataset_help", "open_dataset"]
