#!/usr/bin/env python
"""Training and scoring throughput of every recipe (configs/recipes/), in utterances per second,
for the cost estimates of ``python -m benchmark run all --dry-run``.

Each recipe's model is built with its real architecture and random weights (no download):
released-checkpoint initialisations (Wav2CLIP, AudioCLIP) are switched off, and SSL front-ends
(XLS-R 300M, WavLM-large, wav2vec 2.0-base, WavLM-base) are built from the official model shapes
with random weights.  A training step is the trainer's own step (``benchmark.training.loop``'s
loss, SAM/ASAM double step where the recipe asks for it, Adam): forward, backward, step on the
recipe's clip length (``model.num_samples``, 4 s when the model takes any length).  Model-specific
training labels (FD-ADD's pseudo-labels, RawNet2-Voc's vocoder class) come from the model's own
``train_transform()`` run once per item before timing, as the loader workers would.  Adam steps
after every batch (a recipe's ``grad_accum`` only makes it step less often, which costs less);
data loading is not timed.

Frozen-SSL recipes with a feature cache are timed twice: the first epoch (SSL forward + cache
write on unseen clips) and the cached epochs (the same clips again: cache reads).  Scoring is
``model.score`` under ``torch.no_grad`` on unseen clips (and, for cached recipes, seen ones).

Per recipe: ``--warmup`` untimed steps, then ``--steps`` timed steps; the median step counts.
On CPU the batch is capped (``--max-batch``, ``--max-batch-ssl`` for SSL recipes): utterances/s
at a smaller batch is what is recorded, with the batch used.  The JSON keeps the load average
before and after (other processes slow a shared machine down; the numbers are then lower bounds).

examples:
  .venv/bin/python benchmarks/train_throughput.py                                # every recipe, CPU
  .venv/bin/python benchmarks/train_throughput.py --recipes 'aasist*,lcnn'       # some recipes
  .venv/bin/python benchmarks/train_throughput.py --models w2v2-aasist           # recipes of one model
  .venv/bin/python benchmarks/train_throughput.py --device cuda --steps 5        # the recipe batches
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.codec_throughput import device_name, git_state, write_results  # noqa: E402

SCHEMA = "codecfake-bench/train-throughput/1"
#: Clip length for models that take any length (4 s at 16 kHz).
DEFAULT_SAMPLES = 64000
#: Spoof systems handed to ``uses_systems`` models (FD-ADD's setting: 8 synthesizers + real).
SYSTEMS = tuple(f"system{i}" for i in range(8))

def ssl_frontends(model: torch.nn.Module) -> list[Any]:
    from benchmark.frontends.ssl import SSLFrontend

    return [m for m in model.modules() if isinstance(m, SSLFrontend)]


# ---- building a recipe's model -------------------------------------------------------------------


def measured_kwargs(model_name: str, kwargs: dict[str, Any], cache_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The recipe's model kwargs with released-weight loading off and the feature cache in a
    scratch folder; returns them and notes saying what was changed."""
    from benchmark.models import MODELS

    cls = MODELS.get(model_name)
    out, notes = dict(kwargs), []
    if out.get("wav2clip_init"):
        out["wav2clip_init"] = False
        notes.append("wav2clip_init off (same architecture, random weights)")
    config = getattr(cls, "config", None)
    if dataclasses.is_dataclass(config) and "pretrained" in {f.name for f in dataclasses.fields(config)} \
            and out.get("pretrained", getattr(config, "pretrained")):
        out["pretrained"] = False
        notes.append("pretrained off (same architecture, random weights)")
    if out.get("feature_cache"):
        out["feature_cache"] = str(cache_dir)
        notes.append("feature cache in a scratch folder")
    if getattr(cls, "uses_systems", False) and "systems" not in out:
        out["systems"] = list(SYSTEMS)
        notes.append(f"{len(SYSTEMS)} spoof systems")
    return out, notes


