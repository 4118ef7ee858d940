"""Cut waveforms to the model's input length and batch them.

Training crops are drawn from a generator seeded by (seed, epoch, index), so
they do not depend on worker count, worker order or whether a run was
resumed; only the shuffle order uses the loader's generator, whose state the
trainer checkpoints.  A fixed training cut (``train_crop`` "first"/"middle")
gives every epoch the same samples, which is what lets a frozen front-end's
feature cache hit after the first epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from benchmark.data.cotrain import CoTrainBatchSampler
from benchmark.data.labels import label_to_target, labels_to_targets
from benchmark.data.source import AudioSource
from codecfake_build.audio import AudioError, tile_to_length

CROPS = ("tile", "middle")
#: Training cuts: a random window, or the same fixed window every epoch.
TRAIN_CROPS = ("random", "first", "middle")


class ItemTransform(Protocol):
    """A model's per-item training transform (e.g. FD-ADD's pseudo-labelled speed and
    compression changes), run in data-loader workers on the *uncut* clip.

    It returns the model-ready clip and a dict of per-item numbers (pseudo-labels and the
    like) that arrive batched as ``Batch.extras``.  ``target`` is the model target
    (1 = bona fide) and ``system`` the item's attack/codec name; ``rng`` is seeded by
    (seed, epoch, index), so transforms resume exactly.  It must be picklable.
    """

    def __call__(self, wave: np.ndarray, rng: np.random.Generator, *, target: int,
                 system: str) -> tuple[np.ndarray, dict[str, float | int]]: ...


def random_crop(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Training cut: a random n-sample window; short clips are repeated to n."""
    if len(x) <= n:
        return tile_to_length(x, n)
    start = int(rng.integers(0, len(x) - n + 1))
    return x[start:start + n]


def eval_cut(x: np.ndarray, n: int, crop: str = "tile") -> np.ndarray:
    """Evaluation cut: "tile" takes the first n samples (AASIST convention), "middle" the
    centre n (FD-ADD); either way short clips are repeated to n."""
    if crop not in CROPS:
        raise ValueError(f"unknown crop mode '{crop}'; choose one of: {', '.join(CROPS)}")
    if crop == "middle" and len(x) > n:
        start = (len(x) - n) // 2
        return x[start:start + n]
    return tile_to_length(x, n)


def system_names(source: AudioSource) -> list[str]:
    """Each item's attack/codec name without decoding audio: protocol sources' conditions,
    a built dataset's codec column, else ``meta(i)['system']``."""
    if hasattr(source, "conditions"):
        return [str(c) for c in source.conditions()]
    if hasattr(source, "column"):
        return [str(c) for c in source.column("codec")]
    return [str(source.meta(i).get("system", "-")) for i in range(len(source))]


class WaveformDataset(Dataset):
    """Torch view of an ``AudioSource`` with model-ready cuts and targets.

    ``num_samples=None`` keeps whole clips (variable-length models); then
    ``max_samples`` optionally caps them the same way (random window in
    training, first samples in evaluation) to bound memory.  ``train_crop``
    "first"/"middle" replaces the random training window by that fixed one.
    """

    def __init__(
        self,
        source: AudioSource,
        *,
        num_samples: int | None,
        train: bool,
        seed: int = 0,
        crop: str = "tile",
        max_samples: int | None = None,
        transform: ItemTransform | None = None,
        train_crop: str = "random",
    ):
        if crop not in CROPS:
            raise ValueError(f"unknown crop mode '{crop}'; choose one of: {', '.join(CROPS)}")
        if train_crop not in TRAIN_CROPS:
            raise ValueError(f"unknown training crop '{train_crop}'; choose one of: {', '.join(TRAIN_CROPS)}")
        self.source = source
        self.num_samples = num_samples
        self.train = train
        self.seed = seed
        self.crop = crop
        self.max_samples = max_samples
        self.train_crop = train_crop
        self.transform = transform if train else None
        self.systems = system_names(source) if self.transform is not None else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.source)

    def cut(self, wave: np.ndarray, index: int) -> np.ndarray:
        n = self.num_samples if self.num_samples is not None else self.max_samples
        if n is None or (self.num_samples is None and len(wave) <= n):
            return wave
        if self.train and self.train_crop == "random":
            return random_crop(wave, n, np.random.default_rng((self.seed, self.epoch, index)))
        if self.train:
            return eval_cut(wave, n, "tile" if self.train_crop == "first" else "middle")
        return eval_cut(wave, n, self.crop)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            wave, label, meta = self.source[index]
        except AudioError as err:
            # One unreadable file must not end a long job: ``collate`` drops it from the batch
            # and records it in ``Batch.skipped`` for the trainer / scorer to log and count.
            return {"skipped": err.reason, "filename": err.path}
        target = label_to_target(label)
        extras: dict[str, float | int] = {}
        if self.transform is not None:
            rng = np.random.default_rng((self.seed, self.epoch, index, 1))  # apart from the crop's stream
            wave, extras = self.transform(wave, rng, target=target, system=self.systems[index])
        else:
            wave = self.cut(wave, index)
        return {
            "wave": np.ascontiguousarray(wave, dtype=np.float32),
            "target": target,
            "filename": meta["filename"],
            "meta": meta,
            "extras": extras,
        }


