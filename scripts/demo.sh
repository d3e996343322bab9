#!/usr/bin/env bash
# The main job on the shipped data: 1-bit compressed sensing of Fashion-MNIST test images with
# the shipped prior, every 1-bit method side by side (experiments/onebit-demo.json ->
# results/demo/onebit/table.md and comparison_*.png). Before that it exports the data (a grid of
# the first 64 Fashion-MNIST test images, the classic test images) and samples the prior.
set -euo pipefail
TWEEDIE=${1:-build/tweedie}
OUT=${2:-results/demo}
mkdir -p "$OUT"
"$TWEEDIE" --version
"$TWEEDIE" dataset fashion-mnist --split test --count 64 --cols 8 -o "$OUT/fashion_mnist_test64.png" \
  --labels "$OUT/fashion_mnist_test64_labels.npy"
for name in camera astronaut brick moon; do
  "$TWEEDIE" dataset "$name" --size 256 -o "$OUT/$name.png"
done
"$TWEEDIE" info "$OUT/fashion_mnist_test64.png"
# Unconditional samples from the converged Fashion-MNIST prior (models/fmnist32-long, see its card;
# the step-2500 prior models/fmnist32 stays the default of configs that name no prior).
PRIOR=$(dirname "$0")/../models/fmnist32-long/model.safetensors
if [ -f "$PRIOR" ]; then
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} "$TWEEDIE" sample --model "$PRIOR" --count 64 --cols 8 \
    --batch-size 64 --steps 50 --seed 0 -o "$OUT/prior_samples_ddim50.png"
fi
# The 1-bit CS comparison (a few minutes on 2 cores); resumable: finished cells are kept.
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} "$TWEEDIE" experiment "$(dirname "$0")/../experiments/onebit-demo.json" \
  -o "$OUT/onebit"
cat "$OUT/onebit/table.md"
echo "demo: outputs in $OUT/ (1-bit comparison: $OUT/onebit/table.md, $OUT/onebit/comparison_*.png)"
