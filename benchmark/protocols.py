"""Named evaluation protocols (``configs/protocols/*.yaml``) and their
resolution into concrete train / dev / test item lists.

A protocol names its source paper, how it deviates from it, which datasets
(``benchmark.data.readers.DATASETS``) it reads and how it splits them:

* ``official``: train/dev/test are selections of the datasets' own splits;
* ``ratio``: the ``pool`` is cut 0.6/0.2/0.2 (configurable) by ``group_by``
  (utterance id by default), so every vocoder version of an utterance lands in
  the same split;
* ``fakes_ratio`` (cross-method): bona-fide pool items are cut by ``ratios``;
  fakes of ``train_vocoders`` are cut train/dev by ``fake_ratios``; every other
  fake is test data.  Both cuts use one hash ranking of the utterance ids, so
  no fake in training shares an utterance with a bona-fide test trial.

Every training item carries a co-training **domain**: the ``domain`` of the train
(or pool) selection that picked it, by default that selection's dataset name.  The
co-trained Codecfake protocol thus has two domains, ``asvspoof2019-la`` (vocoder
fakes) and ``codecfake`` (codec fakes), which ``optim.sampling: cotrain`` keeps in
fixed proportions in every batch (CSAM).  An item picked by two train selections
keeps the first one's domain.

Resolution is deterministic given the seed (hash-ranked, never shuffled).
Filters on the attack side (``attacks``, ``vocoders``, ``vocoder_categories``,
``compressions``) select spoofed items only: bona-fide items pass them, so
"train on MelGAN fakes" keeps the real speech.  ``languages``, ``corpora``,
``splits``, ``labels`` and ``conditions`` apply to every item.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np

from benchmark.data.readers import DATASETS, DatasetItem, DatasetReader, ItemSource, dataset_help, open_dataset
from benchmark.data.readers.base import BONAFIDE_CONDITION, ITEM_FIELDS
from benchmark.data.source import DataError
from benchmark.fdadd_split import fdadd_split
from benchmark.training.config import ConfigError, _build, read_yaml_file
from codecfake_build.schema import BONAFIDE
from codecfake_build.splits import rank_key

REPO = Path(__file__).resolve().parents[1]
PROTOCOL_DIR = REPO / "configs" / "protocols"

#: ``extra`` keys readers write, usable in ``conditions`` / ``condition_by`` besides ``ITEM_FIELDS``.
EXTRA_FIELDS = ("codec_family", "subset", "system", "trim", "type")
FAMILIES = ("inner-dataset", "cross-method", "cross-dataset", "cross-language", "codecfake-training")
PARTS = ("train", "dev", "test")


@dataclass
class SetSpec:
    """A selection of one dataset's items."""

    dataset: str
    #: Test-set name in results (default: the dataset name).
    name: str | None = None
    splits: list[str] | None = None
    labels: list[Literal["bonafide", "spoof"]] | None = None
    languages: list[str] | None = None
    corpora: list[str] | None = None
    #: Spoof-side filters: bona-fide items always pass them.
    attacks: list[str] | None = None
    vocoders: list[str] | None = None
    vocoder_categories: list[str] | None = None
    compressions: list[str] | None = None
    #: Any other item field (or reader ``extra`` key) -> allowed values; applies to every item.
    conditions: dict[str, list[str]] | None = None
    #: Test sets: the item field that names per-condition results.
    condition_by: str = "attack"
    #: Test sets: one test set per selected split (Codecfake C1..C7 each with their own bona fide).
    each_split: bool = False
    #: Train/pool selections: the co-training domain of the items picked (default: the dataset name).
    domain: str | None = None


@dataclass
class SplitRule:
    rule: Literal["official", "ratio", "fakes_ratio"] = "official"
    #: ratio: train/dev/test shares of the pool; fakes_ratio: of the pool's bona-fide items.
    ratios: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    #: fakes_ratio: train/dev shares of the training vocoders' fakes.
    fake_ratios: list[float] = field(default_factory=lambda: [0.8, 0.2])
    #: fakes_ratio: the vocoders (``vocoder`` field) whose fakes are trained on.
    train_vocoders: list[str] | None = None
    #: Items with the same value of this field always share a split.
    group_by: str = "source_id"
    #: Whether the pool's test portion is reported as a test set (besides ``test``).
    pool_test: bool = True
    pool_test_name: str | None = None
    pool_condition_by: str = "vocoder"
    #: ratio/fakes_ratio unit order: "hash" ranks by (seed, unit); "fdadd" is FD-ADD's fixed, seed-independent
    #: cut (benchmark/fdadd_split.py).
    order: Literal["hash", "fdadd"] = "hash"


