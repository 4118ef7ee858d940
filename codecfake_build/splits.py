"""Deterministic train/validation/test assignment.

Units (utterances, or speakers with ``by="speaker"``) are ranked by
``sha256(f"{seed}:{unit}")`` and cut at the cumulative ratios.  Hash ranking
(rather than shuffling a list) keeps exact proportions and makes the split of
a unit depend only on the seed and the set of units, never on file order.
Every codec copy of an utterance inherits its source's split, so no source
utterance leaks across splits.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

from codecfake_build.schema import SPLITS


def parse_ratios(text: str | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(text, str):
        try:
            parts = [float(p) for p in text.replace("/", ",").split(",")]
        except ValueError:
            raise ValueError(f"bad split ratios '{text}': use three numbers like 80/10/10 or 0.8,0.1,0.1") from None
    else:
        parts = [float(p) for p in text]
    if len(parts) != 3 or not all(0 <= p < float("inf") for p in parts) or sum(parts) <= 0:  # nan fails too
        raise ValueError(f"bad split ratios '{text}': use three non-negative numbers like 80/10/10")
    total = sum(parts)
    return tuple(p / total for p in parts)  # type: ignore[return-value]


def rank_key(seed: int, unit: str) -> str:
    return hashlib.sha256(f"{seed}:{unit}".encode()).hexdigest()


def assign_units(units: Iterable[str], ratios: Sequence[float], seed: int) -> dict[str, str]:
    ordered = sorted(set(units), key=lambda u: rank_key(seed, u))
    n = len(ordered)
    cut1 = round(n * ratios[0])
    cut2 = cut1 + round(n * ratios[1])
    out = {}
    for i, unit in enumerate(ordered):
        out[unit] = SPLITS[0] if i < cut1 else SPLITS[1] if i < cut2 else SPLITS[2]
    return out


def assign_splits(keys: Sequence[tuple[str, str]], speakers: Sequence[str], by: str,
                  ratios: Sequence[float], seed: int) -> list[str]:
    """``keys`` are (corpus, source_id) pairs, ``speakers`` their speakers (same order).
    Returns the split of each key."""
    if by == "utterance":
        units = [f"{c}/{s}" for c, s in keys]
    elif by == "speaker":
        units = [f"{c}/{spk}" for (c, _), spk in zip(keys, speakers)]
    else:
        raise ValueError(f"--split-by must be 'utterance' or 'speaker', not '{by}'")
    table = assign_units(units, ratios, seed)
    return [table[u] for u in units]
