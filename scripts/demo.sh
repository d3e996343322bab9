#!/usr/bin/env bash
# The main job on the shipped data. Until the solvers land it exports the data they will use
# (a grid of the first 64 Fashion-MNIST test images, the classic test images) and samples the
# shipped prior.
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
# Unconditional samples from the shipped Fashion-MNIST prior (models/fmnist32, see its card).
PRIOR=$(dirname "$0")/../models/fmnist32/model.safetensors
if [ -f "$PRIOR" ]; then
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} "$TWEEDIE" sample --model "$PRIOR" --count 64 --cols 8 \
    --batch-size 64 --steps 50 --seed 0 -o "$OUT/prior_samples_ddim50.png"
fi
echo "demo: outputs in $OUT/"