@dataclass
class Protocol:
    name: str
    family: Literal["inner-dataset", "cross-method", "cross-dataset", "cross-language", "codecfake-training"]
    #: The paper whose protocol this reproduces.
    paper: str
    description: str
    split: SplitRule = field(default_factory=SplitRule)
    pool: list[SetSpec] = field(default_factory=list)
    train: list[SetSpec] = field(default_factory=list)
    dev: list[SetSpec] = field(default_factory=list)
    test: list[SetSpec] = field(default_factory=list)
    #: Where this protocol differs from the paper (empty: none known).
    deviations: list[str] = field(default_factory=list)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Protocol":
        path = Path(path)
        raw = read_yaml_file(path, "protocol file", f"pass a file from {PROTOCOL_DIR}")
        protocol = cls.from_dict(raw, source=str(path))
        if protocol.name != path.stem:
            raise ConfigError(f"{path}: name '{protocol.name}' differs from the file name. Fix: name it '{path.stem}'")
        return protocol

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<protocol>") -> "Protocol":
        protocol = _build(cls, raw, source, "")
        protocol.validate(source)
        return protocol

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def datasets(self) -> list[str]:
        """The datasets this protocol reads, sorted."""
        return sorted({s.dataset for s in [*self.pool, *self.train, *self.dev, *self.test]})

    def validate(self, source: str = "<protocol>") -> None:
        def bad(key: str, problem: str) -> ConfigError:
            return ConfigError(f"{source}: key '{key}': {problem}")

        rule = self.split
        if not self.paper.strip():
            raise bad("paper", "name the source paper")
        if rule.rule == "official":
            if self.pool:
                raise bad("pool", "only ratio splits take a pool; list train/dev/test selections instead")
            for part in PARTS:
                if not getattr(self, part):
                    raise bad(part, "an official-split protocol needs at least one selection")
        else:
            if not self.pool:
                raise bad("pool", f"a '{rule.rule}' split needs the pool it cuts")
            for part in ("train", "dev"):
                if getattr(self, part):
                    raise bad(part, f"comes from the pool under a '{rule.rule}' split; remove it")
            if not rule.pool_test and not self.test:
                raise bad("test", "no test data: set split.pool_test or list test sets")
            _check_ratios(bad, "split.ratios", rule.ratios, 3)
        if rule.rule == "fakes_ratio":
            _check_ratios(bad, "split.fake_ratios", rule.fake_ratios, 2)
            if not rule.train_vocoders:
                raise bad("split.train_vocoders", "a fakes_ratio split needs the vocoders trained on")
        elif rule.train_vocoders:
            raise bad("split.train_vocoders", "only a fakes_ratio split takes training vocoders")
        for key, value in (("split.group_by", rule.group_by), ("split.pool_condition_by", rule.pool_condition_by)):
            _check_field(bad, key, value)
        names: list[str] = []
        for part in ("pool", *PARTS):
            for i, spec in enumerate(getattr(self, part)):
                key = f"{part}[{i}]"
                if spec.dataset not in DATASETS:
                    raise bad(f"{key}.dataset", f"unknown dataset '{spec.dataset}'; choose one of: {', '.join(DATASETS.names())}")
                _check_field(bad, f"{key}.condition_by", spec.condition_by)
                for name in spec.conditions or {}:
                    _check_field(bad, f"{key}.conditions.{name}", name)
                if spec.each_split and (part != "test" or not spec.splits):
                    raise bad(f"{key}.each_split", "only for test selections that list their splits")
                if spec.domain is not None and part not in ("pool", "train"):
                    raise bad(f"{key}.domain", "only training (train or pool) selections have a co-training domain")
                if spec.domain is not None and not spec.domain.strip():
                    raise bad(f"{key}.domain", "must be a non-empty name; leave it out to use the dataset name")
                if part == "test":
                    names += [_test_name(spec, s) for s in spec.splits] if spec.each_split else [_test_name(spec)]
        if rule.rule != "official" and rule.pool_test:
            names.append(self.pool_test_name())
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise bad("test", f"test set name '{dupes[0]}' is used twice; give the selections distinct names")

    def pool_test_name(self) -> str:
        return self.split.pool_test_name or self.pool[0].name or self.pool[0].dataset

    def test_names(self) -> list[str]:
        names = []
        if self.split.rule != "official" and self.split.pool_test:
            names.append(self.pool_test_name())
        for spec in self.test:
            names += [_test_name(spec, s) for s in spec.splits] if spec.each_split and spec.splits else [_test_name(spec)]
        return names


