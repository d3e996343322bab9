#!/usr/bin/env bash
# Reproduces the measured tables and figures of docs/lowrank.md (issue G, seed 003's ScaledGD half).
# Every figure is one `tweedie lowrank --config configs/lowrank/NAME.toml -o results/lowrank/NAME`;
# this script runs them one after another at one thread, niced, and prints each summary.
#
#   scripts/lowrank-experiments.sh                 # all (~10 CPU-minutes; 16 min wall on a loaded 2-core box)
#   scripts/lowrank-experiments.sh rpca tucker     # some of them
#
# Env: TWEEDIE_BIN (default build/tweedie), OUT (default results/lowrank).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TWEEDIE_BIN:-build/tweedie}
OUT=${OUT:-results/lowrank}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(sensing-kappa completion-kappa overparam rpca tucker powerlaw)
for name in "${names[@]}"; do
  echo "== $name"
  start=$(date +%s)
  nice -n 10 "$BIN" lowrank --config "configs/lowrank/$name.toml" -o "$OUT/$name" --quiet
  echo "   $(( $(date +%s) - start )) s wall"
  cut -d, -f2,13-17 "$OUT/$name/summary.csv" | column -t -s,
done
