#!/usr/bin/env bash
# The full-data check of issue 2: CNN3b on full MNIST, the seed's 8 epochs (Adam 1e-3, batch 30),
# baseline and each penalty at weight 0.1. Run folders land where the constraints study looks for them.
# Usage: scripts/full_mnist_penalties.sh [DATA_ROOT] [OUT]
set -euo pipefail
DATA_ROOT=${1:-../shared/data}
OUT=${2:-results/constraints-mnist/runs}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for penalty in baseline gradient_l1 smoothness locality fidelity consistency symmetry; do
  args=(); name=$penalty
  [ "$penalty" != baseline ] && args=(--penalty "$penalty=0.1") && name="$penalty-w0.1"
  explainreg train --dataset mnist --model cnn3b "${args[@]}" --epochs 8 --batch-size 30 --seed 0 \
    --data-root "$DATA_ROOT" --out "$OUT/$name" --resume --no-progress
done