def make_batches(model: torch.nn.Module, n: int, batch: int, num_samples: int, seed: int) -> list[tuple]:
    """``n`` batches of distinct random clips, half bona fide (target 1), with the extras the
    model's own ``train_transform`` gives each item (untimed, like loader workers)."""
    rng = np.random.default_rng(seed)
    transform = model.train_transform() if hasattr(model, "train_transform") else None
    systems = list(getattr(model, "systems", None) or SYSTEMS)
    out = []
    for b in range(n):
        waves, extras = [], []
        target = (np.arange(batch) + b) % 2
        for i in range(batch):
            clip = (rng.standard_normal(num_samples) * 0.1).astype(np.float32)
            if transform is not None:
                # Bona fide items carry the built datasets' codec name "none".
                system = "none" if target[i] == 1 else systems[i % len(systems)]
                clip, extra = transform(clip, rng, target=int(target[i]), system=system)
                extras.append(extra)
            waves.append(np.asarray(clip, dtype=np.float32)[:num_samples])
        stacked = {k: torch.as_tensor(np.stack([np.asarray(e[k]) for e in extras])) for k in (extras[0] if extras else {})}
        out.append((torch.from_numpy(np.stack(waves)), torch.as_tensor(target, dtype=torch.long), stacked))
    return out


# ---- timing ----------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stepper:
    """One training step exactly as ``benchmark.training.loop`` takes it (loss, SAM or plain step)."""

    def __init__(self, model: torch.nn.Module, config: Any, device: torch.device):
        from benchmark.training.sam import make_sam

        o = config.optim
        self.model, self.device = model, device
        self.own_loss = bool(getattr(model, "own_loss", False))
        # AMP as the trainer uses it: the recipe's dtype, on CUDA only.
        self.amp_dtype = config.amp_dtype if device.type == "cuda" else None
        weights = o.class_weights
        weight = torch.tensor(weights, dtype=torch.float32, device=device) \
            if isinstance(weights, (list, tuple)) and not self.own_loss else None
        # "balanced" weights depend on the data; any weight costs the same, so plain CE stands in.
        self.criterion = torch.nn.CrossEntropyLoss(weight=weight)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=o.lr, betas=tuple(o.betas),
                                          weight_decay=o.weight_decay)
        self.sam = make_sam(o.sam, self.optimizer, o.sam_rho)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == "fp16")

    def train_step(self, batch: tuple) -> float:
        from benchmark.training.loop import _loss, _sam_step

        wave, target, extras = (batch[0].to(self.device), batch[1].to(self.device), batch[2])
        holder = SimpleNamespace(extras=extras)

        def compute() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            return _loss(self.model, self.criterion, holder, wave, target, self.device, self.amp_dtype, self.own_loss)

        self.model.train()
        _sync(self.device)
        t0 = time.perf_counter()
        if self.sam is not None:
            _sam_step(self.model, self.sam, compute, self.scaler, 1, 0)
        else:
            loss, _ = compute()
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
        _sync(self.device)
        return time.perf_counter() - t0

    def score_step(self, batch: tuple) -> float:
        from benchmark.training.scoring import autocast_for

        self.model.eval()
        wave = batch[0].to(self.device)
        _sync(self.device)
        t0 = time.perf_counter()
        with torch.no_grad(), autocast_for(self.device, self.amp_dtype is not None, self.amp_dtype):
            self.model.score(wave)
        _sync(self.device)
        return time.perf_counter() - t0


def _rate(seconds: list[float], batch: int) -> float:
    return round(batch / statistics.median(seconds), 4)


