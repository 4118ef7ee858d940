#!/usr/bin/env bash
# The machine facts a GPU session records first (run.sh's "facts" step): GPU, driver, Python,
# torch and CUDA, the versions of every package our code imports (carried or the image's),
# conflicts pip sees, ffmpeg, and whether each project package and codec imports.
# Usage: facts.sh PYTHON DEVICE
PY=${1:-python3}
DEVICE=${2:-cuda}
echo "## nvidia-smi"
nvidia-smi 2>&1 || echo "(no nvidia-smi)"
echo "## python, torch, device"
"$PY" - "$DEVICE" <<'PYEOF'
import os, platform, sys
import torch
dev = sys.argv[1]
print("python", sys.version.split()[0], sys.executable)
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
print("cuda available", torch.cuda.is_available(), "devices", torch.cuda.device_count())
if dev.startswith("cuda") and torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0),
          "memory GiB", round(p.total_memory / 2**30, 1), "SMs", p.multi_processor_count)
    print("nccl", torch.cuda.nccl.version() if hasattr(torch.cuda, "nccl") else "?")
    print("tf32 defaults: cudnn", torch.backends.cudnn.allow_tf32, "matmul", torch.backends.cuda.matmul.allow_tf32)
print("cpu cores", os.cpu_count(), platform.platform())
print("PYTHONPATH", os.environ.get("PYTHONPATH"))
PYEOF
echo "## package versions (where each is imported from)"
"$PY" - <<'PYEOF'
import importlib, importlib.metadata as md
mods = {"numpy": "numpy", "scipy": "scipy", "sklearn": "scikit-learn", "pyarrow": "pyarrow", "pandas": "pandas",
        "datasets": "datasets", "huggingface_hub": "huggingface-hub", "transformers": "transformers",
        "tokenizers": "tokenizers", "safetensors": "safetensors", "soundfile": "soundfile", "soxr": "soxr",
        "librosa": "librosa", "numba": "numba", "snac": "snac", "einops": "einops", "yaml": "pyyaml",
        "tqdm": "tqdm", "regex": "regex", "fsspec": "fsspec", "matplotlib": "matplotlib",
        "tensorboard": "tensorboard", "pystoi": "pystoi", "torchaudio": "torchaudio", "pytest": "pytest"}
for mod, dist in mods.items():
    try:
        m = importlib.import_module(mod)
        print(f"{dist:<16} {md.version(dist):<14} {getattr(m, '__file__', '?')}")
    except Exception as exc:  # noqa: BLE001
        print(f"{dist:<16} IMPORT FAILED  {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
PYEOF
echo "## pip check (conflicts among everything on sys.path)"
"$PY" -m pip check 2>&1 | head -40
echo "## ffmpeg"
command -v ffmpeg && ffmpeg -hide_banner -version | head -1 && ffmpeg -hide_banner -encoders 2>/dev/null | grep -E "libmp3lame|aac|libopus"
echo "## project imports and codecs"
"$PY" -m codecfake_build codecs 2>&1 | head -30
"$PY" -c "import benchmark.models as m; print('models', len(m.MODELS.names()))" 2>&1 | tail -1
