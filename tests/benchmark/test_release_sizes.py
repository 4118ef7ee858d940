"""`benchmark.release_sizes`: protocol sizes from official release counts equal what the real
selection and split code (``protocols.resolve``) gives on items with those counts."""

from __future__ import annotations

import pytest

from benchmark.cost import SIZES_MIXED, SIZES_RELEASE, protocol_sizes
from benchmark.data.readers.base import DatasetItem, DatasetReader
from benchmark.protocols import Protocol, load_protocol, resolve, split_pool
from benchmark.release_sizes import RELEASES, UnitGroup, protocol_release_sizes
from codecfake_build.schema import BONAFIDE, SPOOF

_ITEM_FIELDS = ("split", "attack", "vocoder", "vocoder_category", "language", "corpus")


def release_items(groups: tuple[UnitGroup, ...]) -> list[DatasetItem]:
    """Items shaped like a release: every unit of every group once per item entry (unknown counts: none)."""
    items = []
    for g, group in enumerate(groups):
        for u in range(group.units or 0):
            uid = f"g{g}/u{u:06d}"
            for k, entry in enumerate(group.items):
                fields = {f: entry[f] for f in _ITEM_FIELDS if f in entry}
                extra = {f: v for f, v in entry.items() if f not in _ITEM_FIELDS and f != "label"}
                items.append(DatasetItem(utt_id=f"{uid}/{k}", label=BONAFIDE if entry.get("label") == "bonafide" else SPOOF,
                                         path=None, source_id=uid, extra=extra, **fields))
    return items


class ReleaseReader(DatasetReader):
    title, url, layout = "release-shaped items", "-", "-"

    def __init__(self, root, groups):
        super().__init__(root)
        self.groups = groups

    def _read(self):
        return release_items(self.groups)


def resolved_sizes(protocol: Protocol, releases, tmp_path, monkeypatch, seed: int = 0) -> tuple[int, int, int]:
    roots = {}
    for name in protocol.datasets():
        (tmp_path / name).mkdir(exist_ok=True)
        # The reader is patched; the folder only has to exist and hold something (empty = missing).
        (tmp_path / name / "stand-in.txt").write_text("release-shaped items come from the patched reader\n")
        roots[name] = str(tmp_path / name)
    monkeypatch.setattr("benchmark.protocols.open_dataset",
                        lambda name, root, **o: ReleaseReader(root, releases[name]))
    r = resolve(protocol, roots, seed=seed)
    return len(r.train), len(r.dev), sum(len(t.items) for t in r.tests)


@pytest.mark.parametrize("name, expected", [
    # FD-ADD's inner WaveFake cut from 13,100 LJSpeech ids x (real + 7 vocoders).
    ("inner-dataset_wavefake", (64_000, 16_000, 24_800)),
    ("inner-dataset_librisevoc", (55_440, 18_480, 18_487)),
    # bona fide 7,860 / 2,620 / 2,620 of 13,100; MelGAN + PWG fakes 20,960 / 5,240; 5 unseen vocoders x 13,100.
    ("cross-method_wavefake", (7_860 + 20_960, 2_620 + 5_240, 2_620 + 5 * 13_100)),
    ("cross-method_librisevoc", (29_040, 7_922, 55_445)),
    ("cross-language_wavefake", (31_440, 7_860, 15_000)),
])
def test_release_sizes_equal_the_real_split_on_release_shaped_items(name, expected, tmp_path, monkeypatch):
    protocol = load_protocol(name)
    assert protocol_release_sizes(protocol) == expected
    wanted = {d: RELEASES[d] for d in protocol.datasets()}
    assert resolved_sizes(protocol, wanted, tmp_path, monkeypatch) == expected


def test_official_split_protocols_sum_their_selections():
    # DECRO EN: the protocol files' rows; tests DECRO-ZH eval + DECRO-EN eval.
    assert protocol_release_sizes(load_protocol("cross-language_decro-en-to-zh")) == (22_541, 13_552, 18_124 + 19_190)
    # Codecfake C1-C7 and A1-A3 as one set each (each_split): the README's file counts.
    c = 6 * 26_456 + 145_505 + 8_902 + 8_902 + 99_112
    assert protocol_release_sizes(load_protocol("codecfake-training_co-trained")) == (
        25_380 + 740_747, 24_844 + 92_596, 71_237 + 31_779 + c)
    # ASVspoof 2021 DF per-subset counts are not recorded: unknown, never guessed.
    assert protocol_release_sizes(load_protocol("inner-dataset_21df")) == (None, None, None)


MINI = {"mini": (
    UnitGroup(137, ({"label": "bonafide", "vocoder": "bonafide", "split": ""},
                    {"label": "spoof", "vocoder": "a", "split": ""}, {"label": "spoof", "vocoder": "b", "split": ""},
                    {"label": "spoof", "vocoder": "c", "split": ""}), "test"),
    UnitGroup(None, ({"label": "spoof", "vocoder": "tts", "split": "extra"},), "unknown count"),
)}


