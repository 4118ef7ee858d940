"""Training and testing throughput of FD-ADD against AASIST, measured in the same run.

Training: full optimiser steps (forward, loss, backward, Adam) on random 16 kHz batches;
FD-ADD through its own Eq. 14 objective (SpecAugment, blending, shuffle, adversarial re-run
of layer4) with random pseudo-labels, AASIST through cross-entropy.  Testing: eval-mode
forward passes under ``torch.no_grad``.  Each model gets its own input length (FD-ADD 48,000
samples, AASIST 64,600), as in the paper's Table IX.  Data loading and the pseudo-label
transform (ffmpeg, speed change: CPU work in loader workers) are *not* timed.

The models alternate for ``--repeats`` rounds of ``--steps`` batches after ``--warmup``
untimed batches; the fastest round counts (other load only ever adds time).  Prints
samples/s per model and phase, the FD-ADD / AASIST ratios, and the paper's RTX 4090 figures
for FD-ADD (batch 32: 233 training, 1841 testing samples/s) next to ours; writes
benchmarks/results/fd_add_throughput-<device>.json (or ``--json``).

``--tiny`` shrinks both networks (smoke runs; not a measurement of either model).

examples:
  .venv/bin/python benchmarks/fd_add_throughput.py                          # CPU, batch 4
  .venv/bin/python benchmarks/fd_add_throughput.py --device cuda --batch 32 --steps 10   # Table IX setting
  .venv/bin/python benchmarks/fd_add_throughput.py --device cuda --batch 32 --amp        # bf16 autocast
  .venv/bin/python benchmarks/fd_add_throughput.py --tiny --batch 2 --steps 1 --repeats 1  # smoke
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.codec_throughput import device_name, write_results  # noqa: E402

SCHEMA = "fd-add-throughput/1"
#: Paper Table IX (batch 32, RTX 4090), samples/s.
PAPER_FD_ADD = {"train_samples_per_s": 233.0, "test_samples_per_s": 1841.0, "batch": 32, "gpu": "RTX 4090"}
#: The paper's setting: 8 synthesizer classes + real (e.g. LibriSeVoc has 6, WaveFake 8).
SYSTEMS = [f"system{i}" for i in range(8)]
TINY = {"fd-add": {"widths": [4, 8, 8, 16]},
        "aasist": {"filts": [20, [1, 8], [8, 8], [8, 8], [8, 8]], "gat_dims": [8, 8], "first_conv": 32}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], None], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def make_batches(model: torch.nn.Module, n: int, batch: int, device: torch.device) -> list[tuple]:
    """Random waves, targets (half bona fide) and FD-ADD's pseudo-labels, on the device."""
    gen = torch.Generator().manual_seed(0)
    length = int(model.num_samples)
    out = []
    for _ in range(n):
        target = torch.arange(batch) % 2
        extras = {"speed": torch.randint(0, 16, (batch,), generator=gen),
                  "compression": torch.randint(0, 10, (batch,), generator=gen),
                  "synthesizer": torch.where(target == 1, 0, torch.randint(1, len(SYSTEMS) + 1, (batch,), generator=gen))}
        wave = torch.randn(batch, length, generator=gen) * 0.1
        out.append((wave.to(device), target.to(device), {k: v.to(device) for k, v in extras.items()}))
    return out


def train_pass(model: torch.nn.Module, opt: torch.optim.Optimizer, batches: list, amp: bool) -> None:
    model.train()
    device_type = batches[0][0].device.type
    for wave, target, extras in batches:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
            if getattr(model, "own_loss", False):
                loss, _ = model(wave, target=target, extras=extras)
            else:
                loss = F.cross_entropy(model(wave).float(), target)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()


def test_pass(model: torch.nn.Module, batches: list, amp: bool) -> None:
    model.eval()
    device_type = batches[0][0].device.type
    with torch.no_grad(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
        for wave, _, _ in batches:
            model(wave)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from benchmark.models import create_model

    device = torch.device(args.device)
    models: dict[str, tuple] = {}
    rows: dict[str, dict[str, Any]] = {}
    for name in ("fd-add", "aasist"):
        torch.manual_seed(0)
        kwargs = dict(TINY[name]) if args.tiny else {}
        if name == "fd-add":
            kwargs["systems"] = SYSTEMS
        model = create_model(name, **kwargs).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-5)
        batches = make_batches(model, args.steps, args.batch, device)
        train_pass(model, opt, batches[: args.warmup], args.amp)
        test_pass(model, batches[: args.warmup], args.amp)
        models[name] = (model, opt, batches)
        rows[name] = {"params": sum(p.numel() for p in model.parameters()), "num_samples": int(model.num_samples),
                      "train_seconds": [], "test_seconds": []}
    for _ in range(args.repeats):
        for name, (model, opt, batches) in models.items():
            rows[name]["train_seconds"].append(round(_timed(lambda: train_pass(model, opt, batches, args.amp), device), 4))
            rows[name]["test_seconds"].append(round(_timed(lambda: test_pass(model, batches, args.amp), device), 4))
    samples = args.steps * args.batch
    for row in rows.values():
        row["train_samples_per_s"] = round(samples / min(row["train_seconds"]), 3)
        row["test_samples_per_s"] = round(samples / min(row["test_seconds"]), 3)
    ratios = {phase: round(rows["fd-add"][f"{phase}_samples_per_s"] / rows["aasist"][f"{phase}_samples_per_s"], 4)
              for phase in ("train", "test")}
    return {"schema": SCHEMA, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "device": str(device), "device_name": device_name(str(device)),
            "settings": {"batch": args.batch, "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
                         "amp_bf16": args.amp, "tiny": args.tiny, "fd_add_systems": len(SYSTEMS)},
            "models": rows, "ratio_fd_add_over_aasist": ratios, "paper_fd_add": PAPER_FD_ADD}


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="examples:" + __doc__.split("examples:")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default: cuda if available)")
    ap.add_argument("--batch", type=int, default=None, help="samples per batch (default: 32 on CUDA as in "
                    "Table IX, 4 on CPU)")
    ap.add_argument("--steps", type=int, default=3, help="timed batches per round and phase")
    ap.add_argument("--warmup", type=int, default=1, help="untimed batches first (at least 1)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds; the fastest counts")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    ap.add_argument("--tiny", action="store_true", help="tiny widths for both models (smoke runs only)")
    ap.add_argument("--json", type=Path, default=None, help="result file (default: benchmarks/results/"
                    "fd_add_throughput-<device>.json)")
    args = ap.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: CUDA is not available here. Fix: --device cpu")
    if args.batch is None:
        args.batch = 32 if args.device.startswith("cuda") else 4
    for name in ("batch", "steps", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1")
    args.warmup = max(1, args.warmup)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    result = run(args)
    out = write_results(result, "fd_add_throughput", result["device_name"], args.json)
    for name, row in result["models"].items():
        print(f"{name:7s} train {row['train_samples_per_s']:9.2f} samples/s   test {row['test_samples_per_s']:9.2f} "
              f"samples/s   ({row['params']:,} params, {row['num_samples']} samples/clip)")
    r = result["ratio_fd_add_over_aasist"]
    print(f"FD-ADD / AASIST: train {r['train']:.3f}x, test {r['test']:.3f}x  -> {out}")
    p = PAPER_FD_ADD
    print(f"paper (FD-ADD, batch {p['batch']}, {p['gpu']}): train {p['train_samples_per_s']:.0f}, "
          f"test {p['test_samples_per_s']:.0f} samples/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
