"""benchmark.training.losses.SingleCenterLoss: value, gradients, one-class batches."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.training.losses import SingleCenterLoss

# bona fide (target 1) at distances 5 and 1 from the origin, spoof at 10 and 2
FOUR = torch.tensor([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0], [0.0, 2.0]])
TARGET = torch.tensor([1, 1, 0, 0])


def test_hand_computed_value_on_four_vectors():
    scl = SingleCenterLoss(2)  # centre starts at the origin
    loss, parts = scl(FOUR, TARGET, return_parts=True)
    # M_nat = 3, M_man = 6, hinge = max(3 - 6 + 0.3 sqrt(2), 0) = 0
    assert loss.item() == pytest.approx(3.0)
    assert {k: v.item() for k, v in parts.items()} == pytest.approx({"m_nat": 3.0, "m_man": 6.0, "hinge": 0.0})
    wide = SingleCenterLoss(2, lam=0.5, margin=3.0)
    # hinge = 3 - 6 + 3 sqrt(2) = 1.24264; L = 3 + 0.5 * 1.24264
    assert wide(FOUR, TARGET).item() == pytest.approx(3.0 + 0.5 * (3 * math.sqrt(2) - 3), abs=1e-6)
    with torch.no_grad():
        wide.center.copy_(torch.tensor([0.0, 1.0]))  # distances 4.2426, 0, 9.2195, 1
    expected_nat, expected_man = (math.sqrt(18) + 0) / 2, (math.sqrt(85) + 1) / 2
    expected = expected_nat + 0.5 * max(expected_nat - expected_man + 3 * math.sqrt(2), 0)
    assert wide(FOUR, TARGET).item() == pytest.approx(expected, abs=1e-5)


def test_defaults_are_the_papers():
    scl = SingleCenterLoss(16)
    assert (scl.lam, scl.margin) == (1.0, 0.3)
    assert [name for name, _ in scl.named_parameters()] == ["center"]


def test_loss_decreases_as_bona_fide_moves_to_the_centre():
    torch.manual_seed(0)
    scl = SingleCenterLoss(8)
    bona, spoof = torch.randn(6, 8) + 2.0, torch.randn(6, 8) * 3.0
    target = torch.tensor([1] * 6 + [0] * 6)
    losses = [scl(torch.cat([bona * shrink, spoof]), target).item() for shrink in (1.0, 0.6, 0.3, 0.1)]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.3 * losses[0]


def test_gradient_reaches_the_centre_and_training_pulls_bona_fide_in():
    torch.manual_seed(0)
    scl = SingleCenterLoss(4, lam=1.0, margin=0.3)
    emb = torch.cat([torch.randn(8, 4) + 3.0, torch.randn(8, 4) - 3.0]).requires_grad_()
    target = torch.tensor([1] * 8 + [0] * 8)
    scl(emb, target).backward()
    assert scl.center.grad is not None and scl.center.grad.abs().sum() > 0
    opt = torch.optim.SGD([*scl.parameters(), emb], lr=0.1)
    first = None
    for _ in range(50):
        opt.zero_grad()
        loss, parts = scl(emb, target, return_parts=True)
        loss.backward()
        opt.step()
        first = first if first is not None else parts
    assert loss.item() < 0.5 * first["m_nat"].item()
    assert parts["m_nat"] < parts["m_man"] - 0.3 * 2  # the margin holds after training


def test_hinge_switches_off_when_spoof_is_far():
    scl = SingleCenterLoss(2, margin=0.3)
    bona = torch.tensor([[0.1, 0.0], [0.0, 0.2]])
    for spoof_scale, hinge_on in ((100.0, False), (0.1, True)):
        emb = torch.cat([bona, spoof_scale * torch.tensor([[1.0, 0.0], [0.0, 1.0]])]).requires_grad_()
        loss, parts = scl(emb, TARGET, return_parts=True)
        loss.backward()
        spoof_grad = emb.grad[2:].abs().sum().item()
        assert (parts["hinge"].item() > 0) is hinge_on and (spoof_grad > 0) is hinge_on
        if not hinge_on:
            assert loss.item() == pytest.approx(parts["m_nat"].item())


def test_batches_with_one_class():
    scl = SingleCenterLoss(2)
    emb = FOUR.clone().requires_grad_()
    # no bona fide: nothing to pull, loss 0 but still connected to the graph
    loss, parts = scl(emb, torch.zeros(4, dtype=torch.long), return_parts=True)
    assert loss.item() == 0.0 and parts["m_nat"].item() == 0.0 and parts["m_man"].item() == pytest.approx(4.5)
    loss.backward()
    assert scl.center.grad is not None and scl.center.grad.abs().sum() == 0
    # no spoof: only the pull term
    loss, parts = scl(FOUR, torch.ones(4, dtype=torch.long), return_parts=True)
    assert loss.item() == pytest.approx((5 + 1 + 10 + 2) / 4) and parts["hinge"].item() == 0.0


def test_embedding_on_the_centre_has_a_finite_gradient():
    scl = SingleCenterLoss(3)
    emb = torch.zeros(2, 3, requires_grad=True)
    scl(emb, torch.tensor([1, 0])).backward()
    assert torch.isfinite(emb.grad).all() and torch.isfinite(scl.center.grad).all()


def test_bad_shape_is_one_line():
    with pytest.raises(ValueError, match=r"expected \(B, 4\) embeddings, got shape \(2, 3\)"):
        SingleCenterLoss(4)(torch.zeros(2, 3), torch.tensor([1, 0]))
