#!/usr/bin/env bash
# Continues training the Fashion-MNIST prior in the background-friendly way the model card
# records: niced, passive OpenMP threads, resumable (re-run to resume from OUT/checkpoint.safetensors).
#
#   scripts/train-prior.sh [OUT] [extra tweedie train flags...]
#
# OpenBLAS (which LibTorch 1.13 calls for the attention products and linear layers) picks its
# kernels from the CPU it detects; on virtual machines it can fall back to the generic
# "Prescott" SSE3 kernels, 3-6x slower (bench_unet --profile-train: 22 % of a training step).
# Unless OPENBLAS_CORETYPE is already set, this picks the kernel family the CPU's flags allow.
# The kernels compute the same products to float32 rounding; the weights' names and format do
# not change.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/models/fmnist32-long}
shift || true
BIN=${TWEEDIE:-$ROOT/build/tweedie}
if [[ -z "${OPENBLAS_CORETYPE:-}" ]]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell
  fi
fi
export OMP_WAIT_POLICY=PASSIVE
# nice alone does not yield to other sessions' jobs: with the kernel's autogroup scheduling
# (sched_autogroup_enabled = 1, Debian's default) CPU is first shared equally between sessions,
# and nice only orders threads within one. Measured here: a nice-19 training run started with
# setsid took ~55 % of a core beside a nice-0 job in another session, until its autogroup was
# niced too. So the session's autogroup gets nice 19 as well (where the kernel allows it).
echo 19 > /proc/self/autogroup 2>/dev/null || true
exec nice -n 19 "$BIN" train -o "$OUT" --steps 100000 --batch-size 32 --checkpoint-every 100 \
  --log-every 25 --threads 2 --seed 1 "$@"
