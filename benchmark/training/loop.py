"""The training loop: weighted cross-entropy, Adam, dev EER/AUC every epoch,
atomic checkpoints, bit-exact resume, early stopping, gradient accumulation,
mixed precision (fp16/bf16) on CUDA, CSV + TensorBoard logs, and multi-GPU
data parallelism under ``torchrun`` (NCCL on GPUs, gloo on CPU).  ``optim.sampling:
cotrain`` draws batches with fixed per-domain counts (CSAM, ``benchmark.data.cotrain``)
from a source that tags its items with domains (a protocol's resolved training set).

Distributed runs: every rank builds the same model and data from the same
seed, trains on its own shard of each epoch's global batch list (see
``TrainBatchSampler``), and DDP averages gradients.  Rank 0 alone scores the
dev set, writes checkpoints and logs, and broadcasts the early-stopping
decision, so the files on disk look exactly like a single-process run's.
"""

from __future__ import annotations

import csv
import io
import gc
import json
import logging
import math
import random
import time
from contextlib import nullcontext
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
    labels_to_targets,
    split_scores,
    system_names,
    TARGET_SPOOF,
)
from codecfake_build.atomic import atomic_write_text, remove_killed_writes
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
from benchmark.training.config import ConfigError, TrainConfig
from benchmark.training.sam import SAM, frozen_bn_stats, make_sam
from benchmark.training.scoring import autocast_for, score_loader

log = logging.getLogger(__name__)

LOG_COLUMNS = ("epoch", "train_loss", "dev_loss", "dev_eer", "dev_auc", "lr", "seconds")


class TrainingError(RuntimeError):
    """A one-line problem that stops training."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a ``torchrun`` job (world_size 1 outside one)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistEnv":
        import os

        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' requested but CUDA is not available. Fix: use device auto or cpu")
    return torch.device(name)


@dataclass
class _State:
    epoch: int = 0  # last completed epoch
    best_eer: float = math.inf
    best_auc: float = -math.inf
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    #: Training/dev files that could not be decoded and were left out: filename -> problem.
    skipped_files: dict[str, str] = field(default_factory=dict)


def _cosine(total_steps: int, floor: float) -> Callable[[int], float]:
    def factor(step: int) -> float:
        progress = min(step, total_steps) / max(total_steps, 1)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _write_log(path: Path, history: list[dict[str, float]]) -> None:
    # Rewritten whole from the checkpointed history, so it never disagrees with last.pt after a crash.
    buf = io.StringIO()
    parts = sorted({k for row in history for k in row if k.startswith("train_") and k not in LOG_COLUMNS})
    writer = csv.DictWriter(buf, fieldnames=[*LOG_COLUMNS, *parts], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buf.getvalue())


def dev_cross_entropy(scores: np.ndarray, targets: np.ndarray, weight: torch.Tensor | None) -> float:
    """The dev set's (class-weighted) cross-entropy, from scores alone: a two-class softmax
    depends only on the logit difference, which is the score (bona fide minus spoof), so
    logits [0, score] give exactly the loss of the model's own logits.  For own-loss models
    it is the cross-entropy of their scoring head."""
    s = torch.as_tensor(np.asarray(scores), dtype=torch.float64)
    logits = torch.stack([torch.zeros_like(s), s], dim=1)
    w = None if weight is None else weight.detach().to("cpu", torch.float64)
    return float(nn.functional.cross_entropy(logits, torch.as_tensor(np.asarray(targets), dtype=torch.int64), weight=w))


def _fill_systems(config: TrainConfig, train_src: Any) -> None:
    """Give a ``uses_systems`` model the sorted spoof system names of its training set
    (class 0 stays bona fide), unless the config names them; written into the config so
    config.yaml, resume checks and evaluation rebuild the same heads."""
    from benchmark.models import MODELS

    if not getattr(MODELS.get(config.model.name), "uses_systems", False) or "systems" in config.model.kwargs:
        return
    targets = labels_to_targets(train_src.labels)
    names = system_names(train_src)
    config.model.kwargs = {**config.model.kwargs,
                           "systems": sorted({n for n, t in zip(names, targets) if t == TARGET_SPOOF})}


def _cotrain_domains(config: TrainConfig, train_src: Any) -> np.ndarray | None:
    """Each training item's domain when ``optim.sampling`` is "cotrain" (else None)."""
    if config.optim.sampling != "cotrain":
        return None
    if not hasattr(train_src, "domains"):
        raise TrainingError(
            f"optim.sampling 'cotrain' needs training items tagged with their domain, and "
            f"{type(train_src).__name__} ({config.data.dataset}) has none. Fix: train through a protocol "
            "(run all, e.g. codecfake-training_co-trained: each train selection is one domain) or set "
            "optim.sampling: shuffle")
    domains = np.asarray(train_src.domains())
    names = sorted(set(domains.tolist()))
    if len(names) < 2:
        raise TrainingError(
            f"optim.sampling 'cotrain' needs at least two training domains, got {names}. Fix: train on a "
            "co-training protocol (two or more train selections, or `domain:` keys) or set optim.sampling: shuffle")
    return domains


