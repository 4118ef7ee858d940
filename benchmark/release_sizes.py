"""How many utterances each protocol part selects, from the datasets' official release sizes,
so ``run all --dry-run`` can price a run before anything is downloaded.

A release is described as **unit groups**: ``units`` utterance ids, each present once in every
entry of ``items`` (e.g. WaveFake LJSpeech: 13,100 ids, each as the real clip and seven vocoder
versions).  An item entry lists the ``DatasetItem`` fields its files have (``split``, ``label``,
``corpus``, ``language``, ``vocoder``, ...); a field left out is not known from the release.
Groups never share an utterance id, and every item of a group has its own ``source_id`` unit:
the unit the protocols' ``group_by: source_id`` splits keep together.

Selections follow ``benchmark.protocols.select`` (spoof-side filters let bona fide through);
ratio splits follow ``benchmark.protocols._hash_split`` and ``benchmark.fdadd_split`` with their
own boundary functions, which is exact when every unit of the cut holds the same number of
items (every protocol here), and unknown otherwise.  Anything that depends on an unknown field
or count is ``None``: never a guess.

Sources (each number is cited at its entry below):
WaveFake, RUB-SysSec/WaveFake d52d51b and its datasheet (arXiv 2111.02813);
LibriSeVoc, csun22/Synthetic-Voice-Detection-Vocoder-Artifacts 74b8527;
DECRO, petrichorwq/DECRO-dataset e0db174; Codecfake, xieyuankun/Codecfake 72c32e2 and its paper's
dataset statistics (arXiv:2405.04880, Fig. 3);
ASVspoof 2019 LA, its README (LA protocol counts); ASVspoof 2021 DF, its eval keys; In-the-Wild,
its meta.csv (Müller et al. 2022).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from benchmark.data.readers.base import BONAFIDE_CONDITION
from benchmark.fdadd_split import item_bounds

BONA, SPOOF = "bonafide", "spoof"
#: Filters that apply to spoofed items only (``protocols.select``): bona fide always passes them.
SPOOF_SIDE = {"attacks": "attack", "vocoders": "vocoder", "vocoder_categories": "vocoder_category",
              "compressions": "compression"}
EVERY_ITEM = {"splits": "split", "labels": "label", "languages": "language", "corpora": "corpus"}


@dataclass(frozen=True)
class UnitGroup:
    """``units`` utterance ids (None = count unknown), each once in every entry of ``items``."""

    units: int | None
    items: tuple[Mapping[str, str], ...]
    #: Where the count comes from.
    source: str


def _real(**fields: str) -> dict[str, str]:
    return {"label": BONA, "attack": BONAFIDE_CONDITION, "vocoder": BONAFIDE_CONDITION,
            "vocoder_category": BONAFIDE_CONDITION, **fields}


def _fake(vocoder: str | None = None, **fields: str) -> dict[str, str]:
    named = {} if vocoder is None else {"attack": vocoder, "vocoder": vocoder}
    return {"label": SPOOF, **named, **fields}


def _vocoded(units: int, common: Mapping[str, str], vocoders: Sequence[str], category: str | None,
             source: str) -> UnitGroup:
    """A real corpus plus one re-synthesised copy of every clip per vocoder."""
    cat = {} if category is None else {"vocoder_category": category}
    return UnitGroup(units, (_real(**common), *(_fake(v, **cat, **common) for v in vocoders)), source)


def _by_split(counts: Mapping[str, tuple[int, int] | int], source: str, **common: str) -> tuple[UnitGroup, ...]:
    """One group per split (and per label where the release gives bona fide / spoof counts);
    every file is its own unit."""
    out: list[UnitGroup] = []
    for split, n in counts.items():
        if isinstance(n, tuple):
            out.append(UnitGroup(n[0], (_real(split=split, **common),), source))
            out.append(UnitGroup(n[1], (_fake(split=split, **common),), source))
        else:
            out.append(UnitGroup(n, ({"split": split, **common},), source))
    return tuple(out)


# WaveFake: LJSpeech has 13,100 clips (WaveFake datasheet, "LJSpeech ... 13,100 short audio clips"),
# each re-synthesised by all seven LJSpeech vocoders (FD-ADD's inner cut 64,000 + 16,000 + 24,800 =
# 104,800 = 8 x 13,100); JSUT basic5000 has 5,000 clips (the subset's name; FD-ADD's table counts
# 5,000 jsut_real files), each made by the two JSUT vocoders.  The TTS folder's count is not stated
# by itself anywhere we found, so it is unknown.  Folder names: WaveFake's README / Zenodo 5642694.
_LJ_VOCODERS = ("melgan", "melgan_large", "multi_band_melgan", "full_band_melgan", "parallel_wavegan", "hifiGAN",
                "waveglow")
WAVEFAKE = (
    _vocoded(13_100, {"corpus": "ljspeech", "language": "en", "split": ""}, _LJ_VOCODERS, "vocoder",
             "WaveFake datasheet (13,100 LJSpeech clips) x 8 folders"),
    _vocoded(5_000, {"corpus": "jsut", "language": "ja", "split": ""}, ("multi_band_melgan", "parallel_wavegan"),
             "vocoder", "JSUT basic5000 (5,000 clips) x 3 folders"),
    UnitGroup(None, (_fake("conformer_fastspeech2_pwg", corpus="commonvoice-prompts", language="en",
                           vocoder_category="tts", split=""),), "WaveFake TTS folder: count not published"),
)

# LibriSeVoc: 13,201 LibriTTS utterances in gt/ and each of the six vocoder folders: the official
# split lists train.txt 7,920 + dev.txt 2,640 + test.txt 2,641 lines (csun22/Synthetic-Voice-Detection-
# Vocoder-Artifacts 74b8527); FD-ADD's inner cut 55,440 + 18,480 + 18,487 = 92,407 = 7 x 13,201.
# ``split`` is left out: the reader fills it only when the list files are next to the audio.
LIBRISEVOC = (
    _vocoded(13_201, {"corpus": "libritts", "language": "en"},
             ("diffwave", "melgan", "parallel_wave_gan", "wavegrad", "wavenet", "wavernn"), None,
             "LibriSeVoc split lists (7,920 + 2,640 + 2,641 ids) x 7 folders"),
)

# DECRO: rows of the official protocol files (petrichorwq/DECRO-dataset e0db174, {en,ch}_{train,dev,eval}.txt,
# counted by KEY column).  Its README table gives the same totals (22,541 / 13,552 / 19,190 and
# 26,850 / 18,124 / 18,124) but 5,129 / 17,412 for en_train's bona fide / spoof, where the file has
# 5,128 / 17,413; the reader reads the file.
_DECRO_SOURCE = "DECRO protocol files (petrichorwq/DECRO-dataset e0db174), rows per KEY"
DECRO = (
    *_by_split({"train": (5_128, 17_413), "dev": (3_049, 10_503), "eval": (4_306, 14_884)}, _DECRO_SOURCE,
               language="en", subset="en"),
    *_by_split({"train": (9_000, 17_850), "dev": (6_109, 12_015), "eval": (6_109, 12_015)}, _DECRO_SOURCE,
               language="zh", subset="ch"),
)

# Codecfake (Xie et al., arXiv:2405.04880): the paper's dataset statistics (Fig. 3, left: "Training set",
# "Development set", "Evaluation set" tables; read from the copy of the paper committed as codecfake.pdf in
# Shybert-AI/Codecfake_ResNet a1d79fc) give per corpus one real clip plus one copy per codec F01-F06 of
# every utterance: train VCTK 35,433 and AISHELL-3 70,388 utterances (x 7 = 248,031 + 492,716 = 740,747),
# dev 4,358 and 8,870 (x 7 = 30,506 + 62,090 = 92,596); every test set C1-C6 is the evaluation reals
# (VCTK 4,451, AISHELL-3 8,777) plus their copies by that codec, and C7 (unseen DAC, F07) the same reals
# plus F07 copies of every real clip of each corpus (VCTK 44,242, AISHELL-3 88,035; 145,505 in all).
# The official score files (xieyuankun/Codecfake 72c32e2, pretrained_model/*/result/C{1..6}_result.txt,
# all seven models) hold exactly 4,451 + 4,451 VCTK and 8,777 + 8,777 AISHELL-3 real + fake rows per set.
# Train/dev fakes carry attack C<k> for codec F0<k>, as the reader names them from the label's TYPE.
# The C sets share their real clips (one source_id each), which only a ratio pool over them would see.
# A1-A3 stay as the README counts them (A1 8,902, A2 8,902, A3 99,112 files): the paper (4,437 fakes
# each for A1/A2), the README and the score files (4,451 + 4,436 rows) disagree, so their per-label
# split is left unknown.
_CODECFAKE_PAPER = "Codecfake paper (arXiv:2405.04880) Fig. 3 dataset statistics"
_CODECFAKE_SOURCE = "Codecfake README file counts (xieyuankun/Codecfake 72c32e2)"
_CODECFAKE_CORPORA = {"vctk": "en", "aishell3": "zh"}
_CODECFAKE_TRAIN = {"train": {"vctk": 35_433, "aishell3": 70_388}, "dev": {"vctk": 4_358, "aishell3": 8_870}}
_CODECFAKE_EVAL_REALS = {"vctk": 4_451, "aishell3": 8_777}
_CODECFAKE_C7_FAKES = {"vctk": 44_242, "aishell3": 88_035}


def _codecfake_groups() -> tuple[UnitGroup, ...]:
    out: list[UnitGroup] = []
    for corpus, language in _CODECFAKE_CORPORA.items():
        for split, units in _CODECFAKE_TRAIN.items():
            out.append(_vocoded(units[corpus], {"corpus": corpus, "language": language, "split": split},
                                [f"C{k}" for k in range(1, 7)], "codec", _CODECFAKE_PAPER))
        common = {"corpus": corpus, "language": language}
        for k in range(1, 7):
            out.append(_vocoded(_CODECFAKE_EVAL_REALS[corpus], {**common, "split": f"C{k}"}, [f"C{k}"], "codec",
                                f"{_CODECFAKE_PAPER}; official C{k} score files"))
        out.append(UnitGroup(_CODECFAKE_EVAL_REALS[corpus], (_real(split="C7", **common),), _CODECFAKE_PAPER))
        out.append(UnitGroup(_CODECFAKE_C7_FAKES[corpus], (_fake("C7", vocoder_category="codec", split="C7",
                                                                  **common),), _CODECFAKE_PAPER))
    return (*out, *_by_split({"A1": 8_902, "A2": 8_902, "A3": 99_112}, _CODECFAKE_SOURCE))


CODECFAKE = _codecfake_groups()

# ASVspoof 2019 LA (its README, LA protocols): train 2,580 bona fide + 22,800 spoof, dev 2,548 + 22,296,
# eval 7,355 + 63,882.
ASVSPOOF2019_LA = _by_split({"train": (2_580, 22_800), "dev": (2_548, 22_296), "eval": (7_355, 63_882)},
                            "ASVspoof 2019 LA README (protocol counts)")
# ASVspoof 2021 DF: 611,829 trials in the eval keys (all in split "eval"); the per-subset (progress /
# eval / hidden) and per-category counts are not recorded here, so those selections stay unknown.
ASVSPOOF2021_DF = (UnitGroup(611_829, ({"split": "eval"},), "ASVspoof 2021 DF keys (611,829 trials)"),)
# In-the-Wild: meta.csv, 19,963 bona-fide + 11,816 spoof clips (Müller et al. 2022); split "test".
IN_THE_WILD = _by_split({"test": (19_963, 11_816)}, "In-the-Wild meta.csv (19,963 + 11,816)")

#: Dataset registry name -> its release as unit groups.
RELEASES: dict[str, tuple[UnitGroup, ...]] = {
    "wavefake": WAVEFAKE,
    "librisevoc": LIBRISEVOC,
    "decro": DECRO,
    "codecfake": CODECFAKE,
    "asvspoof2019-la": ASVSPOOF2019_LA,
    "asvspoof2021-df": ASVSPOOF2021_DF,
    "in-the-wild": IN_THE_WILD,
}


# ---- selections ---------------------------------------------------------------------------------------


class Unknown(Exception):
    """A size depends on a count or field the release does not give."""


@dataclass(frozen=True)
class Picked:
    """The items of one group that a selection keeps: ``units`` ids x ``items`` per id."""

    group: UnitGroup
    items: tuple[Mapping[str, str], ...]

    @property
    def size(self) -> int:
        if not self.items:
            return 0
        if self.group.units is None:
            raise Unknown(self.group.source)
        return self.group.units * len(self.items)


def _filters(spec: Any) -> list[tuple[str, set[str], bool]]:
    """(field, allowed values, spoof side only) for every filter the selection sets."""
    out = [(f, {str(v) for v in getattr(spec, key)}, False) for key, f in EVERY_ITEM.items()
           if getattr(spec, key, None) is not None]
    out += [(f, {str(v) for v in vals}, False) for f, vals in (getattr(spec, "conditions", None) or {}).items()]
    out += [(f, {str(v) for v in getattr(spec, key)}, True) for key, f in SPOOF_SIDE.items()
            if getattr(spec, key, None) is not None]
    return out


def _keeps(item: Mapping[str, str], filters: Iterable[tuple[str, set[str], bool]]) -> bool:
    for name, allowed, spoof_only in filters:
        if spoof_only:
            if "label" not in item:
                raise Unknown(f"label of {dict(item)}")
            if item["label"] == BONA:
                continue
        if name not in item:
            raise Unknown(f"{name} of {dict(item)}")
        if item[name] not in allowed:
            return False
    return True


def pick(spec: Any, releases: Mapping[str, Sequence[UnitGroup]] | None = None) -> list[Picked]:
    """What a selection (``protocols.SetSpec``) keeps of each group of its dataset's release."""
    releases = RELEASES if releases is None else releases
    if spec.dataset not in releases:
        raise Unknown(f"no release sizes for {spec.dataset}")
    filters = _filters(spec)
    return [Picked(g, tuple(it for it in g.items if _keeps(it, filters))) for g in releases[spec.dataset]]


