#!/usr/bin/env bash
# Watches a training run and scores the prior every EVERY training images with tweedie
# sample-eval (issue 13: "evaluate with item 3 every 100k images"). At the first checkpoint past
# each milestone it copies the EMA weights to RUN/snapshots/step<S>.safetensors and writes
# RUN/evals/step<S>.{json,md,_ddim50.png}. Safe to stop and restart: finished milestones are kept.
#
#   scripts/eval-milestones.sh [RUN] [EVERY]      (defaults: models/fmnist32-long, 100000)
#
# Environment: BATCH (training batch size, default 32), COUNT (samples, default 1000),
# DDPM_STEPS (default 0: DDIM-50 only; the full table adds DDPM at the end), NICE (default 5).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=${1:-$ROOT/models/fmnist32-long}
EVERY=${2:-100000}
BATCH=${BATCH:-32}
COUNT=${COUNT:-1000}
BIN=${TWEEDIE:-$ROOT/build/tweedie}
mkdir -p "$RUN/snapshots" "$RUN/evals"
export OMP_WAIT_POLICY=PASSIVE
# yield to other sessions too: nice orders threads within a session's autogroup only (see
# scripts/train-prior.sh), so the autogroup is niced as well where the kernel allows it
echo "${NICE:-5}" > /proc/self/autogroup 2>/dev/null || true
if [[ -z "${OPENBLAS_CORETYPE:-}" ]] && grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi

step_of() {  # the step recorded in the weights' provenance
  /usr/bin/python3 - "$1" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    meta = json.loads(f.read(n)).get("__metadata__", {})
print(json.loads(meta.get("tweedie.provenance", "{}")).get("step", 0))
PY
}

while true; do
  if [[ -f "$RUN/model.safetensors" ]]; then
    cp "$RUN/model.safetensors" "$RUN/snapshots/.candidate.safetensors"
    step=$(step_of "$RUN/snapshots/.candidate.safetensors")
    images=$((step * BATCH))
    milestone=$((images / EVERY * EVERY))
    done_file="$RUN/evals/milestone-$milestone"
    if (( milestone > 0 )) && [[ ! -f "$done_file" ]]; then
      snap="$RUN/snapshots/step$step.safetensors"
      mv "$RUN/snapshots/.candidate.safetensors" "$snap"
      cp "$RUN/model.json" "${snap%.safetensors}.json"
      echo "$(date -u +%FT%TZ) step $step ($images images): evaluating" >&2
      nice -n "${NICE:-5}" "$BIN" sample-eval --prior "$snap" --count "$COUNT" --ddim-steps 50 \
        --ddpm-steps "${DDPM_STEPS:-0}" --threads 2 -o "$RUN/evals/step$step" -q
      echo "$step $images" > "$done_file"
    fi
  fi
  sleep 60
done
