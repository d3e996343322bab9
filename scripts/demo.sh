#!/usr/bin/env bash
# The main job on the shipped data. Until the solvers land it exports the data they will use:
# a grid of the first 64 Fashion-MNIST test images and the classic test images.
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
echo "demo: outputs in $OUT/"
