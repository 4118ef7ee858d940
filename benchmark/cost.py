"""Cost estimates for ``python -m benchmark run all --dry-run``: how long each experiment of
the matrix takes, from measured throughput and the sizes of its data.

Where the rates come from, first match wins:

1. ``$CODECFAKE_COST_FILE`` (a ``benchmarks/train_throughput.py`` results file), if set;
2. the newest ``benchmarks/results/train_throughput-*.json`` measured on this machine's device
   (the GPU ``run all`` would pick, else the CPU);
3. the recipe's own ``cost:`` (``utt_per_s``, optionally ``first_epoch_utt_per_s`` and
   ``score_utt_per_s``);
4. unknown: the table says "?" rather than guess.

The estimate is an upper bound on training (every epoch up to ``optim.epochs``; early stopping
usually ends sooner): the first epoch at the first-epoch rate (frozen SSL front-ends compute
and cache their features then), the others at the steady rate, plus scoring the dev set after
every epoch and each test set once.  Parts whose size or rate is unknown are left out and the
hours are then marked as a lower bound (">=").

Gradient accumulation (``optim.grad_accum``) does not change the cost model: an epoch still
reads every training utterance once (accumulation only sums micro-batch gradients before one
optimiser step), and the measured rates time an optimiser step after every batch, which is an
upper bound for a run that steps every ``grad_accum`` batches.

Data sizes (``protocol_sizes``): counted on disk where the data is there, else the datasets'
official release sizes (``benchmark.release_sizes``, each number with its source) selected and
cut by the protocol's own split rule, so a run can be priced before its data is downloaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from codecfake_build.schema import BONAFIDE

COST_FILE_ENV = "CODECFAKE_COST_FILE"
RESULTS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
RESULTS_GLOB = "train_throughput-*.json"
RESULTS_SCHEMA = "codecfake-bench/train-throughput/1"

#: Where a run's data sizes come from (the dry run's "sizes" column).
SIZES_DISK, SIZES_RELEASE, SIZES_MIXED = "disk", "release", "disk+release"


class CostFileError(ValueError):
    """One-line problem with a throughput results file."""


@dataclass(frozen=True)
class Rates:
    """Utterances per second for one recipe; None = unknown."""

    train: float | None = None
    #: The first epoch (frozen-SSL recipes compute and cache features then); None = ``train``.
    train_first: float | None = None
    #: Scoring unseen clips (test sets, the first dev pass).
    score: float | None = None
    #: Scoring clips seen before (dev passes after the first, frozen-SSL caches); None = ``score``.
    score_cached: float | None = None
    #: "measured on <device> <date>", "recipe" or "unknown".
    source: str = "unknown"


@dataclass(frozen=True)
class Measurements:
    """A ``train_throughput`` results file: per-recipe rates measured on one device."""

    path: Path
    device: str
    date: str
    recipes: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: str | Path) -> "Measurements":
        path = Path(path)
        fix = "Fix: point it at a file written by benchmarks/train_throughput.py"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise CostFileError(f"{path}: throughput file not found. {fix}") from None
        except (OSError, ValueError) as exc:
            raise CostFileError(f"{path}: cannot read throughput file ({type(exc).__name__}). {fix}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("recipes"), dict) or "device_name" not in raw:
            raise CostFileError(f"{path}: not a train_throughput results file (needs device_name and recipes). {fix}")
        return cls(path, str(raw["device_name"]), str(raw.get("date", "")), raw["recipes"])

    @property
    def label(self) -> str:
        return f"measured on {self.device} {self.date[:10]}".rstrip()

    def rates(self, recipe: str) -> Rates | None:
        row = self.recipes.get(recipe)
        if not isinstance(row, dict) or row.get("status", "ok") != "ok" or not _positive(row.get("train_utt_per_s")):
            return None
        return Rates(train=float(row["train_utt_per_s"]), train_first=_positive(row.get("train_first_epoch_utt_per_s")),
                     score=_positive(row.get("score_utt_per_s")),
                     score_cached=_positive(row.get("score_cached_utt_per_s")), source=self.label)


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


def current_device_name() -> str | None:
    """The device ``run all --device auto`` trains on, named as the throughput script names it
    (None when the benchmark scripts are not installed alongside)."""
    try:
        import torch

        from benchmarks.codec_throughput import device_name
    except ImportError:
        return None
    return device_name("cuda" if torch.cuda.is_available() else "cpu")


def find_measurements(device: str | None, results_dir: Path | None = None) -> Measurements | None:
    """The newest results file (by its recorded date) measured on ``device``."""
    results_dir = RESULTS_DIR if results_dir is None else results_dir
    if device is None or not results_dir.is_dir():
        return None
    found = []
    for path in sorted(results_dir.glob(RESULTS_GLOB)):
        try:
            m = Measurements.load(path)
        except CostFileError:
            continue  # a stray or half-written file must not break the dry run
        if m.device == device:
            found.append(m)
    return max(found, key=lambda m: (m.date, m.path.name), default=None)


def load_measurements(env: Mapping[str, str] | None = None, results_dir: Path | None = None,
                      device: str | None = None) -> Measurements | None:
    """``$CODECFAKE_COST_FILE`` if set (a broken one is an error), else this device's newest file."""
    env = os.environ if env is None else env
    results_dir = RESULTS_DIR if results_dir is None else results_dir
    if env.get(COST_FILE_ENV):
        return Measurements.load(env[COST_FILE_ENV])
    if not results_dir.is_dir() or not any(results_dir.glob(RESULTS_GLOB)):
        return None  # skip naming the device (imports torch) when there is nothing to match
    return find_measurements(device if device is not None else current_device_name(), results_dir)