def bench_recipe(recipe: Any, args: argparse.Namespace, device: torch.device, scratch: Path) -> dict[str, Any]:
    from benchmark.frontends.ssl import random_weights
    from benchmark.models import create_model

    train = recipe.train
    name = train["model"]["name"]
    kwargs, notes = measured_kwargs(name, dict(train["model"].get("kwargs") or {}), scratch / recipe.name)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with random_weights():  # official SSL architectures, seeded random weights, no download
        model = create_model(name, **kwargs).to(device)
        fronts = ssl_frontends(model)
        for fe in fronts:
            fe.ssl_model  # noqa: B018  (a frozen front-end loads lazily: build it outside the timing)
    cached = any(fe._frozen is not None and fe.cache_dir is not None for fe in fronts)
    config = recipe.train_config(scratch / recipe.name / "run", seed=0, data_label="train-throughput")
    recipe_batch = config.optim.batch_size
    cap = args.max_batch_ssl if fronts else args.max_batch
    batch = min(recipe_batch, cap) if cap else recipe_batch
    steps = args.steps_ssl if fronts and args.steps_ssl else args.steps
    num_samples = int(getattr(model, "num_samples", None) or DEFAULT_SAMPLES)
    stepper = Stepper(model, config, device)
    # Distinct clips for every step: a frozen-SSL cache must miss in the first epoch.
    batches = make_batches(model, args.warmup + steps, batch, num_samples, seed=0)
    build_s = time.perf_counter() - t0
    warm, timed = batches[: args.warmup], batches[args.warmup:]
    for b in warm:
        stepper.train_step(b)
        stepper.score_step(b)
    first = [stepper.train_step(b) for b in timed]
    row: dict[str, Any] = {
        "status": "ok", "model": name, "kwargs_measured": kwargs, "notes": notes,
        "recipe_batch": recipe_batch, "batch": batch, "num_samples": num_samples, "steps": steps,
        "warmup": args.warmup, "sam": config.optim.sam, "amp": stepper.amp_dtype or False,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "ssl_frontend": [f"{fe.model_id} ({'fine-tuned' if fe._frozen is None else 'frozen'}, random weights)"
                         for fe in fronts],
        "frozen_ssl_cached": cached, "build_and_batches_s": round(build_s, 3),
        "train_step_seconds": [round(s, 4) for s in first],
    }
    if cached:
        again = [stepper.train_step(b) for b in timed]  # same clips: the cache hits now
        row["train_first_epoch_utt_per_s"] = _rate(first, batch)
        row["train_cached_step_seconds"] = [round(s, 4) for s in again]
        row["train_utt_per_s"] = _rate(again, batch)
    else:
        row["train_first_epoch_utt_per_s"] = row["train_utt_per_s"] = _rate(first, batch)
    fresh = make_batches(model, steps, batch, num_samples, seed=1) if cached else timed
    score = [stepper.score_step(b) for b in fresh]
    row["score_step_seconds"] = [round(s, 4) for s in score]
    row["score_utt_per_s"] = _rate(score, batch)
    if cached:
        row["score_cached_utt_per_s"] = _rate([stepper.score_step(b) for b in fresh], batch)
    if device.type == "cuda":
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20)
    return row


# ---- command line ------------------------------------------------------------------------------------


def select_recipes(recipes: dict[str, Any], patterns: str | None, models: str | None) -> list[Any]:
    from benchmark.models import MODELS

    chosen = list(recipes.values())
    if models:
        wanted = [m.strip() for m in models.split(",") if m.strip()]
        for m in wanted:
            MODELS.get(m)  # unknown names fail with the list of known ones
        chosen = [r for r in chosen if r.train["model"]["name"] in wanted]
    if patterns:
        pats = [p.strip() for p in patterns.split(",") if p.strip()]
        chosen = [r for r in chosen if any(fnmatch.fnmatchcase(r.name, p) for p in pats)]
    return chosen


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    from benchmark.matrix import RECIPE_DIR, load_recipes

    device = torch.device(args.device)
    recipes = select_recipes(load_recipes(args.recipe_dir or RECIPE_DIR), args.recipes, args.models)
    if not recipes:
        raise SystemExit("error: no recipe matches --recipes/--models. Fix: see configs/recipes/ for the names")
    from benchmark.models import MODELS

    used = {r.train["model"]["name"] for r in load_recipes(args.recipe_dir or RECIPE_DIR).values()}
    commit, dirty = git_state()
    result: dict[str, Any] = {
        "schema": SCHEMA, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit,
        "codecfake_build_dirty": dirty, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "device": str(device), "device_name": device_name(str(device)), "loadavg_before": _loadavg(),
        "settings": {"steps": args.steps, "steps_ssl": args.steps_ssl, "warmup": args.warmup,
                     "max_batch": args.max_batch, "max_batch_ssl": args.max_batch_ssl,
                     "weights": "random (official architectures)", "amp": "the recipe's, on CUDA only"},
        "note": args.note,
        # Timing follows recipes (their batch, SAM, kwargs); a model no recipe uses is not timed.
        "models_without_recipe": sorted(set(MODELS.names()) - used), "recipes": {},
    }
    with tempfile.TemporaryDirectory(prefix="train-throughput-") as tmp:
        for recipe in recipes:
            t0 = time.perf_counter()
            try:
                row = bench_recipe(recipe, args, device, Path(tmp))
            except Exception as exc:  # one recipe that cannot run here must not end the run
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                row = {"status": "failed", "model": recipe.train["model"]["name"],
                       "error": f"{type(exc).__name__}: {first}"}
                if args.verbose:
                    traceback.print_exc()
            row["wall_s"] = round(time.perf_counter() - t0, 2)
            result["recipes"][recipe.name] = row
            print(format_row(recipe.name, row), flush=True)
    result["loadavg_after"] = _loadavg()
    return result


