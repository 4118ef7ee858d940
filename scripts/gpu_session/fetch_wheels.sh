#!/usr/bin/env bash
# Run HERE (PyPI and Debian reachable), from the repo root, before a GPU session:
#   bash scripts/gpu_session/fetch_wheels.sh
# Fills the git-ignored folders the device `run` call carries (carry: [".whl", ".ffmpeg"]):
#   .whl/     cp312 manylinux x86-64 wheels of what our code needs and the GPU image lacks, at the
#             pins of this checkout's .venv, plus their missing runtime dependencies;
#   .ffmpeg/  a minimal ffmpeg built from Debian's source (build_ffmpeg.sh explains why).
# Then checks the set (metadata closure against the image's package list, an offline
# install with python3.12, imports) and fails if the carried total passes $LIMIT_MIB (55).
# Options: --no-ffmpeg (wheels only), --keep (do not empty .whl/ first), --image-venv (also import
# the non-torch modules in a python3.12 venv holding the image's versions where KINDS.md gives
# them: huggingface_hub 1.33.0, tokenizers 0.23.2, safetensors 0.8.0; ~200 MB from PyPI, cached
# in /tmp/gpu_session_image312).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
HERE=scripts/gpu_session
LIMIT_MIB=${LIMIT_MIB:-55}
VENV_PY=.venv/bin/python
# A Python 3.12 for the offline install check: $PY312, a working python3.12, or pyenv's.
if [ -z "${PY312:-}" ]; then
  for c in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
    if "$c" --version >/dev/null 2>&1; then PY312=$c; break; fi
  done
fi
PY312=${PY312:-}
FFMPEG=1 KEEP=0 IMAGE_VENV=0
for arg in "$@"; do
  case $arg in
    --no-ffmpeg) FFMPEG=0 ;;
    --keep) KEEP=1 ;;
    --image-venv) IMAGE_VENV=1 ;;
    *) echo "unknown option $arg (use --no-ffmpeg, --keep, --image-venv)"; exit 2 ;;
  esac
done
[ -x "$VENV_PY" ] || { echo "no $VENV_PY: run scripts/setup.sh first (the pins come from that venv)"; exit 1; }

# What our code imports that the image lacks (or needs at another version), and why:
#   soundfile soxr librosa datasets  core I/O, resampling, mel filters, the built dataset reader
#   snac speechtokenizer             codec packages (speechtokenizer: model module only, no trainer deps)
#   transformers                     the image has 5.17.0; our EnCodec/DAC/Mimi/X-Codec/X-Codec 2 code is
#                                    tested with the .venv's version, so that one travels
#   regex fsspec                     version-bounded by transformers (regex>=2025.10.22, checked at import)
#                                    and datasets (fsspec<=2026.9.0); the image's versions are not recorded
#   pystoi                           the optional STOI quality column (pure Python, 8 kB)
# Left behind: pesq (no cp312 wheel on PyPI; builds from source), ai-edge-litert (Lyra's TFLite
# runtime: Lyra needs weights from ../shared, which does not travel), nnAudio (not imported).
TOP=(soundfile soxr librosa datasets snac speechtokenizer transformers regex fsspec pystoi)
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

FREEZE=$("$VENV_PY" -m pip freeze 2>/dev/null | tr 'A-Z' 'a-z' | sed 's/_/-/g')
pin() {  # the .venv's version of a package, as NAME==VERSION
  local name; name=$(echo "$1" | tr 'A-Z' 'a-z' | sed 's/[_.]/-/g')
  local line; line=$(echo "$FREEZE" | grep -E "^${name}==" || true)
  [ -n "$line" ] || { echo "the .venv has no $1: install it there first (its version is the pin)" >&2; return 1; }
  echo "$line"
}
download() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d .whl "$@" 2>&1 | grep -v -E "^WARNING: Location|^$" || true
}

# Keep .whl/ and .ffmpeg/ out of git and out of the plain working-tree copy (they are carried).
# (.git/info/exclude is this checkout's own ignore list; the lead adds the same lines to .gitignore.)
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
for d in /.whl/ /.ffmpeg/; do grep -qxF "$d" "$EXCLUDE" 2>/dev/null || echo "$d" >> "$EXCLUDE"; done

