#!/usr/bin/env bash
# Rehearse run.sh HERE on the CPU: every step's command line, path and flag at toy sizes, in a
# throw-away copy of the working tree (so the CPU results files in benchmarks/results/ stay as
# committed).  Usage, from the repo root: bash scripts/gpu_session/rehearse.sh [MODE] [OUT]
# MODE defaults to full; OUT (default /tmp/gpu_session_rehearsal_out) receives what $OUT would.
set -euo pipefail
MODE=${1:-full}
OUT=${2:-/tmp/gpu_session_rehearsal_out}
REPO=$(git rev-parse --show-toplevel)
COPY=$(mktemp -d /tmp/gpu_session_rehearsal.XXXX)
# Tracked and untracked-but-not-ignored files: what a device call sends; plus .ffmpeg (carried).
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$COPY"
[ -d "$REPO/.ffmpeg" ] && cp -r "$REPO/.ffmpeg" "$COPY/"
(cd "$COPY" && git init -q && git add -A >/dev/null && git -c user.name=r -c user.email=r@r commit -qm rehearsal)
rm -rf "$OUT" && mkdir -p "$OUT"
cd "$COPY"
rc=0
GPU_SESSION_DEVICE=cpu GPU_SESSION_PYTHON="$REPO/.venv/bin/python" GPU_SESSION_INSTALL=0 GPU_SESSION_TINY=1 \
  OUT="$OUT" bash scripts/gpu_session/run.sh "$MODE" || rc=$?
echo "rehearsal copy: $COPY (delete when done); returned files: $(ls "$OUT" | tr '\n' ' ')"
exit $rc
