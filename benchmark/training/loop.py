"""The training loop: weighted cross-entropy, Adam, dev EER every epoch,
atomic checkpoints, bit-exact resume and early stopping."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from benchmark.data import (
    BuiltDataset,
    class_counts,
    class_weight_tensor,
    class_weights_by_name,
    make_loader,
    split_scores,
)
from codecfake_build.atomic import atomic_write_text
from benchmark.training.checkpoint import (
    FORMAT,
    atomic_copy,
    atomic_save,
    capture_rng,
    epoch_path,
    load_checkpoint,
    prune_epoch_checkpoints,
    restore_rng,
)
from benchmark.training.config import TrainConfig
from benchmark.training.scoring import autocast_for, score_loader

log = logging.getLogger(__name__)

LOG_COLUMNS = ("epoch", "train_loss", "dev_eer", "lr", "seconds")


class TrainingError(RuntimeError):
    """A one-line problem that stops training."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' requested but CUDA is not available. Fix: set device: auto or cpu")
    return torch.device(name)


@dataclass
class _State:
    epoch: int = 0  # last completed epoch
    best_eer: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


def _cosine(total_steps: int, floor: float) -> Callable[[int], float]:
    def factor(step: int) -> float:
        progress = min(step, total_steps) / max(total_steps, 1)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _write_log(path: Path, history: list[dict[str, float]]) -> None:
    # Rewritten whole from the checkpointed history, so it never disagrees with last.pt after a crash.
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buf.getvalue())


def _check_classes(labels: np.ndarray, what: str, split: str) -> dict[str, int]:
    counts = class_counts(labels)
    empty = [k for k, v in counts.items() if v == 0]
    if empty:
        raise TrainingError(
            f"{what} split '{split}' has no {' and no '.join(empty)} rows ({counts}). "
            "Fix: check data filters (codec 'none' selects the bona-fide rows) or the split name"
        )
    return counts