def format_row(name: str, row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"{name:28s} FAILED {row['error']}"
    first = "" if not row["frozen_ssl_cached"] else f" (epoch 1: {row['train_first_epoch_utt_per_s']:.2f})"
    return (f"{name:28s} train {row['train_utt_per_s']:9.2f} utt/s{first:20s} score {row['score_utt_per_s']:9.2f} "
            f"utt/s  batch {row['batch']}/{row['recipe_batch']}, {row['num_samples']} samples, {row['steps']} steps")


def format_table(result: dict[str, Any]) -> str:
    lines = [f"device: {result['device_name']} | torch {result['torch']} | {result['threads']} threads | "
             f"load {result['loadavg_before']} -> {result['loadavg_after']}",
             "| recipe | model | batch (recipe) | train utt/s | 1st epoch utt/s | score utt/s |",
             "|---|---|---:|---:|---:|---:|"]
    for name, r in result["recipes"].items():
        if r["status"] != "ok":
            lines.append(f"| {name} | {r['model']} | | failed: {r['error']} | | |")
            continue
        lines.append(f"| {name} | {r['model']} | {r['batch']} ({r['recipe_batch']}) | {r['train_utt_per_s']:.2f} | "
                     f"{r['train_first_epoch_utt_per_s']:.2f} | {r['score_utt_per_s']:.2f} |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="examples:" + __doc__.split("examples:")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (cuda if available)")
    ap.add_argument("--recipes", default=None, help="comma-separated recipe name patterns (default: all)")
    ap.add_argument("--models", default=None, help="comma-separated model names: only their recipes")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per recipe (median counts)")
    ap.add_argument("--steps-ssl", type=int, default=None, help="timed steps for recipes with an SSL front-end "
                    "(default: 2 on CPU, --steps on CUDA)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first (at least 1)")
    ap.add_argument("--max-batch", type=int, default=None, help="cap on the batch (default: 8 on CPU, none on CUDA)")
    ap.add_argument("--max-batch-ssl", type=int, default=None, help="cap for recipes with an SSL front-end "
                    "(default: 2 on CPU, none on CUDA)")
    ap.add_argument("--recipe-dir", type=Path, default=None, help="recipe folder (default: configs/recipes)")
    ap.add_argument("--note", default="", help="free text stored in the JSON (e.g. what else ran)")
    ap.add_argument("--json", type=Path, default=None, help="result file (default: benchmarks/results/"
                    "train_throughput-<device>.json)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print tracebacks of failing recipes")
    args = ap.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: CUDA is not available here. Fix: --device cpu")
    cpu = not args.device.startswith("cuda")
    if args.max_batch is None and cpu:
        args.max_batch = 8
    if args.max_batch_ssl is None and cpu:
        args.max_batch_ssl = 2
    if args.steps_ssl is None:
        args.steps_ssl = 2 if cpu else args.steps
    for name in ("steps", "steps_ssl", "max_batch", "max_batch_ssl"):
        value = getattr(args, name)
        if value is not None and value < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    args.warmup = max(1, args.warmup)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    result = run(args)
    out = write_results(result, "train_throughput", result["device_name"], args.json)
    print(format_table(result))
    print(f"-> {out}")
    return 1 if any(r["status"] != "ok" for r in result["recipes"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