def _check_model_options(config: TrainConfig, source: str) -> None:
    """One ConfigError line for an unknown model name or an option its constructor does not take."""
    import inspect

    from benchmark.models import MODELS
    from codecfake_build.registry import UnknownNameError

    try:
        cls = MODELS.get(config.model.name)
    except UnknownNameError as exc:
        raise ConfigError(f"{source}: key 'model.name': {exc}") from None
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # options checked when the model is built
    valid = [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in config.model.kwargs:
        if key not in valid:
            raise ConfigError(f"{source}: key 'model.kwargs.{key}': model {config.model.name} takes no option "
                              f"'{key}'. Valid options: {', '.join(valid) or '(none)'}")


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
    sources: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """Train ``config.model`` on ``config.data`` and return the run summary
    (also written to ``out_dir/train_summary.json``).  ``config`` may be a YAML path.

    With ``resume`` (default) a run continues from ``out_dir/checkpoints/last.pt``
    and ends with the same weights as an uninterrupted run.  ``on_epoch_end``
    is called with each epoch's log row after its checkpoint is on disk.
    ``sources`` = (train, dev) ``AudioSource``s replaces ``config.data``'s built dataset
    (``run all`` passes a protocol's resolved sets this way).
    """
    from benchmark.metrics import auc, compute_eer  # owned elsewhere; imported late so data-only users need not have it
    from benchmark.models import create_model

    source = "<config>" if isinstance(config, TrainConfig) else str(config)
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_yaml(config)
    _check_model_options(config, source)  # before any data is read: a typo should cost seconds, not a load
    started = time.perf_counter()
    out_dir = Path(config.out_dir)
    ckpt_dir = out_dir / "checkpoints"
    last_path = ckpt_dir / "last.pt"
    if last_path.exists() and not resume:
        raise TrainingError(
            f"{out_dir} already holds a training run ({last_path}). "
            "Fix: resume it, choose a new out_dir, or delete the old one"
        )

    dist_env = DistEnv.from_env()
    if dist_env.main:
        for folder in (out_dir, ckpt_dir):
            for stale in remove_killed_writes(folder):
                log.info("removed %s, left by a killed write", stale)
    try:
        device = resolve_device(config.device)
    except TrainingError as exc:
        raise TrainingError(f"{source}: key 'device': {exc}") from None
    if dist_env.world_size > 1:
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", dist_env.local_rank)
            torch.cuda.set_device(device)
        own_group = not dist.is_initialized()
        if own_group:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    amp_dtype = config.amp_dtype if device.type == "cuda" else None
    use_amp = amp_dtype is not None
    if config.amp_dtype and not use_amp:
        log.warning("amp: %s ignored: mixed precision is only used on CUDA (device is %s)", config.amp_dtype, device)
    if config.deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    seed_everything(config.seed)

    d, o = config.data, config.optim
    filters = dict(codecs=d.codecs, languages=d.languages, corpora=d.corpora, cache_dir=d.cache_dir)
    if sources is not None:
        train_src, dev_src = sources
    else:
        train_src = BuiltDataset(d.dataset, d.train_split, **filters)
        dev_src = BuiltDataset(d.dataset, d.dev_split, **filters)
    counts = _check_classes(train_src.labels, "training", d.train_split)
    _check_classes(dev_src.labels, "dev", d.dev_split)
    ckpt_dir.mkdir(parents=True, exist_ok=True)  # only now: a config whose data is missing leaves no run folder

    _fill_systems(config, train_src)
    try:
        model = create_model(config.model.name, **config.model.kwargs).to(device)
    except TypeError as exc:  # an option the signature check could not see (**kwargs, config dataclasses)
        if "keyword" not in str(exc) and "Valid options" not in str(exc):
            raise
        raise ConfigError(f"{source}: key 'model.kwargs': {str(exc).splitlines()[0]}. "
                          "Fix: remove or rename the option") from None
    num_samples = getattr(model, "num_samples", None)
    crop = getattr(model, "crop", "tile")
    own_loss = getattr(model, "own_loss", False)
    transform = model.train_transform() if hasattr(model, "train_transform") else None
    if transform is not None and o.train_crop != "random":
        log.warning("optim.train_crop: %s ignored: model %s cuts its training clips in its own transform",
                    o.train_crop, config.model.name)
    domains = _cotrain_domains(config, train_src)
    loader_args = dict(batch_size=o.batch_size, num_samples=num_samples, crop=crop, max_samples=d.max_samples,
                       num_workers=o.num_workers, seed=config.seed, pin_memory=device.type == "cuda")
    train_loader = make_loader(train_src, train=True, oversample=o.sampling == "oversample",
                               rank=dist_env.rank, world_size=dist_env.world_size, transform=transform,
                               train_crop=o.train_crop, domains=domains, **loader_args)
    dev_loader = make_loader(dev_src, train=False, **loader_args)
    if len(train_loader) == 0:
        raise TrainingError(f"training split '{d.train_split}' yields no batches. Fix: lower optim.batch_size")

    weights = class_weight_tensor(counts, o.class_weights)
    if own_loss and weights is not None:
        log.warning("optim.class_weights ignored: model %s computes its own loss", config.model.name)
        weights = None
    criterion = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
    sam = make_sam(o.sam, optimizer, o.sam_rho)  # None unless optim.sam is "sam"/"asam"
    steps_per_epoch = -(-len(train_loader) // o.grad_accum)
    scheduler, epoch_scheduler = None, None
    if o.scheduler == "cosine":
        floor = o.min_lr / o.lr if o.lr > 0 else 0.0
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(o.epochs * steps_per_epoch, floor))
    elif o.scheduler == "step":
        epoch_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=o.step_epochs, gamma=o.step_gamma)
    # bf16 has float32's exponent range, so only fp16 needs loss scaling.
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == "fp16")
    train_model: nn.Module = model
    if dist_env.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                              find_unused_parameters=getattr(model, "ddp_find_unused", False))

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
        if epoch_scheduler is not None and ckpt.get("epoch_scheduler") is not None:
            epoch_scheduler.load_state_dict(ckpt["epoch_scheduler"])
        if ckpt["scaler"]:
            scaler.load_state_dict(ckpt["scaler"])
        state = _State(**ckpt["state"])
        if state.epoch > o.epochs:
            # Training nothing and then rewriting config.yaml with the lower count would label a
            # model trained for state.epoch epochs as an o.epochs one (run JSONs copy the config).
            raise TrainingError(
                f"{last_path} has {state.epoch} epochs done, the config asks for optim.epochs {o.epochs}. "
                f"Fix: set optim.epochs to {state.epoch} or more to resume, or choose a new out_dir"
            )
        restore_rng(ckpt["rng"], train_loader.generator)
        if dist_env.main:
            _write_log(out_dir / "train_log.csv", state.history)  # in case the crash hit between last.pt and the log
        log.info("resuming %s after epoch %d", out_dir, state.epoch)
    if dist_env.main:
        atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    board = _tensorboard(out_dir, config.tensorboard and dist_env.main, first_epoch=state.epoch + 1)

    def checkpoint(epoch: int, improved: bool) -> None:
        payload = {
            "format": FORMAT,
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "epoch_scheduler": epoch_scheduler.state_dict() if epoch_scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "state": vars(state),
            "rng": capture_rng(train_loader.generator),
            "config": config.to_dict(),
        }
        path = epoch_path(ckpt_dir, epoch)
        atomic_save(payload, path)
        # best.pt before last.pt: once last.pt says "epoch done" a resume never redoes the epoch,
        # so a kill between the two copies must not leave best.pt an epoch behind.
        if improved:
            atomic_copy(path, ckpt_dir / "best.pt")
        atomic_copy(path, last_path)
        prune_epoch_checkpoints(ckpt_dir, config.keep_epoch_checkpoints)
        _write_log(out_dir / "train_log.csv", state.history)

    # A run that stopped early stays stopped when resumed; a finished one can be extended by raising epochs.
    first_epoch = o.epochs + 1 if state.stopped_early else state.epoch + 1
    epochs_bar = tqdm(range(first_epoch, o.epochs + 1), desc="epochs", initial=state.epoch, total=o.epochs,
                      disable=not (progress and dist_env.main), dynamic_ncols=True)
    for epoch in epochs_bar:
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss, loss_parts = _train_epoch(train_model, train_loader, criterion, optimizer, scheduler, scaler,
                                              device, amp_dtype, o.grad_accum, epoch, progress and dist_env.main,
                                              sam=sam, own_loss=own_loss, skipped=state.skipped_files)
        if dist_env.world_size > 1:
            state.skipped_files = _gather_skipped(state.skipped_files)
        if epoch_scheduler is not None:
            epoch_scheduler.step()
        row: dict[str, Any] = {}
        if dist_env.main:
            dev_skipped: dict[str, str] = {}
            _, scores, targets = score_loader(model, dev_loader, device, amp=use_amp, amp_dtype=amp_dtype,
                                              return_targets=True, skipped_out=dev_skipped)
            _note_skipped(dev_skipped, state.skipped_files)
            bona_scores, spoof_scores = split_scores(scores, targets)
            if len(bona_scores) == 0 or len(spoof_scores) == 0:
                raise TrainingError(
                    f"dev split '{d.dev_split}': no decodable {'bona fide' if len(bona_scores) == 0 else 'spoof'} "
                    f"file left ({len(dev_skipped)} skipped, first: {next(iter(dev_skipped.items()), '-')}). "
                    "Fix: repair or rebuild the dev data")
            eer, threshold = compute_eer(bona_scores, spoof_scores)
            dev_auc = auc(bona_scores, spoof_scores)
            dev_loss = dev_cross_entropy(scores, targets, criterion.weight)
            on, delta = config.early_stopping.on, config.early_stopping.min_delta
            improved = {"dev_auc": dev_auc > state.best_auc + delta, "dev_eer": float(eer) < state.best_eer - delta,
                        "dev_loss": dev_loss < state.best_loss - delta}[on]
            if improved:
                state.best_eer, state.best_auc, state.best_loss = float(eer), dev_auc, dev_loss
                state.best_epoch, state.bad_epochs = epoch, 0
            else:
                state.bad_epochs += 1
            patience = config.early_stopping.patience
            state.stopped_early = patience is not None and state.bad_epochs >= patience
            state.epoch = epoch
            row = {"epoch": epoch, "train_loss": train_loss, "dev_loss": dev_loss, "dev_eer": float(eer),
                   "dev_auc": dev_auc, "lr": lr,
                   "seconds": time.perf_counter() - t0, "dev_threshold": float(threshold),
                   **{f"train_{k}": v for k, v in loss_parts.items()}}
            state.history.append(row)
            # Events before the checkpoint: a kill in between leaves this epoch's events without
            # its checkpoint, and the resumed writer's purge_step hides them when it is redone.
            if board is not None:
                for key in ("train_loss", "dev_loss", "dev_eer", "dev_auc", "lr", *(f"train_{k}" for k in loss_parts)):
                    board.add_scalar(key, row[key], epoch)
                board.flush()
            checkpoint(epoch, improved)
            epochs_bar.set_postfix(loss=f"{train_loss:.4f}", dev_eer=f"{100 * eer:.2f}%",
                                   best=f"{100 * state.best_eer:.2f}%@{state.best_epoch}")
            log.info("epoch %d: train_loss %.4f dev_eer %.4f dev_auc %.4f", epoch, train_loss, eer, dev_auc)
        if dist_env.world_size > 1:
            state = _broadcast_state(state)
        if on_epoch_end is not None and dist_env.main:
            on_epoch_end(dict(row))
        if state.stopped_early:
            log.info("early stopping after epoch %d: no dev improvement for %d epochs", epoch,
                     config.early_stopping.patience)
            break
    epochs_bar.close()
    if board is not None:
        board.close()
    replicas_in_sync = _replicas_in_sync(model) if dist_env.world_size > 1 else True

    summary = {
        "out_dir": str(out_dir),
        "model": config.model.name,
        "model_kwargs": config.model.kwargs,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "device": str(device),
        "amp": amp_dtype or False,
        "world_size": dist_env.world_size,
        "replicas_in_sync": replicas_in_sync,
        "grad_accum": o.grad_accum,
        "effective_batch_size": o.batch_size * o.grad_accum * dist_env.world_size,
        "sampling": o.sampling,
        "train_crop": o.train_crop,
        "cotrain_slots": getattr(train_loader.batch_sampler, "slots_by_domain", None),
        "early_stopping_on": config.early_stopping.on,
        "epochs_completed": state.epoch,
        "epochs_max": o.epochs,
        "stopped_early": state.stopped_early,
        "best_epoch": state.best_epoch,
        "best_dev_eer": state.best_eer if math.isfinite(state.best_eer) else None,
        "best_dev_auc": state.best_auc if math.isfinite(state.best_auc) else None,
        "best_dev_loss": state.best_loss if math.isfinite(state.best_loss) else None,
        "best_dev_threshold": next((r["dev_threshold"] for r in state.history if r["epoch"] == state.best_epoch), None),
        "last_dev_eer": state.history[-1]["dev_eer"] if state.history else None,
        "train_rows": len(train_src),
        "dev_rows": len(dev_src),
        "class_counts": counts,
        "class_weights": None if weights is None else class_weights_by_name(weights),
        # Files left out because they could not be decoded (each logged once when first met).
        "skipped_files": len(state.skipped_files),
        "skipped_examples": dict(list(state.skipped_files.items())[:20]),
        "checkpoints": {"best": str(ckpt_dir / "best.pt"), "last": str(last_path)},
        "seconds": time.perf_counter() - started,
    }
    if dist_env.main:
        atomic_write_text(out_dir / "train_summary.json", json.dumps(summary, indent=2) + "\n")
    if dist_env.world_size > 1 and own_group:
        # Tear the group down before the interpreter exits: gloo's worker threads die with a
        # C++ abort otherwise ("terminate called without an active exception") on the rank that
        # leaves first.  The barrier also keeps ranks alive until rank 0 has written its files.
        # DDP's reducer holds pending gloo work (with tensors); drop it while the interpreter
        # is fully alive, not during finalisation (pytorch/pytorch PR 179291 describes the abort).
        del train_model
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
    return summary


