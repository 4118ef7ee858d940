"""The experiment matrix behind ``python -m benchmark run all``: recipes x
protocols x seeds, each with a run id derived from its configuration and data.

* A **recipe** (``configs/recipes/<name>.yaml``) is a training configuration
  without data, output folder or seed: ``train:`` holds the ``TrainConfig``
  keys (model, optim, early_stopping, amp, ...), ``cost:`` fallback throughput for
  ``--dry-run`` when no measurement of this machine's device exists (``benchmark.cost``):
  ``utt_per_s`` (training), optionally ``first_epoch_utt_per_s`` (frozen-SSL recipes compute
  their feature cache in epoch 1), ``score_utt_per_s`` and ``measured_on`` (free text).
* A **protocol** (``configs/protocols/<name>.yaml``, see ``benchmark.protocols``)
  says which data trains, selects and tests.
* The **matrix** (``configs/matrix.yaml``) lists groups of recipe and protocol
  name patterns and the seeds (a file-wide ``seeds:`` list; a group's own
  ``seeds:`` replaces it for that group).

The run id is ``<recipe>__<protocol>__s<seed>-<hash>``; the hash covers the
recipe's training settings, the protocol definition, the seed and the dataset
folders, so changing any of them makes a new run instead of silently reusing
an old one, while an unchanged rerun skips finished work.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from benchmark.protocols import PROTOCOL_DIR, Protocol, load_protocols
from benchmark.training.config import ConfigError, TrainConfig, read_yaml_file

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
RECIPE_DIR = CONFIG_DIR / "recipes"
MATRIX_FILE = CONFIG_DIR / "matrix.yaml"

#: Keys of a recipe's ``cost:`` mapping; the rates are utterances per second (null = unknown).
COST_RATES = ("utt_per_s", "first_epoch_utt_per_s", "score_utt_per_s")
COST_KEYS = (*COST_RATES, "measured_on")


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    train: dict[str, Any]
    #: Training utterances per second from the recipe's ``cost:`` (None = unknown).
    utt_per_s: float | None
    source: str
    #: The whole validated ``cost:`` mapping (see ``COST_KEYS``).
    cost: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: Path) -> "Recipe":
        raw = read_yaml_file(path, "recipe", "pass an existing recipe YAML (see configs/recipes/)")
        if not isinstance(raw, dict) or "train" not in raw:
            raise ConfigError(f"{path}: a recipe needs a 'train:' mapping of TrainConfig keys. "
                              "Fix: see configs/recipes/lcnn.yaml")
        unknown = set(raw) - {"description", "train", "cost"}
        if unknown:
            raise ConfigError(f"{path}: unknown key '{sorted(unknown)[0]}'; valid keys: description, train, cost")
        train = dict(raw["train"] or {})
        for key in ("data", "out_dir", "seed"):
            if key in train:
                raise ConfigError(f"{path}: key 'train.{key}' is set by run all (from the protocol, the run id "
                                  "and the matrix seeds). Fix: remove it from the recipe")
        cost = _cost(raw.get("cost"), path)
        recipe = cls(path.stem, str(raw.get("description", "")), train, cost.get("utt_per_s"), str(path), cost)
        recipe.train_config(Path("runs/x"), seed=0, data_label="check")  # validates types and keys now
        return recipe

    @property
    def epochs(self) -> int:
        return int(self.train.get("optim", {}).get("epochs", 100))

    def train_config(self, out_dir: Path, *, seed: int, data_label: str) -> TrainConfig:
        raw = {**self.train, "data": {"dataset": data_label}, "out_dir": str(out_dir), "seed": seed}
        return TrainConfig.from_dict(raw, source=self.source)


def _cost(value: Any, path: Path) -> dict[str, Any]:
    """A recipe's ``cost:`` mapping, checked: known keys, rates null or positive numbers."""
    if value is None:
        return {}
    fix = "Fix: e.g. cost: {utt_per_s: 250.0, score_utt_per_s: 900.0} (utterances per second) or null"
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: 'cost' must be a mapping, got {value!r}. {fix}")
    unknown = sorted(set(value) - set(COST_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key 'cost.{unknown[0]}'; valid keys: {', '.join(COST_KEYS)}")
    for key in COST_RATES:
        v = value.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise ConfigError(f"{path}: cost.{key} must be a positive number or null, got {v!r}. {fix}")
    return dict(value)


def load_recipes(folder: Path = RECIPE_DIR) -> dict[str, Recipe]:
    return {p.stem: Recipe.from_yaml(p) for p in sorted(folder.glob("*.yaml"))}


@dataclass(frozen=True)
class Group:
    name: str
    recipes: tuple[str, ...]
    protocols: tuple[str, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Experiment:
    recipe: Recipe
    protocol: Protocol
    seed: int
    group: str
    run_id: str

    @property
    def label(self) -> str:
        return f"{self.recipe.name}/{self.protocol.name}/s{self.seed}"


@dataclass
class Matrix:
    groups: list[Group]
    recipes: dict[str, Recipe]
    protocols: dict[str, Protocol]
    source: str = ""
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path = MATRIX_FILE, recipe_dir: Path = RECIPE_DIR,
             protocol_dir: Path = PROTOCOL_DIR) -> "Matrix":
        raw = read_yaml_file(path, "matrix file", "pass an existing matrix YAML (see configs/matrix.yaml)")
        if not isinstance(raw, dict) or not isinstance(raw.get("groups"), list):
            raise ConfigError(f"{path}: needs 'groups:', a list of {{name, recipes, protocols}}. "
                              "Fix: see configs/matrix.yaml")
        default_seeds = _seeds(raw.get("seeds", [0]), f"{path}: seeds")
        recipes, protocols = load_recipes(recipe_dir), load_protocols(protocol_dir)
        groups, warnings = [], []
        for i, g in enumerate(raw["groups"]):
            where = f"{path}: groups[{i}]"
            if not isinstance(g, dict) or not {"name", "recipes", "protocols"} <= set(g):
                raise ConfigError(f"{where} needs name, recipes and protocols")
            unknown = sorted(set(g) - {"name", "recipes", "protocols", "seeds"})
            if unknown:
                raise ConfigError(f"{where}: unknown key '{unknown[0]}'. Fix: use name, recipes, protocols, seeds")
            for kind, patterns, known in (("recipe", g["recipes"], recipes), ("protocol", g["protocols"], protocols)):
                for pat in patterns:
                    if fnmatch.filter(known, pat):
                        continue
                    # A wildcard may name a family not written yet (e.g. wavespec*); a plain name is a typo.
                    if any(ch in pat for ch in "*?["):
                        warnings.append(f"{where}: {kind} pattern '{pat}' matches nothing yet")
                        continue
                    raise ConfigError(f"{where}: {kind} '{pat}' does not exist. Fix: choose from {', '.join(known)}")
            # A group's own seeds (FD-ADD reports 10 per task) replace the file's default list.
            seeds = _seeds(g["seeds"], f"{where}.seeds") if "seeds" in g else default_seeds
            groups.append(Group(str(g["name"]), tuple(g["recipes"]), tuple(g["protocols"]), seeds))
        return cls(groups, recipes, protocols, str(path), warnings)

    def experiments(self, roots: Mapping[str, Any], only: str | None = None) -> list[Experiment]:
        out: dict[str, Experiment] = {}
        for g in self.groups:
            rec = [r for r in self.recipes if any(fnmatch.fnmatchcase(r, p) for p in g.recipes)]
            pro = [p for p in self.protocols if any(fnmatch.fnmatchcase(p, q) for q in g.protocols)]
            for r in rec:
                for p in pro:
                    for seed in g.seeds:
                        recipe, protocol = self.recipes[r], self.protocols[p]
                        exp = Experiment(recipe, protocol, seed, g.name, run_id(recipe, protocol, seed, roots))
                        # --only matches the label (recipe/protocol/seed) or the group's name.
                        if only and not (only_matches(exp.label, only) or fnmatch.fnmatchcase(g.name, only)):
                            continue
                        out.setdefault(exp.run_id, exp)
        return list(out.values())


def only_matches(label: str, only: str) -> bool:
    """``--only``: a glob over the whole label, or a part of it.  A part holding '/' must start
    where a label part starts: 'aasist/codecfake-training_co-trained/s0' names aasist's run, not
    also w2v2-aasist's and wavlm-aasist's (which merely contain it); '19la' or 'lcnn' still match
    anywhere."""
    if fnmatch.fnmatchcase(label, only):
        return True
    if "/" not in only:
        return only in label
    return label.startswith(only) or f"/{only}" in label


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    """A non-empty list of distinct non-negative integer seeds, else one ConfigError line."""
    fix = "Fix: write a list of distinct non-negative integers, e.g. [0, 1, 2]"
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where}: must be a non-empty list of seeds, got {value!r}. {fix}")
    for seed in value:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"{where}: seed {seed!r} is not a non-negative integer. {fix}")
    dupes = sorted({s for s in value if list(value).count(s) > 1})
    if dupes:
        raise ConfigError(f"{where}: seed {dupes[0]} is listed twice. {fix}")
    return tuple(value)


def run_id(recipe: Recipe, protocol: Protocol, seed: int, roots: Mapping[str, Any]) -> str:
    data = {name: str(Path(str(_root(roots.get(name)))).expanduser().resolve()) if _root(roots.get(name)) else None
            for name in protocol.datasets()}
    blob = json.dumps({"train": recipe.train, "protocol": protocol.to_dict(), "seed": seed, "data": data},
                      sort_keys=True, default=str)
    return f"{recipe.name}__{protocol.name}__s{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def _root(entry: Any) -> Any:
    return entry.get("root") if isinstance(entry, Mapping) else entry
