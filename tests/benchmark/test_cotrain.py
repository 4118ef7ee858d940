"""Co-training batch sampler: fixed per-batch domain counts, independent reshuffles, seeded resume."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.data import BuiltDataset, make_loader
from benchmark.data.cotrain import CoTrainBatchSampler, domain_slots
from benchmark.training import TrainingError, train
from tests.benchmark.test_training import _weights, make_config


def test_slots_follow_domain_shares():
    # Codecfake co-training: ~96.4% codec, ~3.6% ASVspoof 2019 LA vocoder items.
    assert domain_slots([667_000, 25_380], 128) == [123, 5]
    assert domain_slots([1000, 1], 128) == [127, 1]  # every batch holds both domains
    assert domain_slots([1, 1, 1], 4) == [2, 1, 1]
    with pytest.raises(ValueError, match="needs items"):
        domain_slots([10, 0], 8)


def _domains(n_codec=1230, n_voc=50):
    return np.array(["codec"] * n_codec + ["vocoder"] * n_voc)


def test_every_batch_has_fixed_domain_counts():
    domains = _domains()
    sampler = CoTrainBatchSampler(domains, 128, generator=torch.Generator().manual_seed(0))
    assert sampler.slots_by_domain == {"codec": 123, "vocoder": 5}
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(domains) // 128
    for b in batches:
        assert len(b) == 128 and len(set(b)) == 128
        assert Counter(domains[b]) == {"codec": 123, "vocoder": 5}


def test_small_domain_reshuffles_on_its_own():
    domains = _domains(1000, 7)
    sampler = CoTrainBatchSampler(domains, 100, generator=torch.Generator().manual_seed(1), slots=[96, 4])
    vocoder = [i for b in sampler for i in b if domains[i] == "vocoder"]
    assert len(vocoder) == 40
    # Whole passes over the 7 vocoder items: counts differ by at most one.
    counts = Counter(vocoder)
    assert set(counts) == set(range(1000, 1007)) and max(counts.values()) - min(counts.values()) <= 1
    codec = [i for b in sampler for i in b if domains[i] == "codec"]
    assert len(codec) == len(set(codec)) == 960  # the big domain is not yet exhausted: no repeats


def test_seeded_and_resumable_from_generator_state():
    domains = _domains()
    g = torch.Generator().manual_seed(5)
    sampler = CoTrainBatchSampler(domains, 64, generator=g)
    list(sampler)  # epoch 1
    state = g.get_state()
    epoch2 = list(sampler)
    g2 = torch.Generator()
    g2.set_state(state)
    assert list(CoTrainBatchSampler(domains, 64, generator=g2)) == epoch2
    assert list(CoTrainBatchSampler(domains, 64, generator=torch.Generator().manual_seed(6))) != epoch2


def test_ranks_split_the_global_batches():
    domains = _domains()
    whole = list(CoTrainBatchSampler(domains, 64, generator=torch.Generator().manual_seed(2)))
    parts = [list(CoTrainBatchSampler(domains, 64, generator=torch.Generator().manual_seed(2), rank=r,
                                      world_size=3)) for r in range(3)]
    assert all(len(p) == len(whole) // 3 for p in parts)
    assert parts[1][0] == whole[1] and parts[2][1] == whole[5]


# --- wired into the loader and the trainer (optim.sampling: cotrain) ----------------------------------




class TaggedSource:
    """A training source whose items carry a co-training domain (as a resolved protocol's do);
    it logs the indices read, in order, so tests see the batches the trainer drew."""

    def __init__(self, source, domains):
        self.source, self._domains, self.reads = source, np.asarray(domains), []

    def __getattr__(self, name):
        return getattr(self.source, name)

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        self.reads.append(int(index))
        return self.source[index]

    def domains(self):
        return self._domains


def _tagged(built, cache, n_vocoder=8):
    src = BuiltDataset(str(built), "train", cache_dir=str(cache))  # 32 items
    return TaggedSource(src, ["codec"] * (len(src) - n_vocoder) + ["vocoder"] * n_vocoder)


def _dev(built, cache):
    return BuiltDataset(str(built), "validation", cache_dir=str(cache))


def _batches(reads, size):
    return [reads[i:i + size] for i in range(0, len(reads), size)]


def test_loader_batches_hold_the_slots_and_shard_across_ranks(built, cache):
    src = _tagged(built, cache)
    kw = dict(batch_size=8, train=True, num_samples=2000, seed=3, domains=src.domains())
    loader = make_loader(src, **kw)
    assert loader.batch_sampler.slots_by_domain == {"codec": 6, "vocoder": 2} and len(loader) == 4
    batches = [[src.source.filenames.index(f) for f in b.filenames] for b in loader]
    assert all(Counter(src.domains()[b]) == {"codec": 6, "vocoder": 2} for b in batches)
    whole = list(make_loader(src, **kw).batch_sampler)
    ranks = [list(make_loader(src, rank=r, world_size=2, **kw).batch_sampler) for r in range(2)]
    assert ranks[0] == whole[0::2] and ranks[1] == whole[1::2]
    with pytest.raises(ValueError, match="exclude each other"):
        make_loader(src, oversample=True, **kw)


def test_trainer_draws_cotrain_batches_and_resumes_exactly(built, cache, tmp_path):
    straight_src = _tagged(built, cache)
    cfg = make_config(built, cache, tmp_path / "straight", sampling="cotrain")
    summary = train(cfg, progress=False, sources=(straight_src, _dev(built, cache)))
    assert summary["sampling"] == "cotrain" and summary["cotrain_slots"] == {"codec": 6, "vocoder": 2}
    batches = _batches(straight_src.reads, 8)
    assert len(batches) == 3 * 4  # 3 epochs of 32 // 8 batches
    assert all(Counter(straight_src.domains()[b]) == {"codec": 6, "vocoder": 2} for b in batches)

    class Crash(Exception):
        pass

    def crash_after_first(row):
        if row["epoch"] == 1:
            raise Crash

    crashed = tmp_path / "crashed"
    with pytest.raises(Crash):
        train(make_config(built, cache, crashed, sampling="cotrain"), progress=False,
              sources=(_tagged(built, cache), _dev(built, cache)), on_epoch_end=crash_after_first)
    torch.manual_seed(999)  # a fresh process's global RNG: resume must not depend on it
    np.random.seed(999)
    resumed_src = _tagged(built, cache)
    train(make_config(built, cache, crashed, sampling="cotrain"), progress=False,
          sources=(resumed_src, _dev(built, cache)))
    assert _batches(resumed_src.reads, 8) == batches[4:]  # epochs 2-3: the same batches in the same order
    a, b = _weights(tmp_path / "straight/checkpoints/last.pt"), _weights(crashed / "checkpoints/last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cotrain_without_domains_is_a_one_line_error(built, cache, tmp_path):
    with pytest.raises(TrainingError, match=r"needs training items tagged with their domain.*Fix: train through a "
                                            r"protocol") as err:
        train(make_config(built, cache, tmp_path / "plain", sampling="cotrain"), progress=False)
    assert "\n" not in str(err.value)
    one = TaggedSource(BuiltDataset(str(built), "train", cache_dir=str(cache)), ["codec"] * 32)
    with pytest.raises(TrainingError, match=r"at least two training domains, got \['codec'\]"):
        train(make_config(built, cache, tmp_path / "one", sampling="cotrain"), progress=False,
              sources=(one, _dev(built, cache)))


def test_cotrain_config_values():
    from benchmark.training import ConfigError, TrainConfig

    base = {"data": {"dataset": "x"}, "model": {"name": "lcnn"}, "out_dir": "o"}
    cfg = TrainConfig.from_dict({**base, "optim": {"sampling": "cotrain", "sam": "sam"}})
    assert cfg.optim.sampling == "cotrain" and cfg.optim.train_crop == "random"
    with pytest.raises(ConfigError, match="optim.batch_size.*at least two"):
        TrainConfig.from_dict({**base, "optim": {"sampling": "cotrain", "batch_size": 1}})
    with pytest.raises(ConfigError, match="optim.sampling"):
        TrainConfig.from_dict({**base, "optim": {"sampling": "co-train"}})


def test_trains_on_the_co_trained_protocols_domains(tmp_path):
    from benchmark.protocols import resolve
    from tests.benchmark.test_protocols import _cotrained
    from tests.benchmark.test_readers import make_asvspoof2019, make_codecfake, make_in_the_wild

    roots = {"asvspoof2019-la": make_asvspoof2019(tmp_path / "19"), "codecfake": make_codecfake(tmp_path / "cf"),
             "in-the-wild": make_in_the_wild(tmp_path / "itw")}
    r = resolve(_cotrained(), roots)  # train: 3 ASVspoof 2019 LA + 9 Codecfake items
    cfg = make_config(tmp_path, tmp_path, tmp_path / "run", sampling="cotrain", batch_size=4, epochs=2)
    summary = train(cfg, progress=False, sources=(r.train_source(), r.dev_source()))
    assert summary["cotrain_slots"] == {"asvspoof2019-la": 1, "codecfake": 3} and summary["epochs_completed"] == 2


def test_csam_recipe_and_fixed_crops_in_the_ssl_recipes():
    from benchmark.matrix import Matrix, load_recipes

    recipes = load_recipes()
    o = recipes["w2v2-aasist-csam"].train_config(Path("runs/x"), seed=0, data_label="check").optim
    assert (o.sam, o.sam_rho, o.sampling, o.batch_size, o.lr, o.train_crop) == ("sam", 0.05, "cotrain", 128, 5e-4, "first")
    assert o.class_weights == [10.0, 1.0] and (o.scheduler, o.step_epochs, o.step_gamma, o.epochs) == ("step", 2, 0.5, 10)
    for name in ("w2v2-aasist", "w2v2-aasist-sam", "w2v2-aasist-asam", "w2v2-lcnn", "wavlm-aasist"):
        assert recipes[name].train["optim"]["train_crop"] == "first", name
    labels = [e.label for e in Matrix.load().experiments({}) if e.recipe.name == "w2v2-aasist-csam"]
    assert labels and all("/codecfake-training_co-trained/" in lb for lb in labels)


def test_csam_with_an_own_loss_model(built, cache, tmp_path):
    # SAM's two forwards per step, the co-training batches and a model's own transform/loss together.
    from tests.benchmark.test_training import OWN

    cfg = make_config(built, cache, tmp_path / "csam", sampling="cotrain", sam="sam", class_weights=None, epochs=1)
    cfg.model.name, cfg.model.kwargs = OWN, {"channels": 4}
    src = _tagged(built, cache)
    summary = train(cfg, progress=False, sources=(src, _dev(built, cache)))
    assert summary["cotrain_slots"] == {"codec": 6, "vocoder": 2} and summary["epochs_completed"] == 1
    assert all(Counter(src.domains()[b]) == {"codec": 6, "vocoder": 2} for b in _batches(src.reads, 8))
