"""How much the frozen-SSL feature cache saves: epoch 1 computes XLS-R features and
writes the cache, later epochs read it.  Prints the epoch-1 / epoch-2 time ratio
(goal >= 10x) and writes benchmarks/results/ssl_feature_cache-<device>.json (or --json PATH).

The SSL model has XLS-R 300M's shape (1024 wide, 16 heads, 4096 FFN, the real
conv stack) with random weights, cut to hidden_states[5] like Codecfake's
front-end, so no download is needed; timing does not depend on the weight values.

    python benchmarks/ssl_feature_cache.py [--items 16] [--batch 4] [--device auto] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.codec_throughput import _loadavg, device_name, git_state, write_results  # noqa: E402
from benchmark.frontends.ssl import SSLFrontend  # noqa: E402



def xlsr_shaped(path: Path, layers: int) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=1024, num_hidden_layers=layers, num_attention_heads=16,
                         intermediate_size=4096, do_stable_layer_norm=True, feat_extract_norm="layer",
                         conv_bias=True, vocab_size=8)
    torch.manual_seed(0)
    Wav2Vec2Model(cfg).save_pretrained(path)
    return path


def epoch(fe: SSLFrontend, waves: torch.Tensor, batch: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(0, len(waves), batch):
        fe(waves[i:i + batch].to(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--items", type=int, default=16, help="clips of 64,600 samples per epoch (default 16)")
    ap.add_argument("--batch", type=int, default=4, help="clips per forward pass (default 4)")
    ap.add_argument("--layer", type=int, default=5,
                    help="hidden state read, as Codecfake's hidden_states[5] (default 5; the model is cut above it)")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    # Without it a smoke run would overwrite the committed benchmarks/results file of this machine.
    ap.add_argument("--json", type=Path, default=None,
                    help="result file (default: benchmarks/results/ssl_feature_cache-<device>.json)")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    load_before = _loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = xlsr_shaped(Path(tmp) / "xlsr", layers=args.layer + 1)
        fe = SSLFrontend(model_dir, layer=args.layer, cache_dir=Path(tmp) / "cache").to(device)
        waves = torch.randn(args.items, 64600, generator=torch.Generator().manual_seed(0))
        fe.cache  # weights fingerprint once, outside the timed epochs
        first = epoch(fe, waves, args.batch, device)
        later = [epoch(fe, waves, args.batch, device) for _ in range(2)]
        uncached = SSLFrontend(model_dir, layer=args.layer).to(device)
        recompute = epoch(uncached, waves, args.batch, device)
    second = min(later)
    commit, _ = git_state()  # its dirty flag is about codecfake_build/, not what runs here
    # Date, commit, torch and load as in the other benchmarks' results, so the file says what it measured.
    result = {
        "benchmark": "ssl_feature_cache",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit, "torch": torch.__version__,
        "load_avg_1min": {"before": load_before, "after": _loadavg()},
        "device": device_name(str(device)),
        "items": args.items, "batch": args.batch, "layer": args.layer, "num_samples": 64600,
        "epoch1_compute_and_write_s": round(first, 4),
        "epoch2_read_s": round(second, 4),
        "recompute_without_cache_s": round(recompute, 4),
        "ratio_epoch1_over_epoch2": round(first / second, 1),
        "ratio_recompute_over_epoch2": round(recompute / second, 1),
        "goal": ">= 10x",
    }
    print(json.dumps(result, indent=2))
    path = write_results(result, "ssl_feature_cache", result["device"], args.json)
    print(f"wrote {path}")
    print(f"epoch 1 {first:.2f} s, epoch 2 {second:.3f} s: {first / second:.0f}x "
          f"({'meets' if first / second >= 10 else 'misses'} the 10x goal)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
