"""FD-ADD's own split (benchmark/fdadd_split.py) and the FD-ADD protocols that use it,
on miniatures of the WaveFake (both layouts), LibriSeVoc and DECRO downloads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from benchmark.data.readers import open_dataset
from benchmark.fdadd_split import fdadd_split, item_bounds, logistic_order
from benchmark.protocols import SplitRule, load_protocol, resolve
from codecfake_build.schema import BONAFIDE, SPOOF
from tests.benchmark.test_readers import (
    JSUT_IDS,
    LJ_IDS,
    WAVEFAKE_LJ,
    make_decro,
    make_in_the_wild,
    make_librisevoc,
    make_wavefake,
)


@dataclass
class Item:
    source_id: str
    label: str
    vocoder: str

    def get(self, name: str) -> str:
        return getattr(self, name)


def _positions(order: list[str], ids: list[str], lo: int, hi: int) -> list[int]:
    """Sorted list positions of the ids the permutation puts in [lo, hi)."""
    index = {u: i for i, u in enumerate(ids)}
    return sorted(index[u] for u in order[lo:hi])


def test_logistic_order_reproduces_the_released_wavefake_split():
    # 13,100 LJSpeech ids, 8 files each (real + 7 vocoders), cut 64,000 / 16,000 / 24,800 files.
    ids = [f"u{i:05d}" for i in range(13100)]
    order = logistic_order(ids[::-1])  # input order does not matter: ids are sorted first
    bounds = item_bounds([8] * len(order), [64000, 16000, 24800])
    assert bounds == [8000, 10000, 13100]
    # RedamancyAY/RobustSpeechDetection 5f0d326 splits/WaveFake: test.csv starts LJ001-0004, -0012, -0014,
    # -0016, -0019, -0024 and val.csv LJ001-0009, -0010, -0022, -0027 (positions 3, 11, ... in LJ001-0001...).
    assert _positions(order, ids, 10000, 13100)[:6] == [3, 11, 13, 15, 18, 23]
    assert _positions(order, ids, 8000, 10000)[:4] == [8, 9, 21, 26]


def test_item_bounds_follow_fd_adds_librisevoc_counts_and_float_cut():
    assert item_bounds([7] * 13201, [55440, 18480, 18487]) == [7920, 10560, 13201]
    # fractions are of files: 0.6 x 26,402 = 15,841.2 -> 7,920 whole ids of 2 files (ours would round to 7,921)
    assert item_bounds([2] * 13201, [0.8, 0.2]) == [10560, 13201]
    assert item_bounds([1] * 13201, [0.6, 0.2, 0.2]) == [7920, 10560, 13201]
    # uneven units are never divided: part k ends at the last unit whose cumulative count fits
    assert item_bounds([3, 1, 4, 2], [0.5, 0.5]) == [2, 4]


def test_fakes_ratio_cuts_real_and_training_fakes_with_their_own_orders():
    ids = [f"id{i:03d}" for i in range(50)]
    pool = [Item(u, BONAFIDE, "bonafide") for u in ids]
    pool += [Item(u, SPOOF, v) for u in ids for v in ("melgan", "pwg", "wavenet")]
    rule = SplitRule(rule="fakes_ratio", ratios=[0.6, 0.2, 0.2], fake_ratios=[0.8, 0.2],
                     train_vocoders=["melgan", "pwg"], order="fdadd")
    out = fdadd_split(pool, rule)
    real = {p: {it.source_id for it in out[p] if it.label == BONAFIDE} for p in out}
    fake = {p: {it.source_id for it in out[p] if it.label == SPOOF and it.vocoder != "wavenet"} for p in out}
    assert [len(real[p]) for p in ("train", "dev", "test")] == [30, 10, 10]
    assert [len(fake[p]) for p in ("train", "dev", "test")] == [40, 10, 0]
    # same ids -> same order: training fakes never share an utterance with a real test trial
    assert not fake["train"] & real["test"] and fake["dev"] == real["test"]
    assert sum(it.vocoder == "wavenet" for it in out["test"]) == 50  # every unseen fake is tested
    # the cut depends on the set of ids only, not on the pool's order (nor on any seed)
    again = fdadd_split(list(reversed(pool)), rule)
    assert all(sorted((it.source_id, it.vocoder) for it in again[p]) == sorted((it.source_id, it.vocoder) for it in out[p])
               for p in out)


def test_wavefake_reader_reads_the_fd_add_authors_layout(tmp_path):
    items = open_dataset("wavefake", make_wavefake(tmp_path, fdadd_layout=True)).items()
    by = Counter((it.corpus, it.vocoder, it.label) for it in items)
    assert by[("ljspeech", "bonafide", BONAFIDE)] == len(LJ_IDS)
    assert by[("jsut", "bonafide", BONAFIDE)] == len(JSUT_IDS)
    assert not any(it.vocoder == "real" for it in items)  # ljspeech_real is bona fide, not a vocoder
    tts = [it for it in items if it.vocoder_category == "tts"]
    assert [it.corpus for it in tts] == ["commonvoice-prompts"]  # ljspeech_tts is the TTS folder
    hifi = next(it for it in items if it.vocoder == "hifiGAN")
    assert hifi.source_id == f"ljspeech/{LJ_IDS[0]}"  # "_generated" stripped, grouped with the real file


@pytest.mark.parametrize("layout", ["official", "fdadd"])
def test_inner_wavefake_is_ljspeech_only_on_both_layouts(tmp_path, layout):
    root = make_wavefake(tmp_path) if layout == "official" else make_wavefake(tmp_path, fdadd_layout=True)
    r = resolve(load_protocol("inner-dataset_wavefake"), {"wavefake": root})
    everything = r.train + r.dev + r.tests[0].items
    assert {it.corpus for it in everything} == {"ljspeech"} and len(everything) == 8 * len(LJ_IDS)


def test_cross_language_wavefake_trains_on_all_english_and_tests_all_japanese(tmp_path):
    r = resolve(load_protocol("cross-language_wavefake"), {"wavefake": make_wavefake(tmp_path)})
    assert [t.name for t in r.tests] == ["WaveFake-JA"]
    # 0.8/0.2 of 10 LJSpeech ids x 3 files (real, PWG, MB-MelGAN); nothing held out
    assert len({it.source_id for it in r.train}) == 8 and len({it.source_id for it in r.dev}) == 2
    assert {it.vocoder for it in r.train} == {"bonafide", "parallel_wavegan", "multi_band_melgan"}
    assert len(r.tests[0].items) == 3 * len(JSUT_IDS) and {it.corpus for it in r.tests[0].items} == {"jsut"}


def test_cross_dataset_librisevoc_trains_on_all_of_it_and_tests_ljspeech_wavefake(tmp_path):
    roots = {"librisevoc": make_librisevoc(tmp_path / "l"), "wavefake": make_wavefake(tmp_path / "w"),
             "decro": make_decro(tmp_path / "d"), "in-the-wild": make_in_the_wild(tmp_path / "i")}
    r = resolve(load_protocol("cross-dataset_librisevoc"), roots)
    # 12 ids x 7 files cut 0.8/0.2 of files: 67.2 -> 9 ids train, the other 3 dev, no LibriSeVoc test
    assert len({it.source_id for it in r.train}) == 9 and len({it.source_id for it in r.dev}) == 3
    assert [t.name for t in r.tests] == ["WaveFake", "DECRO-EN", "DECRO-ZH", "ITW"]
    wavefake = r.tests[0]
    assert {it.corpus for it in wavefake.items} == {"ljspeech"} and wavefake.conditions() == sorted(WAVEFAKE_LJ)


def test_wavefake_cross_method_with_melgan_large(tmp_path):
    r = resolve(load_protocol("cross-method_wavefake-melgan-large"), {"wavefake": make_wavefake(tmp_path)})
    assert {it.vocoder for it in r.train + r.dev if it.label == SPOOF} == {"melgan", "melgan_large"}
    assert r.tests[0].conditions() == sorted(set(WAVEFAKE_LJ) - {"melgan", "melgan_large"})
