"""FD-ADD's own train/dev/test cut, so our FD-ADD protocols select the same
utterances as the paper (``split: {order: fdadd}`` in a protocol YAML).

Facts (RedamancyAY/Robust-AI-Synthesized-Speech-Detection a0bf83c,
``data/datasets/{wavefake,LibriSeVoc}.py`` ``split_data(refer="id")``, which
calls ``DF_spliter.split_by_number_and_column`` of the authors' ``myutils``
package; written here from those facts, not copied):

* the units are utterance ids, listed in sorted order (the authors' metadata
  table is a sorted file listing, and ids are taken in order of appearance);
* they are permuted by ``argsort`` of a logistic-map sequence
  ``x[k+1] = 4 x[k] (1 - x[k])`` started at ``x[0] = 0.99`` (key of the k-th
  listed id: ``x[k+1]``); the split never depends on the training seed;
* shares are in *items* (files), not units: ``ratios`` summing to 1 are
  multiplied by the number of items, counts (e.g. FD-ADD's inner WaveFake cut
  64,000 / 16,000 / 24,800) are used as they are; part k takes the permuted
  units whose cumulative item count is at most the k-th cumulative share
  (``bisect_right``), so a unit is never divided;
* cross-method (``fakes_ratio``) cuts the bona-fide items and the training
  vocoders' fakes separately, each with its own ordering of its own ids (the
  authors call ``split_data`` twice); every other fake is test data.

Checked against the released split lists (RedamancyAY/RobustSpeechDetection
5f0d326, ``splits/{WaveFake,LibriseVoc}/{val,test}.csv``): on LJSpeech the rule
puts exactly LJ001-0004, -0012, -0014 ... in test and LJ001-0009, -0010,
-0022 ... in dev, and the dev/test membership pattern of all 5,100 (WaveFake)
and 5,281 (LibriSeVoc) listed ids is reproduced without a single difference.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from codecfake_build.schema import BONAFIDE

#: Start value of FD-ADD's logistic-map shuffle (``random_shuffle_with_seed(ids, 0.99)``).
LOGISTIC_X0 = 0.99
PARTS = ("train", "dev", "test")


def logistic_order(units: Sequence[str], x0: float = LOGISTIC_X0) -> list[str]:
    """``units`` sorted, then permuted as FD-ADD permutes its utterance ids."""
    ordered = sorted(set(units))
    keys = np.empty(len(ordered))
    x = x0
    for k in range(len(ordered)):
        x = 4.0 * x * (1.0 - x)
        keys[k] = x
    return [ordered[i] for i in np.argsort(keys, kind="stable")]


def item_bounds(counts: Sequence[int], ratios: Sequence[float]) -> list[int]:
    """End (exclusive) of each part in a list of units with ``counts`` items each.

    Shares are of items; a part ends after the last unit whose cumulative count is
    at most its cumulative share.  Float rounding is kept as FD-ADD has it: a share
    that sums to a hair under the total leaves the last unit out, as there.
    """
    cum = np.cumsum(np.asarray(counts, dtype=np.int64))
    total = int(cum[-1]) if len(cum) else 0
    scale = total / sum(ratios)
    targets = np.cumsum([r * scale for r in ratios])
    return [int(np.searchsorted(cum, t, side="right")) for t in targets]


def _cut(items: Sequence[Any], group_by: str, ratios: Sequence[float], names: Sequence[str],
         out: dict[str, list[Any]]) -> None:
    per_unit = Counter(it.get(group_by) for it in items)
    order = logistic_order(list(per_unit))
    bounds = item_bounds([per_unit[u] for u in order], ratios)
    part_of: dict[str, str] = {}
    start = 0
    for name, end in zip(names, bounds):
        for unit in order[start:end]:
            part_of[unit] = name
        start = end
    for it in items:
        name = part_of.get(it.get(group_by))
        if name is not None:  # units past the last bound are left out, as FD-ADD leaves them
            out[name].append(it)


def fdadd_split(pool: Sequence[Any], rule: Any) -> dict[str, list[Any]]:
    """Train/dev/test items of ``pool`` under ``rule`` (a ``protocols.SplitRule``) with FD-ADD's ordering and cut."""
    out: dict[str, list[Any]] = {p: [] for p in PARTS}
    if rule.rule == "ratio":
        _cut(pool, rule.group_by, rule.ratios, PARTS, out)
        return out
    train_vocoders = set(rule.train_vocoders or ())
    bona = [it for it in pool if it.label == BONAFIDE]
    seen = [it for it in pool if it.label != BONAFIDE and it.vocoder in train_vocoders]
    _cut(bona, rule.group_by, rule.ratios, PARTS, out)
    _cut(seen, rule.group_by, rule.fake_ratios, PARTS[:2], out)
    out["test"] += [it for it in pool if it.label != BONAFIDE and it.vocoder not in train_vocoders]
    return out
