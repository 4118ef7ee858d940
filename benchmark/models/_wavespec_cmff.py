"""WaveSpec's Cross-Modal Feature Fusion (CMFF): align an SSL map and a CQT U-Net map of one
scale onto one ``(B, dim, frames)`` grid, then fuse them.

Alignment
* Channels/frequency: the SSL map ``(B, hidden, frames)`` goes through a per-frame linear
  projection to ``dim``; the U-Net map ``(B, width, bins', frames')`` is flattened over
  (width, bins') (``freq_reduce="flatten"``, default: keeps where in frequency an artefact
  sits, which spectral detectors rely on) or averaged over bins' (``"mean"``: fewer
  parameters), then projected to ``dim`` the same way.  Each projection ends in
  BatchNorm + ReLU so both modalities enter the fusion on a comparable scale.
* Time: a U-Net map at stride ``s`` (1, 2, 4 input frames per frame, from 2x2 average
  pools) is brought back to the input frame grid by linear interpolation with the exact
  factor ``s`` (``align_corners=False``), which maps output frame ``j`` onto the pooled
  coordinate whose centre is input frame ``j``; the end is cropped or edge-padded to the
  SSL frame count.  The input grid itself is aligned with the SSL frames by the model
  (``benchmark.models.wavespec``: the CQT is taken from a waveform shifted by the
  SSL frame-centre offset).

Fusion (``cmff``)
* ``"mscam"`` (default): attentional feature fusion with a multi-scale channel attention
  module (Dai et al., "Attentional Feature Fusion", WACV 2021) along time:
  ``m = sigmoid(L(a + s) + G(a + s))``, ``z = m * a + (1 - m) * s``; ``L`` is a per-frame
  bottleneck MLP (1x1 convs, reduction ``r``, BatchNorm), ``G`` the same on the
  time-averaged vector.  It is cheap and learns per channel and frame which modality to
  trust.  Deviation: ``G`` has no BatchNorm so that batches of one still train.
* ``"xattn"``: bidirectional cross-attention over the aligned time axis (each modality's
  frames query the other's), ``z = (a + attn(a <- s) + s + attn(s <- a)) / 2``; pre-norm
  LayerNorm, ``heads`` heads.  It can match events that are not frame-synchronous
  (e.g. the CQT's long low-frequency kernels) at quadratic cost in frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models._wavespec_unet import fit_last_axes


def _project(in_dim: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(in_dim, dim, 1, bias=False), nn.BatchNorm1d(dim), nn.ReLU(inplace=True))


class SSLAlign(nn.Module):
    """``(B, hidden, frames)`` -> ``(B, dim, frames)``."""

    def __init__(self, hidden: int, dim: int):
        super().__init__()
        self.proj = _project(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class CQTAlign(nn.Module):
    """``(B, width, bins', frames / stride)`` -> ``(B, dim, frames)`` on the input frame grid."""

    def __init__(self, width: int, bins: int, dim: int, stride: int, freq_reduce: str = "flatten"):
        super().__init__()
        if freq_reduce not in ("flatten", "mean"):
            raise ValueError(f"freq_reduce must be 'flatten' or 'mean', got {freq_reduce!r}")
        self.stride, self.freq_reduce, self.bins = stride, freq_reduce, bins
        self.proj = _project(width * bins if freq_reduce == "flatten" else width, dim)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        if self.freq_reduce == "flatten":
            if x.shape[2] != self.bins:
                raise ValueError(f"CQT map has {x.shape[2]} bins at this scale, the projection was built for "
                                 f"{self.bins}. Fix: keep cqt n_bins as configured")
            x = x.flatten(1, 2)
        else:
            x = x.mean(dim=2)
        x = self.proj(x)
        if self.stride > 1:
            x = F.interpolate(x, scale_factor=float(self.stride), mode="linear", align_corners=False,
                              recompute_scale_factor=False)
        return fit_last_axes(x, (frames,))


class MSCAMFusion(nn.Module):
    def __init__(self, dim: int, reduction: int = 4):
        super().__init__()
        mid = max(1, dim // reduction)
        self.local = nn.Sequential(nn.Conv1d(dim, mid, 1), nn.BatchNorm1d(mid), nn.ReLU(inplace=True),
                                   nn.Conv1d(mid, dim, 1), nn.BatchNorm1d(dim))
        self.glob = nn.Sequential(nn.Conv1d(dim, mid, 1), nn.ReLU(inplace=True), nn.Conv1d(mid, dim, 1))

    def forward(self, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        both = a + s
        m = torch.sigmoid(self.local(both) + self.glob(both.mean(dim=-1, keepdim=True)))
        return m * a + (1.0 - m) * s


class CrossAttentionFusion(nn.Module):
    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"cmff xattn: fusion_dim {dim} is not divisible by xattn_heads {heads}. "
                             "Fix: choose xattn_heads dividing fusion_dim")
        self.norm_a, self.norm_s = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.a_from_s = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.s_from_a = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        at, st = self.norm_a(a.transpose(1, 2)), self.norm_s(s.transpose(1, 2))  # (B, frames, dim)
        a2, _ = self.a_from_s(at, st, st, need_weights=False)
        s2, _ = self.s_from_a(st, at, at, need_weights=False)
        return 0.5 * (a + s + (a2 + s2).transpose(1, 2))


def make_fusion(form: str, dim: int, reduction: int, heads: int) -> nn.Module:
    if form == "mscam":
        return MSCAMFusion(dim, reduction)
    if form == "xattn":
        return CrossAttentionFusion(dim, heads)
    raise ValueError(f"cmff must be 'mscam' or 'xattn', got {form!r}")