@dataclass
class Batch:
    wave: torch.Tensor  # (B, T) float32, zero-padded when lengths differ
    target: torch.Tensor  # (B,) int64 model targets (1 = bona fide, -1 = unlabelled)
    lengths: torch.Tensor  # (B,) valid samples per row before padding
    filenames: list[str]
    meta: list[dict[str, Any]]
    #: Per-item numbers from a model's training transform, batched: name -> (B,) tensor.
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    #: Items of this batch that could not be decoded (left out): filename -> problem.
    skipped: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.filenames)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch(self.wave.to(device, non_blocking=non_blocking), self.target.to(device, non_blocking=non_blocking),
                     self.lengths, self.filenames, self.meta,
                     {k: v.to(device, non_blocking=non_blocking) for k, v in self.extras.items()}, self.skipped)

    def pin_memory(self) -> "Batch":  # called by DataLoader(pin_memory=True)
        return Batch(self.wave.pin_memory(), self.target.pin_memory(), self.lengths, self.filenames, self.meta,
                     {k: v.pin_memory() for k, v in self.extras.items()}, self.skipped)


def collate(items: Sequence[dict[str, Any]]) -> Batch:
    skipped = {it["filename"]: it["skipped"] for it in items if "skipped" in it}
    items = [it for it in items if "skipped" not in it]
    lengths = [len(it["wave"]) for it in items]
    wave = torch.zeros(len(items), max(lengths, default=0), dtype=torch.float32)
    for row, it in enumerate(items):
        wave[row, : len(it["wave"])] = torch.from_numpy(it["wave"])
    return Batch(
        wave=wave,
        target=torch.tensor([it["target"] for it in items], dtype=torch.int64),
        lengths=torch.tensor(lengths, dtype=torch.int64),
        filenames=[it["filename"] for it in items],
        meta=[it["meta"] for it in items],
        extras=_stack_extras([it.get("extras") or {} for it in items]),
        skipped=skipped,
    )


