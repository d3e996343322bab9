#!/bin/bash
# Seed 004 (self-diffusion) experiments: MRI self-diffusion vs DIP, the resampling ablation and a
# T x K grid (tweedie experiment configs), 1-D compressed sensing, error by frequency band across
# levels, and radar angle of arrival. Outputs under results/seed004/. About 25 minutes on one idle core.
# Usage: scripts/seed004-experiments.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-build}/tweedie
export OMP_WAIT_POLICY=PASSIVE
R=results/seed004
N="nice -n 5"
mkdir -p $R/cs1d

# 1. MRI 4x / 8x, self-diffusion vs DIP (phantom, camera at 64 x 64)
$N $T experiment experiments/seed004-mri.json --threads 1

# 2. 1-D compressed sensing: length 128, 35 Gaussian measurements (A ~ N(0, 1/35)), noiseless.
#    The signal: three tones, sin(2 pi 3n/128) + 0.5 cos(2 pi 7n/128) + 0.25 sin(2 pi 15n/128).
"${PYTHON:-/usr/bin/python3}" - <<'PY'
import numpy as np
n = np.arange(128)
x = np.sin(2*np.pi*3*n/128) + 0.5*np.cos(2*np.pi*7*n/128) + 0.25*np.sin(2*np.pi*15*n/128)
np.save("results/seed004/cs1d/signal.npy", x.astype(np.float32)[None, :])
PY
CS="--input $R/cs1d/signal.npy --op gaussian:m=35 --channel gaussian:sigma=0 --threads 1 --quiet"
NET="--set width=16 --set normalize=false --set loss=norm --set fourier_l1=0.01 --set lr=1e-3"
$N $T solve $CS --method self-diffusion --set steps=40 --set iters=50 --set beta_start=1e-6 --set beta_end=4e-3 \
  $NET --bands 16 -o $R/cs1d/self-diffusion   # also the coarse-to-fine plot (bands.svg)
$N $T solve $CS --method dip --set iters=2000 $NET -o $R/cs1d/dip

# 3. Radar: 16-element ULA, sources at -20, 5, 12 degrees, 50 snapshots, 10 dB, 256-point grid over +-60 degrees
$N $T doa --elements 16 --grid 256 --angles=-20,5,12 --snapshots 50 --snr 10 --trials 2 --threads 1 -o $R/radar

# 4. Ablations on MRI 4x: no noise resampling, T x K grid
$N $T experiment experiments/seed004-ablation.json --threads 1
# ... and the resampling ablation on the camera image too
$N $T solve --input camera:64 --op mri:accel=4 --channel gaussian:sigma=0 --method self-diffusion --set resample=false \
  --set steps=40 --set iters=50 --set beta_end=0.01 --set loss=norm --set tv=0.0001 --set width=16 --set depth=4 \
  --threads 1 --quiet -o $R/no-resample-camera