def _check_ratios(bad, key: str, ratios: Sequence[float], n: int) -> None:
    if len(ratios) != n or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise bad(key, f"must be {n} non-negative shares with a positive sum, got {list(ratios)}")


def _check_field(bad, key: str, name: str) -> None:
    if name not in ITEM_FIELDS and name not in EXTRA_FIELDS:
        raise bad(key, f"unknown item field '{name}'; choose one of: {', '.join(ITEM_FIELDS + EXTRA_FIELDS)}")


def _test_name(spec: SetSpec, split: str | None = None) -> str:
    if split is None:
        return spec.name or spec.dataset
    return f"{spec.name}:{split}" if spec.name else split


def load_protocol(name_or_path: str | Path) -> Protocol:
    """A protocol by name (``configs/protocols/<name>.yaml``) or path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROTOCOL_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml")))
            raise ConfigError(f"{path}: unknown protocol '{name_or_path}'. Fix: choose one of: {known}")
    return Protocol.from_yaml(path)


def load_protocols(folder: str | Path = PROTOCOL_DIR) -> dict[str, Protocol]:
    """Every protocol in ``folder``, by name (sorted)."""
    return {p.stem: Protocol.from_yaml(p) for p in sorted(Path(folder).glob("*.yaml"))}


# ---- resolution ------------------------------------------------------------------------------------------------


@dataclass
class TestSet:
    name: str
    items: list[DatasetItem]
    #: The item field that names per-condition results.
    condition_by: str

    def source(self) -> ItemSource:
        return ItemSource(self.items, name=self.name, condition_by=self.condition_by)

    def conditions(self) -> list[str]:
        """The spoof conditions present (bona fide excluded), sorted."""
        return sorted({it.get(self.condition_by) for it in self.items if it.label != BONAFIDE})


class DomainItemSource(ItemSource):
    """An ``ItemSource`` whose items each carry a co-training domain (see the module docstring)."""

    def __init__(self, items: Sequence[DatasetItem], domains: Sequence[str], **kwargs: Any):
        super().__init__(items, **kwargs)
        if len(domains) != len(self.items):
            raise ValueError(f"{self.name}: {len(domains)} domains for {len(self.items)} items")
        self._domains = np.asarray([str(d) for d in domains])

    def domains(self) -> np.ndarray:
        """Each item's co-training domain name."""
        return self._domains


@dataclass
class ResolvedProtocol:
    protocol: Protocol
    seed: int
    train: list[DatasetItem]
    dev: list[DatasetItem]
    tests: list[TestSet]
    #: Co-training domain of each ``train`` item (None: every item in one unnamed domain).
    train_domains: list[str] | None = None

    def train_source(self) -> ItemSource:
        name = f"{self.protocol.name}:train"
        if self.train_domains is None:
            return ItemSource(self.train, name=name)
        return DomainItemSource(self.train, self.train_domains, name=name)

    def dev_source(self) -> ItemSource:
        return ItemSource(self.dev, name=f"{self.protocol.name}:dev")

    def summary(self) -> dict[str, Any]:
        """Item counts per part and test set (for logs and run records)."""
        def counts(items: Sequence[DatasetItem]) -> dict[str, int]:
            bona = sum(it.label == BONAFIDE for it in items)
            return {"bonafide": bona, "spoof": len(items) - bona}

        out = {"protocol": self.protocol.name, "seed": self.seed, "train": counts(self.train), "dev": counts(self.dev),
               "test": {t.name: {**counts(t.items), "conditions": t.conditions()} for t in self.tests}}
        if self.train_domains is not None:
            out["train_domains"] = dict(sorted(Counter(self.train_domains).items()))
        return out