def recipe_rates(name: str, recipe_cost: Mapping[str, Any] | None, measured: Measurements | None) -> Rates:
    """Measured rates for the recipe, else its ``cost:`` entry, else unknown."""
    if measured is not None:
        rates = measured.rates(name)
        if rates is not None:
            return rates
    cost = recipe_cost or {}
    if _positive(cost.get("utt_per_s")):
        return Rates(train=float(cost["utt_per_s"]), train_first=_positive(cost.get("first_epoch_utt_per_s")),
                     score=_positive(cost.get("score_utt_per_s")),
                     source=f"recipe ({cost['measured_on']})" if cost.get("measured_on") else "recipe")
    return Rates()


@dataclass(frozen=True)
class RunCost:
    seconds: float | None
    #: True when some part (a size or a scoring rate) was unknown and left out.
    partial: bool

    @property
    def hours(self) -> float | None:
        return None if self.seconds is None else self.seconds / 3600.0

    def format(self) -> str:
        if self.hours is None:
            return "?"
        return f"{'>=' if self.partial else ''}{self.hours:.2f}"


def estimate(rates: Rates, *, epochs: int, train_items: int | None, dev_items: int | None = None,
             eval_items: int | None = None) -> RunCost:
    """Seconds to train ``epochs`` epochs (the first at the first-epoch rate), score the dev set
    after each and every test item once.  Unknown training size or rate -> unknown.

    ``train_items`` is the utterances of one epoch whatever the recipe's ``optim.grad_accum``:
    accumulating gradients over micro-batches changes how often the optimiser steps, not how many
    utterances an epoch reads, so it is no argument here."""
    if train_items is None or rates.train is None or epochs < 1:
        return RunCost(None, False)
    first = rates.train_first or rates.train
    seconds = train_items / first + (epochs - 1) * train_items / rates.train
    partial = False
    if rates.score is None or dev_items is None:
        partial = True
    else:
        seconds += dev_items / rates.score + (epochs - 1) * dev_items / (rates.score_cached or rates.score)
    if rates.score is None or eval_items is None:
        partial = True
    else:
        seconds += eval_items / rates.score
    return RunCost(seconds, partial)


def official_size(spec: Any) -> int | None:
    """Utterances a selection (``protocols.SetSpec``) takes from its dataset's official release
    (``benchmark.release_sizes``, every number cited there); None where the release does not say."""
    from benchmark.release_sizes import selection_size

    return selection_size(spec)


@dataclass(frozen=True)
class DataSizes:
    """Utterances an experiment trains on (one epoch), validates on (every epoch) and tests on
    (every test set once); None = unknown."""

    train: int | None
    dev: int | None
    test: int | None
    #: Bona-fide utterances among ``train`` (None = unknown): an oversampled epoch depends on it.
    train_bonafide: int | None = None
    #: SIZES_DISK (counted on disk), SIZES_RELEASE (official release sizes cut by the protocol's
    #: split rule), SIZES_MIXED (some datasets each way); "" when nothing is known.
    source: str = ""