@pytest.mark.parametrize("split", [
    {"rule": "ratio", "ratios": [0.6, 0.2, 0.2]},
    {"rule": "ratio", "ratios": [0.5, 0.3, 0.2], "order": "fdadd"},
    {"rule": "fakes_ratio", "train_vocoders": ["a", "b"]},
    {"rule": "fakes_ratio", "train_vocoders": ["a"], "fake_ratios": [0.7, 0.3], "order": "fdadd"},
])
def test_hash_and_fdadd_cuts_match_on_a_miniature(split, tmp_path, monkeypatch, recwarn):
    protocol = Protocol.from_dict({"name": "mini", "family": "inner-dataset", "paper": "test", "description": "",
                                   "split": split, "pool": [{"dataset": "built", "splits": [""]}]})
    releases = {"built": MINI["mini"]}
    for seed in (0, 3):
        assert protocol_release_sizes(protocol, releases) == resolved_sizes(protocol, releases, tmp_path,
                                                                            monkeypatch, seed)
        # The training set's bona-fide count (oversampled epochs depend on it) matches too.
        from benchmark.release_sizes import pool_sizes

        r = resolve(protocol, {"built": str(tmp_path / "built")}, seed=seed)
        assert pool_sizes(protocol.pool, protocol.split, releases)["train_bonafide"] == sum(
            it.label == BONAFIDE for it in r.train)


def test_unknown_counts_and_fields_stay_unknown():
    from benchmark.protocols import SetSpec
    from benchmark.release_sizes import selection_size

    assert selection_size(SetSpec(dataset="wavefake")) is None  # the TTS folder's count is unknown
    assert selection_size(SetSpec(dataset="wavefake", corpora=["ljspeech"])) == 8 * 13_100
    assert selection_size(SetSpec(dataset="wavefake", corpora=["ljspeech"], labels=["bonafide"])) == 13_100
    assert selection_size(SetSpec(dataset="decro", splits=["train"], languages=["en"], labels=["spoof"])) == 17_413
    assert selection_size(SetSpec(dataset="decro", splits=["eval"], attacks=["baidu"])) is None  # attack not recorded
    assert selection_size(SetSpec(dataset="codecfake", splits=["train"], labels=["bonafide"])) == 105_821
    # A1-A3: the README, the paper and the score files disagree on real/fake, so per-label stays unknown.
    assert selection_size(SetSpec(dataset="codecfake", splits=["A1"], labels=["bonafide"])) is None
    assert selection_size(SetSpec(dataset="codecfake", splits=["A1"])) == 8_902


def test_data_on_disk_wins_and_mixed_sources_say_so(tmp_path):
    from tests.benchmark.test_readers import make_librisevoc

    protocol = load_protocol("cross-dataset_librisevoc")
    root = make_librisevoc(tmp_path / "data")
    sizes = protocol_sizes(protocol, {"librisevoc": str(root)}, seed=0)
    from benchmark.data.readers import open_dataset

    parts = split_pool(open_dataset("librisevoc", root).items(), protocol.split, 0)
    assert (sizes.train, sizes.dev) == (len(parts["train"]), len(parts["dev"]))
    assert sizes.train_bonafide == sum(it.label == BONAFIDE for it in parts["train"])
    assert sizes.test == 8 * 13_100 + 19_190 + 18_124 + 31_779 and sizes.source == SIZES_MIXED
    nothing = protocol_sizes(protocol, {}, seed=0)
    assert (nothing.train, nothing.dev, nothing.source) == (73_920, 18_487, SIZES_RELEASE)
    assert nothing.train_bonafide == 73_920 // 7  # one gt file per training id


# Codecfake per corpus (paper Fig. 3 statistics): train VCTK 35,433 / AISHELL-3 70,388 utterances x (real + F01-F06),
# dev 4,358 / 8,870 x 7; C1-C6 = eval reals 4,451 / 8,777 + one codec copy each; C7 = the same reals + 44,242 /
# 88,035 DAC copies.
_C_VCTK, _C_AISHELL3 = 6 * 2 * 4_451 + 4_451 + 44_242, 6 * 2 * 8_777 + 8_777 + 88_035


@pytest.mark.parametrize("name, expected, train_bona", [
    ("cross-language_codecfake-vctk-to-aishell3", (7 * 35_433, 7 * 4_358, _C_AISHELL3), 35_433),
    ("cross-language_codecfake-aishell3-to-vctk", (7 * 70_388, 7 * 8_870, _C_VCTK), 70_388),
])
def test_codecfake_cross_language_is_priced_per_corpus(name, expected, train_bona):
    protocol = load_protocol(name)
    assert protocol_release_sizes(protocol) == expected
    sizes = protocol_sizes(protocol, {}, seed=0)  # nothing downloaded: the dry run prices from the release
    assert (sizes.train, sizes.dev, sizes.test, sizes.source) == (*expected, SIZES_RELEASE)
    assert sizes.train_bonafide == train_bona


def test_codecfake_corpora_add_up_to_the_readme_file_counts():
    from benchmark.protocols import SetSpec
    from benchmark.release_sizes import selection_size

    readme = {"train": 740_747, "dev": 92_596, **{f"C{i}": 26_456 for i in range(1, 7)}, "C7": 145_505}
    for split, files in readme.items():
        per_corpus = [selection_size(SetSpec(dataset="codecfake", splits=[split], corpora=[c]))
                      for c in ("vctk", "aishell3")]
        assert sum(per_corpus) == files, split
    # Every C1-C6 set pairs each evaluation real with one fake (the official score files' rows).
    assert selection_size(SetSpec(dataset="codecfake", splits=["C3"], corpora=["vctk"], labels=["spoof"])) == 4_451
    assert selection_size(SetSpec(dataset="codecfake", splits=["C7"], languages=["zh"], labels=["spoof"])) == 88_035
    # Training fakes carry the codec they came from (attack C<k> for F0<k>), one copy per utterance; an attack
    # filter is spoof-side, so every real clip stays.
    assert selection_size(SetSpec(dataset="codecfake", splits=["train"], attacks=["C2"])) == 2 * 105_821