class MissingDatasetError(DataError):
    """Datasets a protocol needs are not available; ``missing`` holds one line per dataset."""

    def __init__(self, protocol: str, missing: list[str]):
        self.protocol = protocol
        self.missing = missing
        super().__init__(f"protocol '{protocol}' needs datasets that are not available: " + " | ".join(missing))


Roots = Mapping[str, "str | Path | Mapping[str, Any] | None"]


def _root_and_options(entry: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(entry, Mapping):
        options = dict(entry)
        return options.pop("root", None), options
    return entry, {}


def dataset_problem(name: str, roots: Roots) -> str | None:
    """Why dataset ``name`` is not available at ``roots`` (no root given, not a folder, an empty
    folder), as one line saying where to get it; None when its folder is there."""
    root, _ = _root_and_options(roots.get(name))
    if root is None:
        return f"{name}: no root given; {dataset_help(name)}"
    if not Path(root).expanduser().is_dir():
        return f"{name}: {root} is not a folder; {dataset_help(name)}"
    if next(Path(root).expanduser().iterdir(), None) is None:  # e.g. a mount point not mounted yet
        return f"{name}: {root} is an empty folder; {dataset_help(name)}"
    return None


def missing_datasets(protocol: Protocol, roots: Roots) -> list[str]:
    """One line per dataset the protocol needs that is not available (``dataset_problem``)."""
    return [line for name in protocol.datasets() if (line := dataset_problem(name, roots)) is not None]


def resolve(protocol: Protocol, roots: Roots, *, seed: int = 0) -> ResolvedProtocol:
    """Concrete train / dev / test items of ``protocol`` on the datasets at ``roots``
    (dataset name -> folder, or -> {root: folder, **reader options}).

    Raises ``MissingDatasetError`` listing every unavailable dataset at once.
    """
    missing = missing_datasets(protocol, roots)
    if missing:
        raise MissingDatasetError(protocol.name, missing)
    readers: dict[str, DatasetReader] = {}
    for name in protocol.datasets():
        root, options = _root_and_options(roots[name])
        readers[name] = open_dataset(name, root, **options)

    # Each picked training item's domain, by object identity (the items live until resolve returns).
    domain_of: dict[int, str] = {}

    def pick(specs: Iterable[SetSpec], training: bool = False) -> list[DatasetItem]:
        out: dict[str, DatasetItem] = {}
        for spec in specs:
            for it in select(readers[spec.dataset], spec):
                key = f"{spec.dataset}/{it.utt_id}"
                if key not in out:
                    out[key] = it
                    if training:
                        domain_of[id(it)] = spec.domain or spec.dataset
        return [out[k] for k in sorted(out)]

    tests: list[TestSet] = []
    rule = protocol.split
    if rule.rule == "official":
        train, dev = pick(protocol.train, training=True), pick(protocol.dev)
    else:
        pool = pick(protocol.pool, training=True)
        parts = split_pool(pool, rule, seed)
        train, dev = parts["train"], parts["dev"]
        if rule.pool_test:
            tests.append(TestSet(protocol.pool_test_name(), parts["test"], rule.pool_condition_by))
    for spec in protocol.test:
        if spec.each_split and spec.splits:
            for split in spec.splits:
                sub = dataclasses.replace(spec, splits=[split], each_split=False)
                tests.append(TestSet(_test_name(spec, split), select(readers[spec.dataset], sub), spec.condition_by))
        else:
            tests.append(TestSet(_test_name(spec), select(readers[spec.dataset], spec), spec.condition_by))
    for name, items in (("train", train), ("dev", dev), *((t.name, t.items) for t in tests)):
        if not items:
            raise DataError(f"protocol '{protocol.name}': {name} selects no items. "
                            "Fix: check its filters against the dataset (splits, vocoders, languages)")
    _check_disjoint(protocol.name, train, dev, tests)
    return ResolvedProtocol(protocol, seed, train, dev, tests, [domain_of[id(it)] for it in train])


def select(reader: DatasetReader, spec: SetSpec) -> list[DatasetItem]:
    """The items of ``reader`` that ``spec`` selects (sorted by utt_id)."""
    items = reader.items()
    if spec.splits is not None:
        available = reader.splits()
        unknown = [s for s in spec.splits if s not in available]
        if unknown:
            raise DataError(
                f"{reader.root}: {reader.title} has no split '{unknown[0]}' (found: {', '.join(available)}). "
                f"Fix: get the missing part from {reader.url}"
            )
    every_item = [("split", spec.splits), ("label", spec.labels), ("language", spec.languages), ("corpus", spec.corpora),
                  *((k, v) for k, v in (spec.conditions or {}).items())]
    spoof_side = [("attack", spec.attacks), ("vocoder", spec.vocoders), ("vocoder_category", spec.vocoder_categories),
                  ("compression", spec.compressions)]
    for name, wanted in every_item + spoof_side:
        if wanted is None:
            continue
        wanted_set = {str(w) for w in wanted}
        spoof_only = name in dict(spoof_side)
        present = {_value(it, name) for it in items if not (spoof_only and it.label == BONAFIDE)}
        unmatched = sorted(wanted_set - present)
        if unmatched:
            warnings.warn(f"{reader.title}: no items with {name} {unmatched} (present: {', '.join(sorted(present)[:20])})",
                          stacklevel=2)
        items = [it for it in items if (spoof_only and it.label == BONAFIDE) or _value(it, name) in wanted_set]
    return items


def _value(item: DatasetItem, name: str) -> str:
    try:
        return item.get(name)
    except KeyError:
        return ""


def _cut(n: int, ratios: Sequence[float]) -> list[int]:
    """Cumulative boundaries of ``n`` ranked units for ``ratios`` (normalised)."""
    total = sum(ratios)
    bounds, acc = [], 0.0
    for r in ratios:
        acc += r / total
        bounds.append(round(n * acc))
    return bounds


def split_pool(pool: Sequence[DatasetItem], rule: SplitRule, seed: int) -> dict[str, list[DatasetItem]]:
    """Cut the pool into train/dev/test by ranked groups (see the module docstring)."""
    out = fdadd_split(pool, rule) if rule.order == "fdadd" else _hash_split(pool, rule, seed)
    if rule.rule == "fakes_ratio":
        seen = {it.vocoder for it in pool if it.label != BONAFIDE}
        absent = sorted(set(rule.train_vocoders or ()) - seen)
        if absent:
            raise DataError(f"split.train_vocoders {absent} have no fakes in the pool (vocoders: {', '.join(sorted(seen))}). "
                            "Fix: use the dataset's vocoder names")
    return out


def _hash_split(pool: Sequence[DatasetItem], rule: SplitRule, seed: int) -> dict[str, list[DatasetItem]]:
    units = sorted({it.get(rule.group_by) for it in pool}, key=lambda u: rank_key(seed, u))
    position = {u: i for i, u in enumerate(units)}
    n = len(units)

    def part_of(unit: str, ratios: Sequence[float], names: Sequence[str]) -> str:
        bounds = _cut(n, ratios)
        i = position[unit]
        return next(name for name, b in zip(names, bounds) if i < b)

    out: dict[str, list[DatasetItem]] = {p: [] for p in PARTS}
    train_vocoders = set(rule.train_vocoders or ())
    for it in pool:
        unit = it.get(rule.group_by)
        if rule.rule == "ratio" or it.label == BONAFIDE:
            out[part_of(unit, rule.ratios, PARTS)].append(it)
        elif it.vocoder in train_vocoders:
            out[part_of(unit, rule.fake_ratios, PARTS[:2])].append(it)
        else:
            out["test"].append(it)
    return out


def _check_disjoint(name: str, train: list[DatasetItem], dev: list[DatasetItem], tests: list[TestSet]) -> None:
    """Training items must not reappear as dev or test trials (same file)."""
    def paths(items: Iterable[DatasetItem]) -> set[str]:
        return {str(it.path) if it.path is not None else f"{it.corpus}/{it.utt_id}" for it in items}

    train_paths = paths(train)
    for other, items in (("dev", dev), *((t.name, t.items) for t in tests)):
        shared = train_paths & paths(items)
        if shared:
            raise DataError(f"protocol '{name}': {len(shared)} training files are also in {other} "
                            f"(e.g. {sorted(shared)[0]}). Fix: select disjoint splits")


def condition_names(source: ItemSource) -> list[str]:
    """Per-item condition labels of a test source (bona fide items read ``bonafide``)."""
    return [BONAFIDE_CONDITION if it.label == BONAFIDE else it.get(source.condition_by) for it in source.items]