[ "$KEEP" = 1 ] || rm -rf .whl
mkdir -p .whl
pins=()
for p in "${TOP[@]}"; do pins+=("$(pin "$p")"); done
echo "downloading: ${pins[*]}"
download "${pins[@]}"
# Dependencies the image lacks, round by round until none is missing.
for round in 1 2 3 4 5; do
  missing=$( ("$VENV_PY" $HERE/check_wheels.py deps .whl || true) | tail -1 | sed -n 's/.*missing: *//p')
  [ -n "$missing" ] || break
  pins=(); for p in $missing; do pins+=("$(pin "$p")"); done
  echo "round $round, dependencies: ${pins[*]}"
  download "${pins[@]}"
done
echo "== dependency check (.whl against $HERE/image_packages.txt)"
"$VENV_PY" $HERE/check_wheels.py deps .whl

if [ -n "$PY312" ]; then
  echo "== offline install and imports with $("$PY312" --version 2>&1)"
  SITE=$(mktemp -d /tmp/gpu_session_site.XXXX)
  "$PY312" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl
  # Modules that need only the carried wheels and the standard library import fully here; the
  # rest stop at the first image package this python lacks (numpy, torch) and are "deferred".
  "$PY312" $HERE/check_wheels.py imports "$SITE" pycparser cffi platformdirs decorator audioread dill \
    multiprocess regex fsspec soundfile soxr pooch librosa datasets transformers snac speechtokenizer.model pystoi
  if [ "$IMAGE_VENV" = 1 ]; then
    IV=/tmp/gpu_session_image312
    if [ ! -x $IV/bin/python ]; then
      "$PY312" -m venv $IV
      $IV/bin/pip install -q "numpy<2.6" packaging pyyaml requests tqdm filelock huggingface_hub==1.33.0 \
        tokenizers==0.23.2 safetensors==0.8.0 typer pyarrow pandas xxhash lazy_loader msgpack joblib scipy \
        scikit-learn numba typing_extensions einops
    fi
    echo "== imports in $IV (image-like versions, no torch)"
    $IV/bin/python $HERE/check_wheels.py imports "$SITE" soundfile soxr librosa datasets transformers pystoi
  fi
  rm -rf "$SITE"
else
  echo "no python3.12 here: skipped the offline install check (run.sh does it on the GPU machine)"
fi

if [ "$FFMPEG" = 1 ]; then
  if [ -x .ffmpeg/ffmpeg ] && .ffmpeg/ffmpeg -hide_banner -version >/dev/null 2>&1; then
    echo "== .ffmpeg/ffmpeg exists: $(.ffmpeg/ffmpeg -hide_banner -version | head -1)"
  else
    echo "== building .ffmpeg/ffmpeg (5-10 minutes)"
    bash $HERE/build_ffmpeg.sh .ffmpeg
  fi
  if command -v ffmpeg >/dev/null; then
    echo "== .ffmpeg/ffmpeg against this machine's $(command -v ffmpeg) on the three ffmpeg codecs"
    "$VENV_PY" $HERE/compare_ffmpeg.py .ffmpeg/ffmpeg "$(command -v ffmpeg)"
  fi
fi

echo "== carried sizes"
ls -l .whl | awk 'NR>1 {printf "%10d  %s\n", $5, $9}'
[ -d .ffmpeg ] && ls -l .ffmpeg | awk 'NR>1 {printf "%10d  .ffmpeg/%s\n", $5, $9}'
total=$(du -cb .whl $( [ -d .ffmpeg ] && echo .ffmpeg ) | tail -1 | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
printf 'carried: %.1f MiB (limit %s MiB); tracked tree: %.1f MiB; a call may send 64 MiB in all\n' \
  "$(echo "$total / 1048576" | bc -l)" "$LIMIT_MIB" "$(echo "$tree / 1048576" | bc -l)"
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "FAILED: the carried folders exceed $LIMIT_MIB MiB; drop a package from TOP in $0"; exit 1
fi
echo "ready: carry [\".whl\", \".ffmpeg\"] and run scripts/gpu_session/run.sh there (see $HERE/README.md)"
