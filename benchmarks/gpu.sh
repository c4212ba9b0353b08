#!/usr/bin/env bash
# The GPU day's benchmarks: step overhead, penalty cost and metrics speed (ours against Quantus on the
# same GPU), each with --device cuda, their Markdown tables written into one folder.
#
#   bash benchmarks/gpu.sh [OUT_DIR]        (default: benchmarks/results/gpu-YYYYmmdd-HHMM)
#
# Needs a CUDA build of the pinned torch in $PYTHON (default .venv/bin/python), e.g.
#   pip install -c constraints.txt torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126
# METRICS_ARGS passes options to metrics_speed.py (e.g. METRICS_ARGS="--n 5000 --model cnn4b").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-benchmarks/results/gpu-$(date +%Y%m%d-%H%M)}
export EXPLAINREG_DATA=${EXPLAINREG_DATA:-../shared/data}
"$PY" - <<'PYCHECK'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"benchmarks/gpu.sh: no CUDA device (torch {torch.__version__}, cuda {torch.version.cuda}); "
             "install a CUDA build of the pinned torch or run on a GPU machine")
print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
PYCHECK
mkdir -p "$OUT"
{ nvidia-smi || true; "$PY" -c "import torch; print(torch.__version__, torch.version.cuda)"; } > "$OUT/device.txt" 2>&1
run() {  # run NAME ARGS...: the table to OUT/NAME.md, the log beside it; a failure does not stop the others
  local name=$1; shift
  echo "== $name"
  if "$PY" "$@" > "$OUT/$name.md" 2> "$OUT/$name.log"; then cat "$OUT/$name.md"; else echo "$name failed: see $OUT/$name.log"; fi
}
run step_overhead benchmarks/step_overhead.py --device cuda
run penalty_cost benchmarks/penalty_cost.py --device cuda
# shellcheck disable=SC2086
run metrics_speed benchmarks/metrics_speed.py --device cuda ${METRICS_ARGS:-}
echo "tables in $OUT"
