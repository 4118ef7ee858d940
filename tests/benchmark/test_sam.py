"""SAM / ASAM wrapper: perturbation by hand, weight restoration, frozen BN stats, trainer step."""

import math

import pytest
import torch
from torch import nn

from benchmark.training import TrainConfig
from benchmark.training.config import ConfigError
from benchmark.training.loop import _sam_step
from benchmark.training.sam import SAM, frozen_bn_stats, make_sam


def _param(values, grad):
    p = nn.Parameter(torch.tensor(values))
    p.grad = torch.tensor(grad)
    return p


def test_sam_perturbation_by_hand():
    p = _param([1.0, -2.0], [3.0, 4.0])
    sam = SAM(torch.optim.SGD([p], lr=0.1), rho=0.05)
    sam.first_step()
    # e = rho g / ||g|| = 0.05 * (3, 4) / 5
    torch.testing.assert_close(p.data, torch.tensor([1.03, -1.96]))
    assert p.grad is None


def test_asam_perturbation_by_hand():
    p = _param([1.0, -2.0], [3.0, 4.0])
    q = _param([0.5], [-2.0])
    sam = SAM(torch.optim.SGD([p, q], lr=0.1), rho=0.05, adaptive=True)
    sam.first_step()
    # e = rho w^2 g / || |w| g ||, the norm over all parameters: |w| g = (3, 8, 1)
    norm = math.sqrt(9 + 64 + 1)
    torch.testing.assert_close(p.data, torch.tensor([1 + 0.05 * 3 / norm, -2 + 0.05 * 16 / norm]))
    torch.testing.assert_close(q.data, torch.tensor([0.5 + 0.05 * 0.25 * -2 / norm]))


def test_second_step_restores_weights_then_steps_with_perturbed_gradient():
    w0 = torch.tensor([1.0, -2.0, 0.5])
    p = nn.Parameter(w0.clone())
    sam = SAM(torch.optim.SGD([p], lr=0.1), rho=0.05)
    (p.square().sum() / 2).backward()  # grad = w
    sam.first_step()
    e = 0.05 * w0 / w0.norm()
    torch.testing.assert_close(p.data, w0 + e)
    (p.square().sum() / 2).backward()  # grad at w + e = w + e
    sam.second_step()
    torch.testing.assert_close(p.data, w0 - 0.1 * (w0 + e))
    assert p.grad is None and not sam._saved


def test_base_optimizer_state_is_what_gets_checkpointed():
    p = nn.Parameter(torch.ones(2))
    adam = torch.optim.Adam([p], lr=1e-3)
    sam = make_sam("asam", adam, 0.1)
    assert sam.adaptive and sam.rho == 0.1 and sam.param_groups is adam.param_groups
    assert sam.state_dict() == adam.state_dict()
    assert make_sam("none", adam) is None
    with pytest.raises(ValueError, match="unknown SAM mode"):
        make_sam("csam", adam)


def test_frozen_bn_stats_restores_running_buffers():
    bn = nn.BatchNorm1d(3)
    bn.train()
    bn(torch.randn(8, 3))
    before = {k: v.clone() for k, v in bn.named_buffers()}
    with frozen_bn_stats(nn.Sequential(bn)):
        out = bn(torch.randn(8, 3) * 5 + 2)
    assert torch.allclose(out.mean(0), torch.zeros(3), atol=1e-5)  # still normalises by the batch
    for k, v in bn.named_buffers():
        assert torch.equal(v, before[k]), k


def test_trainer_sam_step_updates_bn_once_and_steps_adam():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    reference = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    reference.load_state_dict(model.state_dict())
    wave, target = torch.randn(16, 4), torch.randint(0, 2, (16,))
    reference.train()(wave)  # BN stats after exactly one pass over the batch
    w_before = [p.detach().clone() for p in model.parameters()]
    sam = make_sam("sam", torch.optim.Adam(model.parameters(), lr=1e-2), 0.05)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    model.train()
    loss, parts = _sam_step(model, sam, lambda: (nn.functional.cross_entropy(model(wave), target), {}), scaler, 1, 0)
    assert torch.isfinite(loss) and parts == {}
    bn, ref_bn = model[1], reference[1]
    assert torch.equal(bn.running_mean, ref_bn.running_mean) and torch.equal(bn.running_var, ref_bn.running_var)
    assert int(bn.num_batches_tracked) == 1
    # Adam's first step moves every parameter by about lr; nothing is left at w + e.
    for p, w in zip(model.parameters(), w_before):
        assert (p - w).abs().max() <= 1e-2 + 1e-6
        assert not torch.equal(p, w)


def _cfg(**optim):
    return {"data": {"dataset": "d"}, "model": {"name": "lcnn"}, "out_dir": "o", "optim": optim}


def test_config_options():
    cfg = TrainConfig.from_dict(_cfg(sam="asam", sam_rho=0.05))
    assert cfg.optim.sam == "asam" and cfg.optim.sam_rho == 0.05
    assert TrainConfig.from_dict(_cfg()).optim.sam == "none"
    with pytest.raises(ConfigError, match="grad_accum"):
        TrainConfig.from_dict(_cfg(sam="sam", grad_accum=2))
    with pytest.raises(ConfigError, match="optim.sam"):
        TrainConfig.from_dict(_cfg(sam="csam"))