def protocol_sizes(protocol: Any, roots: Mapping[str, Any], seed: int = 0,
                   releases: Mapping[str, Any] | None = None) -> DataSizes:
    """Sizes of ``protocol``'s train/dev/test data.  Data on disk always wins: a protocol whose
    datasets are all present is resolved exactly as a run resolves it; a dataset that is absent
    is priced from its official release sizes (``benchmark.release_sizes``), selected and cut
    the way the protocol's split rule cuts it; a dataset present but unreadable is unknown."""
    import warnings

    from benchmark.protocols import dataset_problem, resolve, select, split_pool
    from benchmark.release_sizes import Unknown, pool_sizes, selection_size

    # The same test as the run's status column: a dataset absent there is priced from its release.
    present = {d for d in protocol.datasets() if dataset_problem(d, roots) is None}
    if present == set(protocol.datasets()):
        try:
            r = resolve(protocol, roots, seed=seed)
        except Exception:  # a half-downloaded dataset must not break the dry run
            return DataSizes(None, None, None)
        bona = sum(it.label == BONAFIDE for it in r.train)
        return DataSizes(len(r.train), len(r.dev), sum(len(t.items) for t in r.tests), bona, SIZES_DISK)

    readers: dict[str, Any] = {}
    used: set[str] = set()

    def disk_items(spec: Any) -> list[Any] | None:
        from benchmark.data.readers import open_dataset
        from benchmark.protocols import _root_and_options

        try:
            if spec.dataset not in readers:
                root, options = _root_and_options(roots[spec.dataset])
                readers[spec.dataset] = open_dataset(spec.dataset, root, **options)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an unmatched filter warns at run time, not here
                return select(readers[spec.dataset], spec)
        except Exception:
            return None

    def size(spec: Any) -> int | None:
        if spec.dataset in present:
            used.add(SIZES_DISK)
            items = disk_items(spec)
            return None if items is None else len(items)
        used.add(SIZES_RELEASE)
        return selection_size(spec, releases)

    def total(specs: list[Any]) -> int | None:
        sizes = [size(s) for s in specs]
        return None if None in sizes else sum(sizes)  # type: ignore[arg-type]

    def bona_size(spec: Any) -> int | None:
        if spec.labels is not None and "bonafide" not in spec.labels:
            return 0
        if spec.dataset in present:
            items = disk_items(spec)
            return None if items is None else sum(it.label == BONAFIDE for it in items)
        return selection_size(dataclasses.replace(spec, labels=["bonafide"]), releases)

    rule = protocol.split
    tests = total(protocol.test)
    train_bona: int | None = None
    if rule.rule == "official":
        train, dev = total(protocol.train), total(protocol.dev)
        bonas = [bona_size(s) for s in protocol.train]
        train_bona = None if None in bonas else sum(bonas)  # type: ignore[arg-type]
    else:
        parts: dict[str, int] | None = None
        pool_sets = {s.dataset for s in protocol.pool}
        if pool_sets <= present:
            used.add(SIZES_DISK)
            picked: dict[str, Any] = {}
            for spec in protocol.pool:
                items = disk_items(spec)
                if items is None:
                    break
                for it in items:
                    picked.setdefault(f"{spec.dataset}/{it.utt_id}", it)
            else:
                try:
                    cut = split_pool([picked[k] for k in sorted(picked)], rule, seed)
                    parts = {k: len(v) for k, v in cut.items()}
                    parts["train_bonafide"] = sum(it.label == BONAFIDE for it in cut["train"])
                except Exception:
                    parts = None
        elif not pool_sets & present:
            used.add(SIZES_RELEASE)
            try:
                parts = pool_sizes(protocol.pool, rule, releases)
            except Unknown:
                parts = None
        train, dev = (None, None) if parts is None else (parts["train"], parts["dev"])
        train_bona = None if parts is None else parts.get("train_bonafide")
        if rule.pool_test:
            tests = None if tests is None or parts is None else tests + parts["test"]
    known = train is not None or dev is not None or tests is not None
    source = "" if not known else SIZES_MIXED if len(used) > 1 else used.pop()
    return DataSizes(train, dev, tests, train_bona, source)


def epoch_utterances(sizes: DataSizes, optim: Mapping[str, Any]) -> tuple[int | None, bool]:
    """Utterances one training epoch reads under a recipe's ``optim`` settings, and whether that
    is a lower bound.  ``sampling: shuffle`` (default) and ``cotrain`` read every training item
    once; ``oversample`` repeats the smaller class up to the larger one, so an epoch is twice the
    larger class (``TrainBatchSampler``): with the bona-fide count unknown it is at least the
    training set.  ``grad_accum`` never changes it: accumulation sums micro-batch gradients before
    one optimiser step, the epoch still reads the same utterances."""
    if sizes.train is None:
        return None, False
    if optim.get("sampling", "shuffle") != "oversample":
        return sizes.train, False
    if sizes.train_bonafide is None:
        return sizes.train, True
    return 2 * max(sizes.train_bonafide, sizes.train - sizes.train_bonafide), False
