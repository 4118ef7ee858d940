"""Auxiliary training losses for detectors with their own objective (``Detector.own_loss``).

``SingleCenterLoss`` is the Single-Center Loss of Li, Xie, Li, Wang and Zhang,
"Frequency-aware Discriminative Feature Learning Supervised by Single-Center
Loss for Face Forgery Detection" (CVPR 2021), used by WaveSpec (Jin, Lang and
Leng, ICASSP 2025).  One learned centre ``C``; bona fide ("natural") embeddings
are pulled towards it, spoof ("manipulated") ones pushed to be at least a margin
further away on average::

    M_nat = mean_{i bona fide} ||e_i - C||_2        M_man = mean_{i spoof} ||e_i - C||_2
    L_sc  = M_nat + lam * max(M_nat - M_man + margin * sqrt(D), 0)

Unlike a two-centre loss it never asks the (diverse, open-ended) spoof class to be
compact, which is why it suits unseen attacks.

**Defaults.**  ``margin = 0.3``: the SCL paper's margin m (also the default of the
public reimplementations we checked, e.g. DeepfakeBench-style FDFL code; the
sqrt(D) factor makes the margin scale with the typical distance between random
D-dimensional vectors).  ``lam = 1.0``: in the SCL paper the hinge enters L_sc
with weight 1 and the paper's lambda = 0.5 weights the whole L_sc against the
softmax loss (``L = L_softmax + 0.5 L_sc``); WaveSpec's issue text writes lambda
inside the hinge instead.  We keep the paper's structure: ``lam`` here scales the
hinge (1.0 = the paper), and the 0.5 belongs to the model's SCL weight in its
total loss.  (The paper PDF itself was not reachable from this workspace; these
values come from its equation as reproduced by public reimplementations.  Check
them against the paper before quoting them as the paper's.)

**Batches without one class.**  No bona fide item: ``M_nat`` is undefined and
there is nothing to pull, so the loss is 0 (kept in the graph, so DDP still sees
the centre used).  No spoof item: only the pull term ``M_nat`` remains (the
hinge needs both means).  In ``parts`` an absent class's mean reads 0.0, not NaN,
because the trainer averages parts over the epoch and one NaN would hide the rest
(with ordinary batch sizes both classes are almost always present).

**Centre.**  Initialised at zeros (deterministic, independent of the RNG) and
learned with the model's optimiser.  Distances use ``sqrt(max(|e - C|^2, 1e-12))``
so the gradient stays finite when an embedding sits exactly on the centre.

Target convention (the trainer's): 1 = bona fide, 0 = spoof.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SingleCenterLoss(nn.Module):
    def __init__(self, dim: int, lam: float = 1.0, margin: float = 0.3):
        super().__init__()
        if dim < 1:
            raise ValueError(f"SingleCenterLoss: dim={dim} must be positive")
        self.dim, self.lam, self.margin = dim, lam, margin
        self.center = nn.Parameter(torch.zeros(dim))

    def distances(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` -> ``(B,)`` Euclidean distances to the centre."""
        if embeddings.dim() != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"SingleCenterLoss: expected (B, {self.dim}) embeddings, "
                             f"got shape {tuple(embeddings.shape)}")
        squared = (embeddings - self.center.to(embeddings.dtype)).square().sum(dim=1)
        return squared.clamp_min(1e-12).sqrt()

    def forward(self, embeddings: torch.Tensor, target: torch.Tensor, *,
                return_parts: bool = False):
        """Scalar loss; with ``return_parts`` also ``{"m_nat", "m_man", "hinge"}`` detached
        (0.0 for a class absent from the batch)."""
        dist = self.distances(embeddings)
        bona = target.to(dist.device) == 1
        n_bona, n_spoof = int(bona.sum()), int((~bona).sum())
        m_nat = dist[bona].mean() if n_bona else dist.new_zeros(())
        m_man = dist[~bona].mean() if n_spoof else dist.new_zeros(())
        hinge = (m_nat - m_man + self.margin * math.sqrt(self.dim)).clamp_min(0) \
            if n_bona and n_spoof else dist.new_zeros(())
        if n_bona:
            loss = m_nat + self.lam * hinge
        else:  # nothing to pull: zero, but connected to the centre and the embeddings
            loss = 0.0 * dist.sum()
        if not return_parts:
            return loss
        return loss, {"m_nat": m_nat.detach(), "m_man": m_man.detach(), "hinge": hinge.detach()}
