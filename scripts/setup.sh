#!/usr/bin/env bash
# One-shot set-up for a fresh machine: system packages, .venv, torch, the project.
#   bash scripts/setup.sh                 # torch 2.13.0: the CPU wheel where no NVIDIA driver is found
#   TORCH_SPEC="torch==2.13.0" TORCH_INDEX=https://download.pytorch.org/whl/cu128 bash scripts/setup.sh   # CUDA
# Safe to rerun: every step is skipped or a no-op when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)  # builds the optional PESQ extra's C code
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || { echo "[setup] creating .venv"; "$PY" -m venv .venv; }
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)

# torch first, pinned, so that no other requirement pulls a CUDA build by accident.
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
# PyPI's Linux torch is the CUDA build (gigabytes of CUDA libraries); a machine without an NVIDIA
# driver gets PyTorch's CPU index instead, when it can reach it (offline mirrors keep plain pip).
if [ -z "${TORCH_INDEX:-}" ] && ! command -v nvidia-smi >/dev/null 2>&1 \
   && .venv/bin/python -c "import socket; socket.getaddrinfo('download.pytorch.org', 443)" >/dev/null 2>&1; then
  TORCH_INDEX=https://download.pytorch.org/whl/cpu
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "[setup] installing $TORCH_SPEC"
  if [ -n "${TORCH_INDEX:-}" ]; then "${PIP[@]}" "$TORCH_SPEC" --index-url "$TORCH_INDEX"; else "${PIP[@]}" "$TORCH_SPEC"; fi
fi

echo "[setup] installing codecfake-bench with its optional backends and test tools"
"${PIP[@]}" -e ".[all,test]"
# The optional quality measures (--quality pesq,stoi) compile P.862's C code: a failure here
# must not stop the set-up; their tests skip and --quality says how to install them.
"${PIP[@]}" -e ".[quality]" || echo "[setup] warning: the optional PESQ/STOI extra did not install (it needs a C compiler and Python headers); everything else works, and --quality pesq,stoi will say how to add it"
# SpeechTokenizer's wheel declares torchaudio/accelerate (another torch build); its model module needs only torch + einops.
"${PIP[@]}" --no-deps "speechtokenizer==1.0.1"
.venv/bin/python -c "import torch, codecfake_build, benchmark, leaderboard; print('[setup] ok: torch', torch.__version__, '| cuda', torch.cuda.is_available())"
