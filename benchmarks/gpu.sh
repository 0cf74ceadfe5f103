#!/usr/bin/env bash
# The GPU checks (issue 23), one script for a machine with a GPU, under 8 minutes on an H100:
#   the GPU tests; Table 3's MNIST column (10 models x 30 epochs) timed; four trials packed on one
#   GPU against one at a time; stacking K = 4/8/16; fp32 vs tf32 vs bf16 per epoch and their FIDs.
# Usage: benchmarks/gpu.sh [OUT_DIR]   (default benchmarks/gpu-<date>; each section's output is a file there)
#        benchmarks/gpu.sh --cpu-check [OUT_DIR]: every section at toy sizes on this machine's CPU (a few
#        minutes), to find a mistake in the script before a lent GPU's minutes go to it.
# Python: $PY, else `uv run python` where uv is, else python3 (the lent GPU machines have torch but no
# uv and no Ray: the Ray test skips there, and the figures come from benchmarks/gpu.py without Ray).
# Data: $RAYGEN_DATA_ROOT (MNIST's raw files), else ../shared/datasets.
set -uo pipefail
cd "$(dirname "$0")/.."
CHECK=0
if [ "${1:-}" = "--cpu-check" ]; then CHECK=1; shift; fi
OUT_DIR=${1:-benchmarks/gpu-$(date +%Y%m%d)}
mkdir -p "$OUT_DIR"
if [ -z "${PY:-}" ]; then
  if command -v uv >/dev/null 2>&1; then PY="uv run python"; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export RAYGEN_DATA_ROOT=${RAYGEN_DATA_ROOT:-$(cd .. && pwd)/shared/datasets}
DATA=(--data-root "$RAYGEN_DATA_ROOT")
section() {  # name, command...: its output to the screen and to OUT_DIR/name.txt, with its seconds
  local name=$1; shift
  echo "== $name: $*" | tee "$OUT_DIR/$name.txt"
  local t0=$SECONDS
  "$@" 2>&1 | tee -a "$OUT_DIR/$name.txt"
  echo "== $name: exit ${PIPESTATUS[0]}, $((SECONDS - t0)) s" | tee -a "$OUT_DIR/$name.txt"
}
if [ $CHECK = 1 ]; then
  TOY=(--device cpu --max-batches 2 --eval-samples 200)
  echo "cpu check: toy sizes, figures meaningless" | tee "$OUT_DIR/device.txt"
  section tests $PY -m pytest -q -p no:cacheprovider -m gpu tests/gpu  # all skip without CUDA: collection checked
  section table3 $PY -m benchmarks.gpu table3 --epochs 1 "${TOY[@]}" "${DATA[@]}"
  section packed $PY -m benchmarks.gpu packed --trials 2 --epochs 1 "${TOY[@]}" "${DATA[@]}"
  section stacking $PY -m benchmarks.stacking --device cpu --k 2 --epochs 5 --batches 2 "${DATA[@]}"
  section precision $PY -m benchmarks.precision --device cpu --precisions fp32 bf16 --epochs 1 --seeds 1 "${DATA[@]}"
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/device.txt"
  section tests $PY -m pytest -q -p no:cacheprovider -m gpu tests/gpu
  section table3 $PY -m benchmarks.gpu table3 --epochs 30 "${DATA[@]}"
  section packed $PY -m benchmarks.gpu packed --trials 4 --epochs 5 "${DATA[@]}"
  section stacking $PY -m benchmarks.stacking --device cuda --k 4 8 16 --epochs 500 "${DATA[@]}"
  section precision $PY -m benchmarks.precision --device cuda --precisions fp32 tf32 bf16 --epochs 10 --seeds 2 \
    "${DATA[@]}"
fi
grep -h "^== .*: exit" "$OUT_DIR"/*.txt
echo "figures in $OUT_DIR"