def selection_size(spec: Any, releases: Mapping[str, Sequence[UnitGroup]] | None = None) -> int | None:
    """Utterances a selection takes from the official release; None when the release does not say."""
    try:
        return sum(p.size for p in pick(spec, releases))
    except Unknown:
        return None


# ---- ratio splits --------------------------------------------------------------------------------------


def _uniform_bounds(units: int, per_unit: int, ratios: Sequence[float], fdadd: bool) -> list[int]:
    """End (in units) of each part when ``units`` ids of ``per_unit`` items each are cut by ``ratios``:
    FD-ADD cuts cumulative item counts (``item_bounds``), the hash order cuts ranked units."""
    if fdadd:
        return item_bounds([per_unit] * units, ratios)
    from benchmark.protocols import _cut

    return _cut(units, ratios)


def _part_sizes(units: int, per_unit: int, ratios: Sequence[float], fdadd: bool) -> list[int]:
    bounds = _uniform_bounds(units, per_unit, ratios, fdadd)
    return [(end - start) * per_unit for start, end in zip([0, *bounds[:-1]], bounds)]


def _one_count(counts: Counter) -> tuple[int, int]:
    """(units, items per unit) of a cut whose units all hold the same number of items."""
    per = {size for size, units in counts.items() if size and units}
    if len(per) > 1:
        raise Unknown(f"units of unequal size {sorted(per)}: the cut depends on which ids land where")
    if not per:
        return 0, 0
    (n,) = per
    return counts[n], n


