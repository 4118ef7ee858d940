"""Protocol YAMLs parse and validate; split rules and resolution on official-layout miniatures."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmark.protocols import (
    FAMILIES,
    PROTOCOL_DIR,
    MissingDatasetError,
    missing_datasets,
    Protocol,
    load_protocol,
    load_protocols,
    resolve,
)
from benchmark.runs import conditions_of
from benchmark.training.config import ConfigError
from benchmark.data.source import DataError
from codecfake_build.schema import BONAFIDE, SPOOF
from tests.benchmark.test_readers import (
    LJ_IDS,
    WAVEFAKE_LJ,
    make_asvspoof2019,
    make_asvspoof2021_df,
    make_codecfake,
    make_decro,
    make_in_the_wild,
    make_librisevoc,
    make_wavefake,
)

EXPECTED = {
    "inner-dataset_wavefake", "inner-dataset_librisevoc", "inner-dataset_decro-en", "inner-dataset_decro-zh",
    "inner-dataset_codecfake", "inner-dataset_19la", "inner-dataset_21df",
    "cross-method_wavefake", "cross-method_wavefake-melgan-large", "cross-method_librisevoc", "cross-method_21df", "cross-method_codecfake",
    "cross-dataset_librisevoc", "cross-dataset_19la", "cross-dataset_codecfake",
    "cross-language_wavefake", "cross-language_decro-en-to-zh", "cross-language_decro-zh-to-en",
    "cross-language_codecfake-vctk-to-aishell3", "cross-language_codecfake-aishell3-to-vctk",
    "codecfake-training_vocoder-trained", "codecfake-training_codec-trained", "codecfake-training_co-trained",
}


def test_every_protocol_yaml_parses_and_validates():
    protocols = load_protocols()
    assert set(protocols) == EXPECTED
    assert {p.family for p in protocols.values()} == set(FAMILIES)
    for name, p in protocols.items():
        assert p.paper and p.description and p.test_names(), name
        assert p.name == name and p.family == name.split("_")[0]
    assert load_protocol("cross-method_21df").test[0].condition_by == "vocoder_category"
    assert load_protocol(PROTOCOL_DIR / "inner-dataset_19la.yaml").datasets() == ["asvspoof2019-la"]


@pytest.mark.parametrize("raw, message", [
    ({"nmae": "x"}, r"unknown key 'nmae'. Did you mean 'name'\?"),
    ({"split": {"rule": "ratio"}}, r"key 'pool': a 'ratio' split needs the pool it cuts"),
    ({"split": {"rule": "fakes_ratio"}, "pool": [{"dataset": "wavefake"}]}, r"split.train_vocoders"),
    ({"test": [{"dataset": "wavefak"}]}, r"unknown dataset 'wavefak'"),
    ({"test": [{"dataset": "wavefake", "condition_by": "colour"}]}, r"unknown item field 'colour'"),
    ({"split": {"rule": "ratio", "ratios": [0.5, 0.5]}, "pool": [{"dataset": "wavefake"}]}, r"split.ratios"),
    ({"test": [{"dataset": "decro", "name": "X"}, {"dataset": "in-the-wild", "name": "X"}]}, r"'X' is used twice"),
])
def test_protocol_validation_errors(raw, message):
    base = {"name": "p", "family": "cross-dataset", "paper": "a paper", "description": "d",
            "train": [{"dataset": "asvspoof2019-la", "splits": ["train"]}],
            "dev": [{"dataset": "asvspoof2019-la", "splits": ["dev"]}],
            "test": [{"dataset": "in-the-wild"}]}
    if raw.get("split", {}).get("rule", "official") != "official":
        base.pop("train"), base.pop("dev")
    with pytest.raises(ConfigError, match=message):
        Protocol.from_dict({**base, **raw}, source="p.yaml")


def test_ratio_split_keeps_every_vocoder_version_of_an_utterance_together(tmp_path):
    roots = {"wavefake": make_wavefake(tmp_path)}
    protocol = load_protocol("inner-dataset_wavefake")
    r = resolve(protocol, roots, seed=3)
    (test,) = r.tests
    parts = {"train": r.train, "dev": r.dev, "test": test.items}
    where: dict[str, set[str]] = {}
    for part, items in parts.items():
        for it in items:
            where.setdefault(it.source_id, set()).add(part)
    assert all(len(p) == 1 for p in where.values())  # no utterance in two splits
    units = Counter(next(iter(p)) for p in where.values())
    # LJSpeech only, as FD-ADD: 10 ids x 8 files, cut at 64,000/16,000/24,800 of 104,800 files
    # -> cumulative 48.85 / 61.07 / 80 files -> 6 / 1 / 3 whole ids
    assert units == {"train": 6, "dev": 1, "test": 3} and sum(units.values()) == len(LJ_IDS)
    assert all(it.corpus == "ljspeech" for it in r.train + r.dev + test.items)
    lj_train = {it.source_id for it in r.train}
    assert all(sum(it.source_id == s for it in r.train) == 1 + len(WAVEFAKE_LJ) for s in lj_train)
    assert test.conditions() == sorted(WAVEFAKE_LJ)
    # FD-ADD's split is fixed: the same for every seed
    other = resolve(protocol, roots, seed=4)
    assert [it.utt_id for it in other.train] == [it.utt_id for it in r.train]


def test_hash_order_split_depends_on_the_seed(tmp_path):
    roots = {"wavefake": make_wavefake(tmp_path)}
    raw = load_protocol("inner-dataset_wavefake").to_dict()
    raw["split"] = {**raw["split"], "order": "hash", "ratios": [0.6, 0.2, 0.2]}
    protocol = Protocol.from_dict(raw)
    a, b = resolve(protocol, roots, seed=3), resolve(protocol, roots, seed=4)
    assert len({it.source_id for it in a.train}) == 6  # round(0.6 x 10)
    assert {it.source_id for it in a.train} != {it.source_id for it in b.train}


def test_cross_method_trains_on_melgan_and_pwg_fakes_only(tmp_path):
    roots = {"wavefake": make_wavefake(tmp_path)}
    r = resolve(load_protocol("cross-method_wavefake"), roots, seed=0)
    train_fakes = {it.vocoder for it in r.train + r.dev if it.label == SPOOF}
    assert train_fakes == {"melgan", "parallel_wavegan"}
    assert all(it.corpus == "ljspeech" for it in r.train + r.dev)
    (test,) = r.tests
    assert test.name == "WaveFake-unseen"
    assert test.conditions() == sorted(set(WAVEFAKE_LJ) - {"melgan", "parallel_wavegan"})
    # every unseen-vocoder file is tested; bona fide in test = the real test split (0.2 of 10 utterances)
    assert sum(it.label == SPOOF for it in test.items) == 5 * len(LJ_IDS)
    real_test = {it.source_id for it in test.items if it.label == BONAFIDE}
    real_train = {it.source_id for it in r.train if it.label == BONAFIDE}
    assert len(real_test) == 2 and len(real_train) == 6
    # fakes: 0.8/0.2 of the utterances into train/dev, ranked like the real split, so no training fake
    # shares an utterance with a bona-fide test trial
    fake_train = {it.source_id for it in r.train if it.label == SPOOF}
    fake_dev = {it.source_id for it in r.dev if it.label == SPOOF}
    assert len(fake_train) == 8 and len(fake_dev) == 2 and not fake_train & fake_dev
    assert not fake_train & real_test
    # the per-condition view the run records use: one condition per unseen vocoder plus bonafide
    src = test.source()
    assert set(conditions_of(src)) == set(test.conditions()) | {"bonafide"}


def test_cross_method_librisevoc_and_inner_ratio(tmp_path):
    roots = {"librisevoc": make_librisevoc(tmp_path)}
    r = resolve(load_protocol("cross-method_librisevoc"), roots)
    assert {it.vocoder for it in r.train if it.label == SPOOF} == {"melgan", "parallel_wave_gan"}
    assert r.tests[0].conditions() == ["diffwave", "wavegrad", "wavenet", "wavernn"]
    inner = resolve(load_protocol("inner-dataset_librisevoc"), roots)
    # 12 ids x 7 files cut at 55,440/18,480/18,487 of 92,407 files: floor(0.59996 x 12) = 7 ids train
    assert len({it.source_id for it in inner.train}) == 7
    assert len(inner.train) == 7 * 7  # gt + 6 vocoders per utterance


def test_official_protocol_on_asvspoof_and_in_the_wild(tmp_path):
    roots = {"asvspoof2019-la": make_asvspoof2019(tmp_path / "19"), "asvspoof2021-df": make_asvspoof2021_df(tmp_path / "21"),
             "in-the-wild": make_in_the_wild(tmp_path / "itw")}
    r = resolve(load_protocol("cross-dataset_19la"), roots)
    assert [it.utt_id for it in r.train] == ["LA_T_1000001", "LA_T_1138215", "LA_T_1271820"]
    assert [t.name for t in r.tests] == ["21DF", "ITW"]
    assert r.tests[0].conditions() == ["neural_vocoder_autoregressive", "neural_vocoder_nonautoregressive",
                                       "traditional_vocoder", "unknown", "waveform_concatenation"]
    assert r.summary()["test"]["ITW"] == {"bonafide": 2, "spoof": 2, "conditions": ["unknown"]}
    assert len(r.train_source()) == 3 and r.dev_source()[0].wave.shape == (1600,)


def test_codecfake_each_split_test_sets_and_cross_language(tmp_path):
    roots = {"codecfake": make_codecfake(tmp_path)}
    r = resolve(load_protocol("inner-dataset_codecfake"), roots)
    assert [t.name for t in r.tests] == [f"C{k}" for k in range(1, 7)]
    for t in r.tests:  # each set scored with its own bona fide
        assert {it.split for it in t.items} == {t.name} and t.conditions() == [t.name]
        assert sum(it.label == BONAFIDE for it in t.items) == 2
    x = resolve(load_protocol("cross-language_codecfake-vctk-to-aishell3"), roots)
    assert {it.language for it in x.train + x.dev} == {"en"}
    assert [t.name for t in x.tests][:2] == ["aishell3:C1", "aishell3:C2"]
    assert all({it.language for it in t.items} == {"zh"} for t in x.tests)
    # the miniature has A1 only: a protocol that needs A2 says which part is missing and where to get it
    with pytest.raises(DataError, match=r"Codecfake has no split 'A2' .*github.com/xieyuankun/Codecfake"):
        resolve(load_protocol("codecfake-training_codec-trained"), {**roots, "asvspoof2019-la": make_asvspoof2019(tmp_path),
                                                                    "in-the-wild": make_in_the_wild(tmp_path)})


def test_decro_cross_language(tmp_path):
    roots = {"decro": make_decro(tmp_path)}
    r = resolve(load_protocol("cross-language_decro-en-to-zh"), roots)
    assert {it.language for it in r.train} == {"en"} and {it.split for it in r.dev} == {"dev"}
    zh, en = r.tests
    assert zh.name == "DECRO-ZH" and zh.conditions() == ["fs2", "starganv2"]
    assert en.conditions() == ["baidu", "fs2"]


def test_missing_datasets_are_all_reported_with_download_links(tmp_path):
    protocol = load_protocol("cross-dataset_librisevoc")
    roots = {"librisevoc": make_librisevoc(tmp_path), "wavefake": tmp_path / "absent"}
    with pytest.raises(MissingDatasetError) as err:
        resolve(protocol, roots)
    lines = err.value.missing
    assert [ln.split(":")[0] for ln in lines] == ["decro", "in-the-wild", "wavefake"]
    assert "zenodo.org/records/7603208" in lines[0] and "deepfake-total.com" in lines[1] and "is not a folder" in lines[2]
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    roots["wavefake"] = tmp_path / "empty"  # e.g. an unmounted mount point: not "ready" in a dry run
    assert "is an empty folder" in missing_datasets(protocol, roots)[-1]


# --- co-training domains (optim.sampling: cotrain) -------------------------------------------------------------


def _cotrained(**train_extra):
    """The co-trained protocol's train/dev selections; tests limited to what the miniatures hold."""
    base = load_protocol("codecfake-training_co-trained").to_dict()
    base["train"] = [{**spec, **train_extra.get(spec["dataset"], {})} for spec in base["train"]]
    base["test"] = [{"dataset": "in-the-wild", "name": "ITW"}]
    return Protocol.from_dict(base, source="co.yaml")


