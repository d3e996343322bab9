#!/usr/bin/env bash
# Re-measures the claims of seeds 001 (Diff-OneBit) and 000 (SIM-DMIS) for docs/results.md:
# every experiments/seed00[01]-*.json in dependency order (tuning first; its picks are written
# into the later configs by hand, see docs/results.md). Finished cells are kept, so an
# interrupted run resumes where it stopped. About 4 hours on 2 cores.
#   scripts/seed-experiments.sh [TWEEDIE] [NAME ...]     (default: all, in the order below)
set -euo pipefail
TWEEDIE=${1:-build/tweedie}
shift || true
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
THREADS=${THREADS:-2}
ALL=(seed001-tune seed001-tune-noisy seed000-cs seed001-table1 seed001-zeta seed001-lambda seed001-nfe seed001-sigma
     seed001-inpainting seed001-inpainting-linear seed000-sim seed001-logistic seed001-table1-s0.84
     seed001-table1-raw)
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=("${ALL[@]}")
for name in "${NAMES[@]}"; do
  echo "== $name"
  "$TWEEDIE" experiment "experiments/$name.json" --threads "$THREADS"
done