def pool_sizes(pool: Sequence[Any], rule: Any, releases: Mapping[str, Sequence[UnitGroup]] | None = None
               ) -> dict[str, int]:
    """Train/dev/test item counts of a ``ratio`` or ``fakes_ratio`` pool (``protocols.split_pool``),
    plus ``train_bonafide`` (None when the release does not label the items)."""
    if rule.group_by != "source_id":
        raise Unknown(f"group_by {rule.group_by}: releases record utterance ids only")
    fdadd = rule.order == "fdadd"
    picked = [p for spec in pool for p in pick(spec, releases) if p.items]
    for p in picked:
        if p.group.units is None:
            raise Unknown(p.group.source)
    parts: dict[str, Any] = {"train": 0, "dev": 0, "test": 0}
    if rule.rule == "ratio":
        units = Counter({len(p.items): 0 for p in picked})
        for p in picked:
            units[len(p.items)] += p.group.units
        n, per = _one_count(units)
        for name, size in zip(("train", "dev", "test"), _part_sizes(n, per, rule.ratios, fdadd)):
            parts[name] += size
        labelled = all("label" in it for p in picked for it in p.items)
        bona_per_unit = {sum(it.get("label") == BONA for it in p.items) for p in picked}
        parts["train_bonafide"] = (parts["train"] // per) * bona_per_unit.pop() \
            if labelled and per and len(bona_per_unit) == 1 else (0 if not per else None)
        return parts
    seen = set(rule.train_vocoders or ())

    def kind(item: Mapping[str, str]) -> str:
        if "label" not in item or (item["label"] == SPOOF and "vocoder" not in item):
            raise Unknown(f"label or vocoder of {dict(item)}")
        return "bona" if item["label"] == BONA else "seen" if item["vocoder"] in seen else "unseen"

    # Per-unit (bona fide, training-vocoder fakes, other fakes) counts of every group.
    shapes = [(p.group.units, Counter(kind(it) for it in p.items)) for p in picked]
    unseen = sum(u * c["unseen"] for u, c in shapes)
    if fdadd:  # FD-ADD cuts bona fide and training fakes separately, each over its own ids
        for what, ratios, names in (("bona", rule.ratios, ("train", "dev", "test")),
                                    ("seen", rule.fake_ratios, ("train", "dev"))):
            units: Counter = Counter()
            for u, c in shapes:
                units[c[what]] += u
            n, per = _one_count(units)
            for name, size in zip(names, _part_sizes(n, per, ratios, True)):
                parts[name] += size
                if what == "bona" and name == "train":
                    parts["train_bonafide"] = size
    else:  # one hash ranking of every unit of the pool serves both cuts
        signatures = {(c["bona"], c["seen"]) for _, c in shapes}
        if len(signatures) > 1:
            raise Unknown("units of unequal make-up: the cut depends on which ids land where")
        n = sum(u for u, _ in shapes)
        (bona, seen_n), = signatures or {(0, 0)}
        for name, size in zip(("train", "dev", "test"), _part_sizes(n, bona, rule.ratios, False)):
            parts[name] += size
            if name == "train":
                parts["train_bonafide"] = size
        for name, size in zip(("train", "dev"), _part_sizes(n, seen_n, rule.fake_ratios, False)):
            parts[name] += size
    parts["test"] += unseen
    return parts


def protocol_release_sizes(protocol: Any, releases: Mapping[str, Sequence[UnitGroup]] | None = None
                           ) -> tuple[int | None, int | None, int | None]:
    """(train, dev, test) utterances of ``protocol`` from release sizes alone (None = unknown);
    test counts every test set, each_split sets included, and the pool's test part when reported."""
    def total(specs: Sequence[Any]) -> int | None:
        sizes = [selection_size(s, releases) for s in specs]
        return None if None in sizes else sum(sizes)  # type: ignore[arg-type]

    rule = protocol.split
    tests = total(protocol.test)
    if rule.rule == "official":
        return total(protocol.train), total(protocol.dev), tests
    try:
        parts = pool_sizes(protocol.pool, rule, releases)
    except Unknown:
        return None, None, None
    if rule.pool_test:
        tests = None if tests is None else tests + parts["test"]
    return parts["train"], parts["dev"], tests