def train(
    config: TrainConfig | str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``config.model`` on ``config.data`` and return the run summary
    (also written to ``out_dir/train_summary.json``).  ``config`` may be a YAML path.

    With ``resume`` (default) a run continues from ``out_dir/checkpoints/last.pt``
    and ends with the same weights as an uninterrupted run.  ``on_epoch_end``
    is called with each epoch's log row after its checkpoint is on disk.
    """
    from benchmark.metrics import compute_eer  # owned elsewhere; imported late so data-only users need not have it
    from benchmark.models import create_model

    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_yaml(config)
    started = time.perf_counter()
    out_dir = Path(config.out_dir)
    ckpt_dir = out_dir / "checkpoints"
    last_path = ckpt_dir / "last.pt"
    if last_path.exists() and not resume:
        raise TrainingError(
            f"{out_dir} already holds a training run ({last_path}). "
            "Fix: resume it, choose a new out_dir, or delete the old one"
        )
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    device = resolve_device(config.device)
    use_amp = config.amp and device.type == "cuda"
    if config.amp and not use_amp:
        log.warning("amp: true ignored: mixed precision is only used on CUDA (device is %s)", device)
    if config.deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    seed_everything(config.seed)

    d, o = config.data, config.optim
    filters = dict(codecs=d.codecs, languages=d.languages, corpora=d.corpora, cache_dir=d.cache_dir)
    train_src = BuiltDataset(d.dataset, d.train_split, **filters)
    dev_src = BuiltDataset(d.dataset, d.dev_split, **filters)
    counts = _check_classes(train_src.labels, "training", d.train_split)
    _check_classes(dev_src.labels, "dev", d.dev_split)

    model = create_model(config.model.name, **config.model.kwargs).to(device)
    num_samples = getattr(model, "num_samples", None)
    crop = getattr(model, "crop", "tile")
    loader_args = dict(batch_size=o.batch_size, num_samples=num_samples, crop=crop, max_samples=d.max_samples,
                       num_workers=o.num_workers, seed=config.seed, pin_memory=device.type == "cuda")
    train_loader = make_loader(train_src, train=True, **loader_args)
    dev_loader = make_loader(dev_src, train=False, **loader_args)
    if len(train_loader) == 0:
        raise TrainingError(f"training split '{d.train_split}' yields no batches. Fix: lower optim.batch_size")

    weights = class_weight_tensor(counts, o.class_weights)
    criterion = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    scheduler = None
    if o.scheduler == "cosine":
        floor = o.min_lr / o.lr if o.lr > 0 else 0.0
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(o.epochs * len(train_loader), floor))
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)

    state = _State()
    if resume and last_path.exists():
        ckpt = load_checkpoint(last_path)
        saved_model = ckpt["config"]["model"]
        if saved_model != {"name": config.model.name, "kwargs": config.model.kwargs}:
            raise TrainingError(
                f"{last_path} was trained with model {saved_model}, the config asks for "
                f"{config.model.name} {config.model.kwargs}. Fix: choose a new out_dir or restore the old model settings"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt["scheduler"] is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt["scaler"]:
            scaler.load_state_dict(ckpt["scaler"])
        state = _State(**ckpt["state"])
        restore_rng(ckpt["rng"], train_loader.generator)
        _write_log(out_dir / "train_log.csv", state.history)  # in case the crash hit between last.pt and the log
        log.info("resuming %s after epoch %d", out_dir, state.epoch)
    atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))

    def checkpoint(epoch: int, improved: bool) -> None:
        payload = {
            "format": FORMAT,
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if use_amp else None,
            "state": vars(state),
            "rng": capture_rng(train_loader.generator),
            "config": config.to_dict(),
        }
        path = epoch_path(ckpt_dir, epoch)
        atomic_save(payload, path)
        atomic_copy(path, last_path)
        if improved:
            atomic_copy(path, ckpt_dir / "best.pt")
        prune_epoch_checkpoints(ckpt_dir, config.keep_epoch_checkpoints)
        _write_log(out_dir / "train_log.csv", state.history)

    # A run that stopped early stays stopped when resumed; a finished one can be extended by raising epochs.
    first_epoch = o.epochs + 1 if state.stopped_early else state.epoch + 1
    epochs_bar = tqdm(range(first_epoch, o.epochs + 1), desc="epochs", initial=state.epoch, total=o.epochs,
                      disable=not progress, dynamic_ncols=True)
    for epoch in epochs_bar:
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss = _train_epoch(model, train_loader, criterion, optimizer, scheduler, scaler, device, use_amp,
                                  epoch, progress)
        _, scores, targets = score_loader(model, dev_loader, device, amp=use_amp, return_targets=True)
        eer, threshold = compute_eer(*split_scores(scores, targets))
        eer = float(eer)
        improved = eer < state.best_eer - config.early_stopping.min_delta
        if improved:
            state.best_eer, state.best_epoch, state.bad_epochs = eer, epoch, 0
        else:
            state.bad_epochs += 1
        patience = config.early_stopping.patience
        state.stopped_early = patience is not None and state.bad_epochs >= patience
        state.epoch = epoch
        row = {"epoch": epoch, "train_loss": train_loss, "dev_eer": eer, "lr": lr,
               "seconds": time.perf_counter() - t0, "dev_threshold": float(threshold)}
        state.history.append(row)
        checkpoint(epoch, improved)
        epochs_bar.set_postfix(loss=f"{train_loss:.4f}", dev_eer=f"{100 * eer:.2f}%",
                               best=f"{100 * state.best_eer:.2f}%@{state.best_epoch}")
        log.info("epoch %d: train_loss %.4f dev_eer %.4f", epoch, train_loss, eer)
        if on_epoch_end is not None:
            on_epoch_end(dict(row))
        if state.stopped_early:
            log.info("early stopping after epoch %d: no dev EER improvement for %d epochs", epoch, patience)
            break
    epochs_bar.close()

    summary = {
        "out_dir": str(out_dir),
        "model": config.model.name,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "device": str(device),
        "amp": use_amp,
        "epochs_completed": state.epoch,
        "epochs_max": o.epochs,
        "stopped_early": state.stopped_early,
        "best_epoch": state.best_epoch,
        "best_dev_eer": state.best_eer if math.isfinite(state.best_eer) else None,
        "best_dev_threshold": next((r["dev_threshold"] for r in state.history if r["epoch"] == state.best_epoch), None),
        "last_dev_eer": state.history[-1]["dev_eer"] if state.history else None,
        "train_rows": len(train_src),
        "dev_rows": len(dev_src),
        "class_counts": counts,
        "class_weights": None if weights is None else class_weights_by_name(weights),
        "checkpoints": {"best": str(ckpt_dir / "best.pt"), "last": str(last_path)},
        "seconds": time.perf_counter() - started,
    }
    atomic_write_text(out_dir / "train_summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _train_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    use_amp: bool,
    epoch: int,
    progress: bool,
) -> float:
    model.train()
    loader.dataset.set_epoch(epoch)
    total, seen = 0.0, 0
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress, dynamic_ncols=True)
    for step, batch in enumerate(bar):
        wave = batch.wave.to(device, non_blocking=True)
        target = batch.target.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with autocast_for(device, use_amp):
            logits = model(wave)
        # The loss runs in float32 even under autocast so class weights and log-softmax stay exact.
        loss = criterion(logits.float(), target)
        if not use_amp and not torch.isfinite(loss):
            raise TrainingError(
                f"training diverged at epoch {epoch}, step {step + 1} (loss {loss.item()}). Fix: lower optim.lr"
            )
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(batch)
        seen += len(batch)
        bar.set_postfix(loss=f"{total / seen:.4f}")
    return total / max(seen, 1)
