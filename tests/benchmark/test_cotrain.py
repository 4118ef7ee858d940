"""Co-training batch sampler: fixed per-batch domain counts, independent reshuffles, seeded resume."""

from collections import Counter

import numpy as np
import pytest
import torch

from benchmark.data.cotrain import CoTrainBatchSampler, domain_slots


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