def test_train_items_carry_their_selection_domain(tmp_path):
    roots = {"asvspoof2019-la": make_asvspoof2019(tmp_path / "19"), "codecfake": make_codecfake(tmp_path / "cf"),
             "in-the-wild": make_in_the_wild(tmp_path / "itw")}
    r = resolve(_cotrained(), roots)
    src = r.train_source()
    domains = src.domains()
    assert len(domains) == len(src) == len(r.train)
    by_id = dict(zip(src.filenames, domains))
    assert {by_id[u] for u in ("LA_T_1000001", "LA_T_1138215", "LA_T_1271820")} == {"asvspoof2019-la"}
    n_codec = sum(it.split == "train" and not it.utt_id.startswith("LA_") for it in r.train)
    assert r.summary()["train_domains"] == {"asvspoof2019-la": 3, "codecfake": n_codec} and n_codec > 0
    named = resolve(_cotrained(**{"asvspoof2019-la": {"domain": "vocoder"}, "codecfake": {"domain": "codec"}}), roots)
    assert sorted(set(named.train_source().domains())) == ["codec", "vocoder"]
    # A ratio split's training items take their pool selection's domain.
    wf = resolve(load_protocol("inner-dataset_wavefake"), {"wavefake": make_wavefake(tmp_path / "wf")})
    assert set(wf.train_source().domains()) == {"wavefake"}


def test_domain_only_on_training_selections():
    with pytest.raises(ConfigError, match=r"key 'test\[0\].domain': only training"):
        Protocol.from_dict({"name": "p", "family": "cross-dataset", "paper": "a", "description": "d",
                            "train": [{"dataset": "asvspoof2019-la", "splits": ["train"]}],
                            "dev": [{"dataset": "asvspoof2019-la", "splits": ["dev"]}],
                            "test": [{"dataset": "in-the-wild", "domain": "x"}]}, source="p.yaml")
