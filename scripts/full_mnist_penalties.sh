#!/usr/bin/env bash
# The full-data check of issue 2: CNN3b on full MNIST, the seed's 8 epochs (Adam 1e-3, batch 30),
# each penalty at weight 0.1 (one process per model, e.g. to spread them over machines). Run folders land
# where the constraints study looks for them; the study trains the baseline itself, monitoring the six
# penalties (the curves of its report), and evaluates every model.
# Usage: scripts/full_mnist_penalties.sh [DATA_ROOT] [OUT]
set -euo pipefail
DATA_ROOT=${1:-../shared/data}
OUT=${2:-results/constraints-mnist/runs}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for penalty in gradient_l1 smoothness locality fidelity consistency symmetry; do
  explainreg train --dataset mnist --model cnn3b --penalty "$penalty=0.1" --epochs 8 --batch-size 30 --seed 0 \
    --data-root "$DATA_ROOT" --out "$OUT/$penalty-w0.1" --resume --no-progress
done
