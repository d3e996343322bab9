#!/usr/bin/env bash
# Measures a trained prior for its model card: Tweedie denoising PSNR on 1000 held-out
# Fashion-MNIST test images at σ ∈ {0.1, 0.2, 0.5, 1.0} beside the noisy input and the best
# Gaussian filter, and a 10x10 grid of DDIM samples (100 steps). Outputs go beside the model.
set -euo pipefail
TWEEDIE=${TWEEDIE:-build/tweedie}
DIR=${1:-models/fmnist32}
THREADS=${THREADS:-2}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
"$TWEEDIE" denoise-eval --model "$DIR/model.safetensors" --count 1000 --sigmas 0.1,0.2,0.5,1.0 \
  --seed 0 --threads "$THREADS" -o "$DIR/denoise_eval.json"
"$TWEEDIE" sample --model "$DIR/model.safetensors" --count 100 --cols 10 --steps 100 --sampler ddim \
  --eta 0 --seed 0 --threads "$THREADS" -o "$DIR/samples_ddim100.png"
