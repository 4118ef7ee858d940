#!/usr/bin/env bash
# Run ON the GPU machine, from the repo root, with .whl/ and .ffmpeg/ carried (fetch_wheels.sh):
#   bash scripts/gpu_session/run.sh quick   # set-up, tests/gpu, codec throughput          (< 8 min)
#   bash scripts/gpu_session/run.sh codecs  # set-up, codec throughput alone, longer limit  (< 9 min)
#   bash scripts/gpu_session/run.sh part2   # set-up, train_throughput over every recipe    (< 9 min)
#   bash scripts/gpu_session/run.sh part3   # set-up, fd_add / wavespec / ssl_feature_cache (< 8 min)
#   bash scripts/gpu_session/run.sh setup   # set-up and machine facts only
#   bash scripts/gpu_session/run.sh full    # all of it in one go (only where no 10-minute cap applies)
# Every step runs under `timeout`, logs to its own file and is listed in $OUT/summary.txt with
# its status and seconds, so a failing or slow step never costs the others.  What comes back
# ($OUT: at most 8 files): summary.txt, logs.tar.gz (step logs, pytest junit XML, the tests'
# measurements records.jsonl, machine facts), results.tar.gz and each results JSON written in
# this run (benchmarks/results/*-<device>.json, also left in benchmarks/results/).
#
# Local rehearsal on a CPU (every command line, path and flag, at toy sizes):
#   GPU_SESSION_DEVICE=cpu GPU_SESSION_PYTHON=.venv/bin/python GPU_SESSION_INSTALL=0 \
#   GPU_SESSION_TINY=1 OUT=/tmp/out bash scripts/gpu_session/run.sh full
set -uo pipefail
MODE=${1:-quick}
case $MODE in quick|codecs|part2|part3|setup|full) ;; *) echo "usage: run.sh quick|codecs|part2|part3|setup|full"; exit 2 ;; esac
REPO=$(pwd)
[ -d "$REPO/codecfake_build" ] || { echo "run.sh: start it from the repo root"; exit 2; }
OUT=${OUT:-/tmp/gpu_session_out}
DEVICE=${GPU_SESSION_DEVICE:-cuda}
PY=${GPU_SESSION_PYTHON:-python3}
TINY=${GPU_SESSION_TINY:-0}
SITE=${GPU_SESSION_SITE:-/tmp/site}
LOGS=$(mktemp -d /tmp/gpu_session_logs.XXXX)
MARK=$LOGS/.start
mkdir -p "$OUT"
touch "$MARK"
SUMMARY=$OUT/summary.txt
COMMIT='?'
if git rev-parse --short HEAD > /dev/null 2>&1; then
  COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (+uncommitted changes)')
fi
echo "run.sh $MODE on $(uname -n) at $(date -u +%FT%TZ), device $DEVICE, commit $COMMIT" > "$SUMMARY"
printf '%-26s %-10s %8s\n' step status seconds >> "$SUMMARY"

