"""Training throughput of WaveSpec against W2V2-AASIST, measured in the same run.

Each model takes full optimiser steps (forward, loss, backward, Adam) on random
16 kHz batches; WaveSpec through its own loss (cross-entropy + Single Center Loss),
W2V2-AASIST through cross-entropy.  Both use a frozen SSL front-end without the
feature cache, i.e. the cost of a first (uncached) epoch.  The models alternate for
``--repeats`` rounds of ``--steps`` steps after ``--warmup`` untimed steps, and the
fastest round counts (other load only ever adds time).  Prints training samples/s
per model and the WaveSpec / W2V2-AASIST ratio; writes
benchmarks/results/wavespec_throughput-<device>.json (or ``--json``).

SSL front-end (``--ssl``): ``tiny`` (random, 2 layers, 32 wide: a smoke run that
times the back-ends), ``xlsr-random`` (XLS-R 300M's shape with random weights: real
cost, no download), or a hub id / local directory with real weights, e.g.
``facebook/wav2vec2-xls-r-300m``.  Default: ``tiny`` on CPU, ``xlsr-random`` on CUDA.

examples:
  .venv/bin/python benchmarks/wavespec_throughput.py                        # CPU: tiny SSL, full back-ends
  .venv/bin/python benchmarks/wavespec_throughput.py --device cuda --batch 16 --steps 10
  .venv/bin/python benchmarks/wavespec_throughput.py --device cuda --ssl facebook/wav2vec2-xls-r-300m
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.codec_throughput import device_name, write_results  # noqa: E402
from benchmarks.ssl_feature_cache import xlsr_shaped  # noqa: E402

SCHEMA = "wavespec-throughput/1"
#: ``--backend tiny``: small U-Net/ResNet widths for smoke tests (not a measurement of WaveSpec).
TINY_BACKEND = dict(unet_widths=[4, 8, 8], fusion_dim=8, resnet_widths=[8, 8, 8, 8], resnet_blocks=[1, 1, 1, 1])


def tiny_ssl(path: Path) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(8,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                         do_stable_layer_norm=True, feat_extract_norm="layer", vocab_size=8)
    torch.manual_seed(0)
    Wav2Vec2Model(cfg).save_pretrained(path)
    return path


def model_kwargs(ssl: str, ssl_dir: str, backend: str) -> dict[str, dict[str, Any]]:
    """Constructor kwargs of the two models for an SSL choice (tiny: layers that exist in 2)."""
    tiny = ssl == "tiny"
    wavespec: dict[str, Any] = {"ssl_model": ssl_dir, "feature_cache": False}
    if tiny:
        wavespec["ssl_layers"] = [0, 1, 2]
    if backend == "tiny":
        wavespec.update(TINY_BACKEND)
    return {"wavespec": wavespec,
            "w2v2-aasist": {"ssl_model": ssl_dir, "feature_cache": False, **({"ssl_layer": 1} if tiny else {})}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, batches: list, device: torch.device,
                amp: bool) -> float:
    """Seconds for one optimiser step per batch."""
    _sync(device)
    t0 = time.perf_counter()
    for wave, target in batches:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            if getattr(model, "own_loss", False):
                loss, _ = model(wave, target=target)
            else:
                loss = F.cross_entropy(model(wave).float(), target)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - t0


def run(args: argparse.Namespace, ssl_dir: str) -> dict[str, Any]:
    from benchmark.models import create_model

    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    target = (torch.arange(args.batch) % 2).to(device)
    batches = [((torch.randn(args.batch, args.num_samples, generator=gen) * 0.1).to(device), target)
               for _ in range(args.steps)]
    models, rows = {}, {}
    for name, kw in model_kwargs(args.ssl, ssl_dir, args.backend).items():
        torch.manual_seed(0)
        t0 = time.perf_counter()
        model = create_model(name, **kw).to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-5)
        models[name] = (model, opt)
        train_steps(model, opt, batches[: args.warmup], device, args.amp)  # loads the frozen SSL too
        rows[name] = {"trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                      "setup_and_warmup_s": round(time.perf_counter() - t0, 3), "seconds": []}
    for _ in range(args.repeats):
        for name, (model, opt) in models.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            rows[name]["seconds"].append(round(train_steps(model, opt, batches, device, args.amp), 4))
            if device.type == "cuda":
                rows[name]["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20)
    for row in rows.values():
        row["best_seconds"] = min(row["seconds"])
        row["train_samples_per_s"] = round(args.steps * args.batch / row["best_seconds"], 3)
    ratio = rows["wavespec"]["train_samples_per_s"] / rows["w2v2-aasist"]["train_samples_per_s"]
    return {"schema": SCHEMA, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "device": str(device), "device_name": device_name(str(device)),
            "settings": {"ssl": args.ssl, "backend": args.backend, "batch": args.batch, "steps": args.steps,
                         "warmup": args.warmup, "repeats": args.repeats, "num_samples": args.num_samples,
                         "amp_bf16": args.amp, "ssl_frozen_uncached": True},
            "models": rows, "ratio_wavespec_over_w2v2_aasist": round(ratio, 4)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="examples:" + __doc__.split("examples:")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ssl", default=None, help="tiny | xlsr-random | hub id or directory with real weights "
                    "(default: tiny on CPU, xlsr-random on CUDA)")
    ap.add_argument("--backend", choices=("full", "tiny"), default="full",
                    help="WaveSpec back-end sizes: the recipe's (full) or smoke-test widths (tiny)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3, help="timed optimiser steps per round")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--num-samples", type=int, default=64600)
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.ssl is None:
        args.ssl = "xlsr-random" if args.device.startswith("cuda") else "tiny"
    for name in ("batch", "steps", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1")
    args.warmup = max(1, args.warmup)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.ssl == "tiny":
            ssl_dir = str(tiny_ssl(Path(tmp) / "tiny"))
        elif args.ssl == "xlsr-random":
            ssl_dir = str(xlsr_shaped(Path(tmp) / "xlsr", layers=24))
        else:
            ssl_dir = args.ssl
        try:
            result = run(args, ssl_dir)
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
    out = write_results(result, "wavespec_throughput", result["device_name"], args.json)
    for name, row in result["models"].items():
        print(f"{name:12s} {row['train_samples_per_s']:10.2f} train samples/s  "
              f"({row['trainable_params']:,} trainable params, best of {row['seconds']} s)")
    print(f"WaveSpec / W2V2-AASIST: {result['ratio_wavespec_over_w2v2_aasist']:.3f}x  -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