def _stack_extras(rows: Sequence[dict[str, float | int]]) -> dict[str, torch.Tensor]:
    keys = set(rows[0]) if rows else set()
    if any(set(r) != keys for r in rows):
        raise ValueError("a training transform returned different extras keys for items of one batch")
    return {k: torch.as_tensor(np.asarray([r[k] for r in rows])) for k in sorted(keys)}


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar length so variable-length inputs need little padding.

    Training: shuffle, sort within pools of ``pool_batches`` batches, shuffle
    the batches.  Evaluation: one deterministic pass in length order.
    """

    def __init__(
        self,
        lengths: Sequence[float] | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        pool_batches: int = 50,
    ):
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last
        self.pool = batch_size * pool_batches

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        else:
            batches = bucket_batches(torch.randperm(n, generator=self.generator).numpy(), self.lengths,
                                     self.batch_size, self.pool, self.generator)
        for b in batches:
            if self.drop_last and len(b) < self.batch_size:
                continue
            yield [int(i) for i in b]


def bucket_batches(order: np.ndarray, lengths: np.ndarray, batch_size: int, pool: int,
                   generator: torch.Generator | None) -> list[np.ndarray]:
    """Cut a shuffled index order into batches of similar length: sort within pools of
    ``pool`` items, cut, then shuffle the batches so lengths do not follow a pattern."""
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def oversampled_order(targets: np.ndarray, generator: torch.Generator | None) -> np.ndarray:
    """A shuffled epoch in which every class appears as often as the largest one: smaller
    classes are repeated whole and topped up by a random subset, so no item of them is
    drawn twice more often than another (FD-ADD oversamples its real class this way)."""
    classes = [np.flatnonzero(targets == c) for c in np.unique(targets)]
    most = max(len(c) for c in classes)
    parts = []
    for idx in classes:
        reps, extra = divmod(most, len(idx))
        pick = idx[torch.randperm(len(idx), generator=generator).numpy()[:extra]]
        parts.append(np.concatenate([np.tile(idx, reps), pick]))
    order = np.concatenate(parts)
    return order[torch.randperm(len(order), generator=generator).numpy()]


class TrainBatchSampler(Sampler[list[int]]):
    """One training epoch of batches from the loader's generator: shuffled (or class
    balanced by oversampling), length-bucketed when ``lengths`` is given, and sharded
    across distributed ranks.

    Every rank draws the same global batch list from an identically seeded generator and
    keeps batches ``rank, rank + world_size, ...``; the list is cut to a multiple of
    ``world_size`` so all ranks run the same number of steps (DDP would hang otherwise).
    """

    def __init__(self, targets: np.ndarray, batch_size: int, *, generator: torch.Generator | None,
                 drop_last: bool, lengths: np.ndarray | None = None, oversample: bool = False,
                 rank: int = 0, world_size: int = 1, pool_batches: int = 50):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.targets = np.asarray(targets)
        self.batch_size = batch_size
        self.generator = generator
        self.drop_last = drop_last
        self.lengths = None if lengths is None else np.asarray(lengths, dtype=np.float64)
        self.oversample = oversample
        self.rank, self.world_size = rank, world_size
        self.pool = batch_size * pool_batches

    def _epoch_size(self) -> int:
        if not self.oversample:
            return len(self.targets)
        return int(np.unique(self.targets, return_counts=True)[1].max() * len(np.unique(self.targets)))

    def __len__(self) -> int:
        n = self._epoch_size()
        total = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return total // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        if self.oversample:
            order = oversampled_order(self.targets, self.generator)
        else:
            order = torch.randperm(len(self.targets), generator=self.generator).numpy()
        if self.lengths is not None:
            batches = bucket_batches(order, self.lengths, self.batch_size, self.pool, self.generator)
        else:
            batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        batches = batches[: len(batches) - len(batches) % self.world_size]
        for b in batches[self.rank::self.world_size]:
            yield [int(i) for i in b]


def make_loader(
    source: AudioSource,
    *,
    batch_size: int,
    train: bool,
    num_samples: int | None,
    crop: str = "tile",
    max_samples: int | None = None,
    num_workers: int = 0,
    seed: int = 0,
    pin_memory: bool = False,
    drop_last: bool | None = None,
    oversample: bool = False,
    rank: int = 0,
    world_size: int = 1,
    transform: ItemTransform | None = None,
    train_crop: str = "random",
    domains: Sequence[str] | np.ndarray | None = None,
) -> DataLoader:
    """A DataLoader of ``Batch``es.  Its ``generator`` drives shuffling; save
    ``loader.generator.get_state()`` to resume mid-run with identical order.

    ``drop_last`` defaults to True in training (a trailing batch of one breaks
    BatchNorm) unless the data is smaller than one batch.  Training batches come from
    ``TrainBatchSampler`` (``oversample`` balances the classes; ``rank``/``world_size``
    shard them for DDP), or, given each item's ``domains``, from ``CoTrainBatchSampler``
    (fixed per-batch domain counts, always full batches, no length buckets); evaluation
    is one deterministic pass.  ``transform`` (training only) replaces the training crop
    with a model's own ``ItemTransform``; ``train_crop`` picks that crop (``TRAIN_CROPS``).
    """
    dataset = WaveformDataset(source, num_samples=num_samples, train=train, seed=seed, crop=crop,
                              max_samples=max_samples, transform=transform, train_crop=train_crop)
    if drop_last is None:
        drop_last = train and len(dataset) > batch_size
    # An own generator also keeps evaluation from consuming the global torch RNG.
    generator = torch.Generator().manual_seed(seed)
    common: dict[str, Any] = dict(collate_fn=collate, num_workers=num_workers, pin_memory=pin_memory,
                                  generator=generator, persistent_workers=False)
    lengths = None
    if num_samples is None:
        lengths = source.durations() * source.sample_rate
        if max_samples is not None:
            lengths = np.minimum(lengths, max_samples)
    if train and domains is not None:
        if oversample:
            raise ValueError("co-training batches and oversampling exclude each other; choose one")
        if len(domains) != len(dataset):
            raise ValueError(f"{len(domains)} domains for {len(dataset)} training items")
        sampler = CoTrainBatchSampler(domains, batch_size, generator=generator, rank=rank, world_size=world_size)
        return DataLoader(dataset, batch_sampler=sampler, **common)
    if train:
        if oversample and source.labels is None:
            raise ValueError("oversampling needs labelled training data")
        targets = labels_to_targets(source.labels) if oversample else np.zeros(len(dataset))
        sampler = TrainBatchSampler(targets, batch_size, generator=generator, drop_last=drop_last, lengths=lengths,
                                    oversample=oversample, rank=rank, world_size=world_size)
        return DataLoader(dataset, batch_sampler=sampler, **common)
    if world_size != 1:
        raise ValueError("evaluation loaders are not sharded; score on one rank")
    if lengths is not None:
        sampler = LengthBucketSampler(lengths, batch_size, shuffle=False, generator=generator, drop_last=drop_last)
        return DataLoader(dataset, batch_sampler=sampler, **common)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=drop_last, **common)
