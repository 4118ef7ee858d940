"""Dump a detector's utterance embeddings for t-SNE/UMAP plots (``python -m benchmark embed``).

Models opt in with an ``embed(wave) -> (B, D)`` method (WaveSpec's embedding is
the one its Single-Center Loss shapes).  Audio is cut exactly as for scoring
(``make_loader`` evaluation cut: the model's ``num_samples`` and ``crop``).

The ``.npz`` holds (all plain arrays, loadable with ``allow_pickle=False``):

* ``embeddings``  float32 ``(N, D)``
* ``labels``      str ``(N,)``: ``bonafide``, ``spoof`` or ``unlabelled``
* ``conditions``  str ``(N,)``: the spoof item's attack/codec (``benchmark.data.system_names``),
  ``bonafide`` for bona fide items
* ``filenames``   str ``(N,)``: trial names, in the source's order
* ``model``, ``data``: 0-d str arrays naming the model and the data (plot titles)
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.data import TARGET_BONAFIDE, TARGET_SPOOF, AudioSource, make_loader, system_names
from codecfake_build.atomic import atomic_write_bytes

BONAFIDE = "bonafide"


def _model_name(model: nn.Module) -> str:
    return getattr(model, "registry_name", type(model).__name__)


def dump_embeddings(model: nn.Module, source: AudioSource, out_npz: str | Path, batch_size: int = 16,
                    device: str | torch.device = "cpu", *, data_name: str = "") -> Path:
    """Embed every item of ``source`` and write ``out_npz`` atomically; returns its path.
    (``benchmark.runs.evaluate_model`` writes the same file from its scoring pass.)"""
    name = _model_name(model)
    if not callable(getattr(model, "embed", None)):
        raise ValueError(f"model {name} has no embed(wave) method, so it has no embeddings to dump. "
                         "Fix: use a model that defines embed() (e.g. wavespec) or add one")
    device = torch.device(device)
    loader = make_loader(source, batch_size=batch_size, train=False,
                         num_samples=getattr(model, "num_samples", None), crop=getattr(model, "crop", "tile"))
    model.to(device).eval()
    chunks: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    loaded: list[str] = []
    with torch.inference_mode():
        for batch in loader:
            emb = model.embed(batch.wave.to(device))
            if emb.dim() != 2 or emb.shape[0] != len(batch):
                raise ValueError(f"model {name}: embed() returned shape {tuple(emb.shape)} for a batch of "
                                 f"{len(batch)}. Fix: return (batch, dim) embeddings")
            chunks.append(emb.float().cpu().numpy())
            targets.append(batch.target.numpy())
            loaded += batch.filenames
    return write_embeddings(out_npz, loaded, np.concatenate(chunks), np.concatenate(targets), source,
                            model=name, data_name=data_name)


def write_embeddings(out_npz: str | Path, loaded: list[str], embeddings: np.ndarray, target: np.ndarray,
                     source: AudioSource, *, model: str, data_name: str = "") -> Path:
    """Write the npz described above from rows in loader order (``loaded`` names them)."""
    # evaluation loaders may bucket by length: put rows back in the source's order
    position = {fname: i for i, fname in enumerate(loaded)}
    order = np.asarray([position[f] for f in source.filenames], dtype=np.int64)
    embeddings, target = embeddings[order], np.asarray(target)[order]
    labels = np.where(target == TARGET_BONAFIDE, BONAFIDE, np.where(target == TARGET_SPOOF, "spoof", "unlabelled"))
    conditions = np.asarray([BONAFIDE if lab == BONAFIDE else str(c) for lab, c in zip(labels, system_names(source))])
    buf = io.BytesIO()
    np.savez(buf, embeddings=embeddings.astype(np.float32), labels=labels.astype(str), conditions=conditions.astype(str),
             filenames=np.asarray(source.filenames, dtype=str), model=np.asarray(model),
             data=np.asarray(data_name or getattr(source, "name", "") or "data"))
    out = Path(out_npz)
    atomic_write_bytes(out, buf.getvalue())
    return out


def model_kwargs_for(checkpoint: str | Path, model: str) -> dict[str, Any]:
    """The constructor kwargs a training run recorded for ``checkpoint`` (``train_summary.json`` of
    ``<run>/checkpoints/best.pt``), e.g. WaveSpec's config or FD-ADD's ``systems``; {} if none."""
    ckpt = Path(checkpoint)
    for folder in (ckpt.parent, ckpt.parent.parent):
        summary = folder / "train_summary.json"
        if summary.is_file():
            record = json.loads(summary.read_text())
            if record.get("model") == model:
                return dict(record.get("model_kwargs") or {})
    return {}
