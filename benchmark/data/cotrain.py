"""Co-training batches with fixed domain proportions (Codecfake's CSAM sampler).

Every batch holds each domain (e.g. Codecfake codec data and ASVspoof 2019 LA
vocoder data) in a fixed number of slots, proportional to the domain's share of
the concatenated training set: 128 slots over ~96% codec / ~4% vocoder items give
123 + 5.  The slots are apportioned by largest remainder, with at least one slot
per domain, so a batch is always full.  (Codecfake's ``CSAMSampler`` floors
both shares, 123 + 4 = 127, and then lets the DataLoader re-cut its flat list
into batches of 128, so its batches drift off the intended proportions.)

Each domain walks its own shuffled order and reshuffles on its own when
exhausted.  An epoch is ``len(domains) // batch_size`` batches.  All
randomness comes from the loader's ``torch.Generator``, drawn afresh at every
epoch, so saving the generator's state at an epoch boundary resumes the exact
batch sequence (as ``TrainBatchSampler``).  Under DDP every rank draws the same
global list and keeps batches ``rank, rank + world_size, ...``.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


def domain_slots(sizes: Sequence[int], batch_size: int) -> list[int]:
    """Slots per domain in a batch: proportional to ``sizes``, largest remainder, >= 1 each."""
    sizes = [int(s) for s in sizes]
    if any(s < 1 for s in sizes):
        raise ValueError(f"every co-training domain needs items, got sizes {sizes}")
    if batch_size < len(sizes):
        raise ValueError(f"batch size {batch_size} cannot hold {len(sizes)} domains")
    total = sum(sizes)
    exact = [batch_size * s / total for s in sizes]
    slots = [max(1, int(e)) for e in exact]
    while sum(slots) < batch_size:  # give the leftovers to the largest remainders
        i = max(range(len(sizes)), key=lambda j: (exact[j] - slots[j], sizes[j]))
        slots[i] += 1
    while sum(slots) > batch_size:  # the >= 1 floor overshot: take from the most over-served
        i = max((j for j in range(len(sizes)) if slots[j] > 1), key=lambda j: slots[j] - exact[j])
        slots[i] -= 1
    return slots


class CoTrainBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices; ``domains[i]`` names the domain of item ``i``."""

    def __init__(self, domains: Sequence | np.ndarray, batch_size: int, *, generator: torch.Generator | None,
                 slots: Sequence[int] | None = None, num_batches: int | None = None,
                 rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        domains = np.asarray(domains)
        self.names, inverse = np.unique(domains, return_inverse=True)
        self.members = [np.flatnonzero(inverse == d) for d in range(len(self.names))]
        self.batch_size = batch_size
        self.slots = list(slots) if slots is not None else domain_slots([len(m) for m in self.members], batch_size)
        if len(self.slots) != len(self.members) or sum(self.slots) != batch_size:
            raise ValueError(f"slots {self.slots} must give one count per domain {list(self.names)} "
                             f"summing to the batch size {batch_size}")
        self.num_batches = num_batches if num_batches is not None else len(domains) // batch_size
        self.generator = generator
        self.rank, self.world_size = rank, world_size

    @property
    def slots_by_domain(self) -> dict[str, int]:
        return {str(n): s for n, s in zip(self.names, self.slots)}

    def __len__(self) -> int:
        return self.num_batches // self.world_size

    def _stream(self, members: np.ndarray) -> Iterator[int]:
        while True:  # reshuffle this domain alone whenever it runs out
            yield from members[torch.randperm(len(members), generator=self.generator).numpy()].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        streams = [self._stream(m) for m in self.members]
        batches = []
        for _ in range(self.num_batches - self.num_batches % self.world_size):
            batch = [next(s) for s, k in zip(streams, self.slots) for _ in range(k)]
            order = torch.randperm(len(batch), generator=self.generator).tolist()
            batches.append([batch[i] for i in order])
        yield from batches[self.rank::self.world_size]
