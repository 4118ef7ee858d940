"""RawNet2-Voc (Sun et al., "AI-Synthesized Voice Detection Using Neural Vocoder
Artifacts", CVPRW 2023; csun22/Synthetic-Voice-Detection-Vocoder-Artifacts): RawNet2
with a second head that names the vocoder, trained multi-task.  One of FD-ADD's
comparison models.

Facts from the official code (74b8527, ``model.py`` ``RawNet``, ``main.py``):

* The trunk is RawNet2 (sinc filters, six residual blocks with filter-wise scaling,
  3-layer GRU of 1024) unchanged: here ``benchmark.models.rawnet2``'s.
* Two heads read the GRU's last state, each ``Linear(1024, 1024) -> Linear(1024, C)``
  without a non-linearity in between (as RawNet2's): binary (C = 2, index 1 = real)
  and multi-class (C = 7 on LibriSeVoc: class 0 = real, then one per vocoder).  Here
  the multi-class head has ``1 + len(systems)`` outputs, the training set's spoof
  systems (``uses_systems``), class 0 = bona fide.  The binary head keeps RawNet2's
  module names (``fc1_gru``/``fc2_gru``); the auxiliary one has the official names
  (``fc1_multi_gru``/``fc2_multi_gru``).
* Loss: ``lambda * CE(binary) + (1 - lambda) * CE(vocoder id)`` with lambda = 0.5
  (``LAMDA``), i.e. CE + w * CE_voc with w = 1 and an overall factor 0.5.  Adam,
  lr 1e-4, weight decay 1e-4, batch 32.
* Input: the first 4 s of each clip, repeated when shorter, in training and test.
  The official code runs at LibriSeVoc's 24 kHz (96,000 samples, sinc filters at
  24 kHz); this project works at 16 kHz, so 4 s is 64,000 samples here.
  ``random_crop=True`` trains on random 4 s windows instead.

Scoring uses the binary head only: ``model(wave)`` returns its log-softmax.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.data.labels import system_class
from benchmark.data.loader import random_crop
from benchmark.models.base import MODELS
from benchmark.models.rawnet2 import RawNet2, RawNet2Config
from codecfake_build.audio import tile_to_length


@dataclass(frozen=True)
class RawNet2VocConfig(RawNet2Config):
    aux_lambda: float = 0.5     # weight of the binary loss; 1 - aux_lambda weighs the vocoder loss
    random_crop: bool = False   # official: always the first 4 s


@dataclass(frozen=True)
class VocoderLabel:
    """Training transform: the model's 4 s cut and the vocoder class (0 = bona fide,
    1 + index in ``systems`` for spoof items) as the ``vocoder`` extra."""

    num_samples: int
    systems: tuple = field(default_factory=tuple)
    random_crop: bool = False

    def __call__(self, wave: np.ndarray, rng: np.random.Generator, *, target: int,
                 system: str) -> tuple[np.ndarray, dict[str, int]]:
        label = system_class(target, system, self.systems, "rawnet2-voc")
        cut = random_crop(wave, self.num_samples, rng) if self.random_crop else tile_to_length(wave, self.num_samples)
        return cut, {"vocoder": label}


@MODELS.register("rawnet2-voc")
class RawNet2Voc(RawNet2):
    """``create_model("rawnet2-voc", systems=[...], **overrides)``: any ``RawNet2VocConfig`` field."""

    config = RawNet2VocConfig()
    num_samples = 64000
    own_loss = True
    uses_systems = True

    def __init__(self, systems: list[str] | tuple = (), **overrides):
        super().__init__(**overrides)
        if not 0.0 <= self.config.aux_lambda <= 1.0:
            raise ValueError(f"rawnet2-voc: aux_lambda must be in [0, 1], got {self.config.aux_lambda}")
        self.systems = [str(s) for s in systems]
        cfg = self.config
        self.fc1_multi_gru = nn.Linear(cfg.gru_node, cfg.nb_fc_node)
        self.fc2_multi_gru = nn.Linear(cfg.nb_fc_node, 1 + len(self.systems))

    def train_transform(self) -> VocoderLabel:
        return VocoderLabel(self.num_samples, tuple(self.systems), self.config.random_crop)

    def forward(self, wave: torch.Tensor, target: torch.Tensor | None = None,
                extras: dict[str, torch.Tensor] | None = None):
        h = self.embed(wave)
        binary = self.fc2_gru(self.fc1_gru(h))
        if target is None:
            return F.log_softmax(binary, dim=1)
        if extras is None or "vocoder" not in extras:
            raise ValueError("rawnet2-voc: training needs the 'vocoder' extra from its train_transform()")
        vocoder = self.fc2_multi_gru(self.fc1_multi_gru(h))
        lam = self.config.aux_lambda
        cls = lam * F.cross_entropy(binary.float(), target)
        voc = (1.0 - lam) * F.cross_entropy(vocoder.float(), extras["vocoder"].long())
        return cls + voc, {"binary": cls.detach(), "vocoder": voc.detach()}