def _tensorboard(out_dir: Path, wanted: bool, first_epoch: int = 1) -> Any:
    """The run's TensorBoard writer.  A resumed run (after kill -9, say) appends a new events
    file; ``purge_step`` tells TensorBoard to drop the old files' events from ``first_epoch``
    on, so an epoch logged but not checkpointed before the crash is not shown twice."""
    if not wanted:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed: logging to train_log.csv only. "
                    "Fix: pip install tensorboard, or set tensorboard: false")
        return None
    return SummaryWriter(log_dir=str(out_dir / "tensorboard"), purge_step=first_epoch)


def _broadcast_state(state: _State) -> _State:
    """Rank 0's epoch state (dev results, early stopping) on every rank."""
    import torch.distributed as dist

    box = [vars(state) if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return _State(**box[0])


def _replicas_in_sync(model: nn.Module) -> bool:
    """True if every rank holds bit-identical parameters (what DDP promises)."""
    import torch.distributed as dist

    flat = torch.cat([p.detach().reshape(-1).float().cpu() for p in model.parameters()])
    mine = float(flat.double().sum()), float((flat.double() ** 2).sum()), flat[:16].tolist()
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    return all(x == everyone[0] for x in everyone)


def _loss(model: nn.Module, criterion: nn.Module, batch: Any, wave: torch.Tensor, target: torch.Tensor,
          device: torch.device, amp_dtype: str | None, own_loss: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss of one batch and its named parts (empty for plain cross-entropy)."""
    with autocast_for(device, amp_dtype is not None, amp_dtype):
        if own_loss:
            extras = {k: v.to(device, non_blocking=True) for k, v in batch.extras.items()}
            loss, parts = model(wave, target=target, extras=extras)
            return loss.float(), parts
        logits = model(wave)
    # The loss runs in float32 even under autocast so class weights and log-softmax stay exact.
    return criterion(logits.float(), target), {}


def _train_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    amp_dtype: str | None,
    grad_accum: int,
    epoch: int,
    progress: bool,
    sam: SAM | None = None,
    own_loss: bool = False,
    skipped: dict[str, str] | None = None,
) -> tuple[float, dict[str, float]]:
    """One epoch; returns the mean loss and the mean of each named loss part.  Undecodable
    items are left out of their batch and added to ``skipped`` (filename -> problem)."""
    skipped = {} if skipped is None else skipped
    model.train()
    loader.dataset.set_epoch(epoch)
    total, seen = 0.0, 0
    part_sums: dict[str, float] = {}
    n_batches = len(loader)
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress, dynamic_ncols=True)
    optimizer.zero_grad(set_to_none=True)
    ddp = hasattr(model, "no_sync")
    replay = None  # DDP: this rank's last decodable batch, the stand-in for an all-skipped one
    for step, batch in enumerate(bar):
        _note_skipped(batch.skipped, skipped)
        stand_in = len(batch) == 0
        if stand_in and not ddp:
            _empty_batch(optimizer, scheduler, scaler, sam, step, n_batches, grad_accum)
            continue
        if stand_in:
            # The other ranks wait in this step's all-reduce (and DDP's forward-time collectives),
            # so this rank still runs a forward/backward, on a batch it has seen, with the loss
            # times zero: it adds nothing to the averaged gradient and leaves BatchNorm as it was.
            batch = replay
        elif ddp:
            replay = batch
        wave = None if batch is None else batch.wave.to(device, non_blocking=True)
        target = None if batch is None else batch.target.to(device, non_blocking=True)

        def compute() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            if stand_in:
                return _zero_loss(model, criterion, batch, wave, target, device, amp_dtype, own_loss)
            return _loss(model, criterion, batch, wave, target, device, amp_dtype, own_loss)

        # A stand-in pass leaves BatchNorm's running statistics as they were (restored after its
        # backward: batch_norm's backward reads the buffers, so they may not change before it).
        keep_bn = frozen_bn_stats(model) if stand_in else nullcontext()
        if sam is not None:
            with keep_bn:
                loss, parts = _sam_step(model, sam, compute, scaler, epoch, step)
            if scheduler is not None:
                scheduler.step()
        else:
            # The last group of an epoch may be short; scale by its real size so every
            # optimizer step averages the gradients of the micro-batches it holds.
            group, boundary = _accumulation_group(step, grad_accum, n_batches)
            # DDP all-reduces on every backward unless told not to; between steps that is wasted traffic.
            sync = model.no_sync() if (ddp and not boundary) else nullcontext()
            with sync, keep_bn:
                loss, parts = compute()
                _check_finite(loss, scaler, epoch, step, "")
                scaler.scale(loss / group).backward()
            if boundary:
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if scheduler is not None:
                    scheduler.step()
        if stand_in:
            continue
        total += loss.item() * len(batch)
        for name, value in parts.items():
            part_sums[name] = part_sums.get(name, 0.0) + float(value) * len(batch)
        seen += len(batch)
        bar.set_postfix(loss=f"{total / seen:.4f}")
    if ddp:
        total, seen, part_sums = _sum_over_ranks(total, seen, part_sums)
    if seen == 0:
        raise TrainingError(f"epoch {epoch}: no training file could be decoded ({len(skipped)} skipped, first: "
                            f"{next(iter(skipped.items()), '-')}). Fix: repair or rebuild the training data")
    return total / seen, {name: value / seen for name, value in part_sums.items()}


def _accumulation_group(step: int, grad_accum: int, n_batches: int) -> tuple[int, bool]:
    """(micro-batches in ``step``'s accumulation group, whether ``step`` closes it)."""
    group_start = step - step % grad_accum
    group = min(grad_accum, n_batches - group_start)
    return group, step == group_start + group - 1


def _note_skipped(new: dict[str, str], seen: dict[str, str]) -> None:
    """Add undecodable files to ``seen``, logging each one the first time (not every epoch)."""
    for name, problem in new.items():
        if name not in seen:
            log.warning("skipping %s: %s (counted in train_summary.json 'skipped_files')", name, problem)
            seen[name] = problem


def _empty_batch(optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler,
                 sam: SAM | None, step: int, n_batches: int, grad_accum: int) -> None:
    """A batch whose every item failed to decode (single process; under DDP ``_zero_loss``
    stands in): no forward pass, but the optimizer step that closes an accumulation group and
    the LR schedule go on, so the run stays on its schedule."""
    if sam is not None or _accumulation_group(step, grad_accum, n_batches)[1]:
        if sam is None and any(p.grad is not None for g in optimizer.param_groups for p in g["params"]):
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
        if scheduler is not None:
            scheduler.step()


def _zero_loss(model: nn.Module, criterion: nn.Module, batch: Any, wave: torch.Tensor | None,
               target: torch.Tensor | None, device: torch.device, amp_dtype: str | None,
               own_loss: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A zero loss that still runs the (DDP) model forward and backward, for a rank whose
    batch was all skipped: the replayed ``batch`` keeps the forward finite (zero times a
    finite gradient is exactly zero); before any batch decoded, quiet noise through the
    scoring forward stands in, with every trainable parameter added to the (zeroed) loss."""
    if batch is not None:
        loss, _ = _loss(model, criterion, batch, wave, target, device, amp_dtype, own_loss)
    else:
        inner = getattr(model, "module", model)
        length = getattr(inner, "num_samples", None) or 16000
        noise = 1e-3 * torch.randn(1, length, generator=torch.Generator().manual_seed(0))
        with autocast_for(device, amp_dtype is not None, amp_dtype):
            loss = model(noise.to(device)).float().sum()
        # Every trainable parameter joins the backward: the scoring forward alone leaves out heads that
        # only a model's own loss uses, whose missing gradients DDP (without find_unused) would reject.
        loss = loss + sum(p.float().sum() for p in model.parameters() if p.requires_grad)
    return loss * 0.0, {}


def _sum_over_ranks(total: float, seen: int, part_sums: dict[str, float]) -> tuple[float, int, dict[str, float]]:
    """The epoch's loss sums over every rank: the logged train loss is the mean over all items, and
    a rank that decoded nothing all epoch goes on (or every rank stops together) instead of raising
    alone and leaving the others in a collective."""
    import torch.distributed as dist

    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, (total, seen, part_sums))
    parts: dict[str, float] = {}
    for _, _, mine in everyone:
        for name, value in mine.items():
            parts[name] = parts.get(name, 0.0) + value
    return sum(t for t, _, _ in everyone), sum(n for _, n, _ in everyone), parts


def _gather_skipped(mine: dict[str, str]) -> dict[str, str]:
    """Every rank's undecodable files, merged, so rank 0's summary counts them all."""
    import torch.distributed as dist

    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    return {k: v for part in everyone for k, v in sorted(part.items())}


def _check_finite(loss: torch.Tensor, scaler: torch.amp.GradScaler, epoch: int, step: int, also: str) -> None:
    # With fp16 loss scaling an inf step is expected now and then; the scaler skips it.
    if not torch.isfinite(loss) and not scaler.is_enabled():
        raise TrainingError(f"training diverged at epoch {epoch}, step {step + 1} (loss {loss.item()}). "
                            f"Fix: lower optim.lr{also}")


def _sam_step(model: nn.Module, sam: SAM, compute: Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]],
              scaler: torch.amp.GradScaler, epoch: int, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One SAM/ASAM step (see ``benchmark.training.sam``); returns the loss and its parts at w."""
    loss, parts = compute()
    _check_finite(loss, scaler, epoch, step, " or optim.sam_rho")
    scaler.scale(loss).backward()  # e = rho g/||g|| is invariant to the loss scale
    sam.first_step(zero_grad=True)
    with frozen_bn_stats(model):
        scaler.scale(compute()[0]).backward()
    sam.second_step(zero_grad=True, scaler=scaler)
    return loss.detach(), parts