pack() {  # bundle logs (and results) so that $OUT holds few files, however many steps ran
  tar -czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null
  local fresh; fresh=$(find benchmarks/results -name '*.json' -newer "$MARK" 2>/dev/null | sort)
  if [ -n "$fresh" ]; then
    tar -czf "$OUT/results.tar.gz" $fresh
    # $OUT returns at most 8 files: summary, logs, results.tar.gz and the first 5 JSONs as they are.
    rm -f "$OUT"/*.json
    local n=0
    for f in $fresh; do n=$((n + 1)); [ $n -le 5 ] && cp "$f" "$OUT/"; done
  fi
}

step() {  # step NAME SECONDS COMMAND...: time-boxed, logged, summarised; never stops the run
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS status
  echo "== $name (limit ${limit}s): $*" | tee -a "$LOGS/commands.txt"
  timeout --kill-after=15 "$limit" "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  case $rc in 0) status=ok ;; 124|137) status=TIMEOUT ;; *) status="FAILED:$rc" ;; esac
  printf '%-26s %-10s %8d\n' "$name" "$status" $((SECONDS - t0)) | tee -a "$SUMMARY"
  tail -n 4 "$LOGS/$name.log" | sed 's/^/    /'
  pack
}

# ---- set-up: carried wheels, ffmpeg, environment -----------------------------------------------------
setup() {
  if [ "${GPU_SESSION_INSTALL:-1}" = 1 ] && compgen -G ".whl/*.whl" > /dev/null; then
    step install_wheels 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" .whl/*.whl
  else
    echo "install_wheels             skipped    (GPU_SESSION_INSTALL=0 or no .whl/)" >> "$SUMMARY"
  fi
  export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
  if [ -f .ffmpeg/ffmpeg ]; then  # copied out: a carried file may arrive without its exec bit
    mkdir -p /tmp/gpu_session_bin && install -m 755 .ffmpeg/ffmpeg /tmp/gpu_session_bin/ffmpeg
    export PATH="/tmp/gpu_session_bin:$PATH"
  fi
  # No network there: fail fast instead of waiting on the hub; plots without a display.
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
  export CODECFAKE_CACHE=${CODECFAKE_CACHE:-/tmp/codecfake_cache}
  step facts 45 bash "$REPO/scripts/gpu_session/facts.sh" "$PY" "$DEVICE"
  SLUG=$("$PY" -c "import re,sys,torch; d=sys.argv[1]; n=torch.cuda.get_device_name(0) if d.startswith('cuda') else 'cpu-local'; print(re.sub(r'[^a-z0-9]+','-',n.lower()).strip('-'))" "$DEVICE" 2>/dev/null || echo unknown)
  echo "device slug: $SLUG" >> "$SUMMARY"
}

# ---- the parts -------------------------------------------------------------------------------------------
# Limits: each part's steps (set-up included) add up to under 8 min (quick) or 9 min (the others),
# so a part always fits one 10-minute call; a step that hits its limit is reported, the rest go on.
part_quick() {
  step tests_gpu 150 env GPU_TESTS_RECORD="$LOGS/records.jsonl" "$PY" -m pytest tests/gpu -q -rA -p no:cacheprovider \
    --junitxml="$LOGS/junit_tests_gpu.xml"
  codec_step 215
}

codec_step() {  # codec_step LIMIT_SECONDS
  if [ "$TINY" = 1 ]; then
    step codec_throughput "$1" "$PY" benchmarks/codec_throughput.py --codec mp3,funcodec,encodec --random-init \
      --device "$DEVICE" --clips 3 --batch-size 2 --repeats 1 --amp auto
  else
    # Every registered codec at its default config (ffmpeg and Lyra stay on the CPU; Lyra is skipped:
    # its weights live in ../shared, which does not travel).
    step codec_throughput "$1" "$PY" benchmarks/codec_throughput.py --random-init --device "$DEVICE" \
      --clips 36 --batch-size 16 --repeats 3 --amp auto
  fi
}

part_2() {
  if [ "$TINY" = 1 ]; then
    step train_throughput 420 "$PY" benchmarks/train_throughput.py --device "$DEVICE" --recipes lcnn --steps 1 \
      --warmup 1 --note "gpu_session rehearsal"
  else
    # Every recipe at its own batch size (no cap on CUDA), 5 timed steps each.
    step train_throughput 420 "$PY" benchmarks/train_throughput.py --device "$DEVICE" --steps 5 --warmup 2 \
      --note "scripts/gpu_session/run.sh part2"
  fi
}

part_3() {
  if [ "$TINY" = 1 ]; then
    step fd_add_throughput 90 "$PY" benchmarks/fd_add_throughput.py --device "$DEVICE" --tiny --batch 2 --steps 1 \
      --repeats 1
    step fd_add_throughput_bf16 90 "$PY" benchmarks/fd_add_throughput.py --device "$DEVICE" --tiny --batch 2 \
      --steps 1 --repeats 1 --amp --json "benchmarks/results/fd_add_throughput-$SLUG-bf16.json"
    step wavespec_throughput 120 "$PY" benchmarks/wavespec_throughput.py --device "$DEVICE" --ssl tiny \
      --backend tiny --batch 2 --steps 1 --warmup 1 --repeats 1
    step ssl_feature_cache 120 "$PY" benchmarks/ssl_feature_cache.py --device "$DEVICE" --items 2 --batch 1
  else
    # FD-ADD's Table IX setting (batch 32), then the same under bf16 autocast.
    step fd_add_throughput 100 "$PY" benchmarks/fd_add_throughput.py --device "$DEVICE" --batch 32 --steps 10
    step fd_add_throughput_bf16 80 "$PY" benchmarks/fd_add_throughput.py --device "$DEVICE" --batch 32 --steps 10 \
      --amp --json "benchmarks/results/fd_add_throughput-$SLUG-bf16.json"
    step wavespec_throughput 120 "$PY" benchmarks/wavespec_throughput.py --device "$DEVICE" --batch 16 --steps 10
    step ssl_feature_cache 60 "$PY" benchmarks/ssl_feature_cache.py --device "$DEVICE"
  fi
}

setup
case $MODE in
  quick) part_quick ;;
  codecs) codec_step 440 ;;
  part2) part_2 ;;
  part3) part_3 ;;
  full) part_quick; part_2; part_3 ;;
  setup) ;;
esac
pack
echo "files in $OUT: $(ls "$OUT" | tr '\n' ' ')" >> "$SUMMARY"
cat "$SUMMARY"
# Exit 1 when any step failed or timed out, so the caller sees it at a glance.
! grep -qE ' (FAILED|TIMEOUT)' "$SUMMARY"
