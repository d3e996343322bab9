#!/usr/bin/env bash
# The speed goals of issue 15 in one run: the U-Net (build/bench/bench_unet, Google Benchmark)
# beside the same network in PyTorch eager (bench/adm_unet_reference.py --bench), with the same
# weights and thread count; the structured and matrix-free operators (bench_operators --table);
# Diff-OneBit and SIM-DMIS at 3x256x256 (bench_scale). Writes results/bench/{unet,operators,
# scale,goals}.{md,json} and bench.md, all of them in one file with the goals table first.
#
#   scripts/bench.sh BUILD_DIR
#
# Environment:
#   TWEEDIE_BENCH_THREADS  intra-op threads for both sides (default 2)
#   TWEEDIE_BENCH_MODEL    weights to benchmark (tweedie .safetensors, or .pt with its .json);
#                          default: random weights of the shipped architecture, written once and
#                          loaded by both sides
#   BENCH_ROUNDS           alternating C++ / Python rounds (default 2)
#   BENCH_REPETITIONS      repetitions per measurement and round (default 3)
#   BENCH_MIN_TIME         seconds per latency repetition (default 0.5)
#   BENCH_EAGER_CL         1: also time PyTorch eager in channels-last memory format (default 1)
#   BENCH_EAGER_MALLOC     1: also time PyTorch eager with the glibc malloc settings tweedie
#                          applies to itself (tweedie::keep_freed_memory) (default 1)
#   BENCH_OUT              output directory (default results/bench)
#   PYTHON                 the Python with torch and numpy (default /usr/bin/python3)
#   BENCH_SCALE_SIZE       image size of bench_scale (default 256; 0 skips it: about 10 minutes
#                          on 2 cores)
#   OMP_WAIT_POLICY        default PASSIVE: idle OpenMP threads sleep instead of spinning. On a
#                          machine shared with other work, spinning threads (libgomp's default
#                          when threads <= cores) compete with the busy ones for the cores, and
#                          batch-1 latency at 2 threads came out ~30x worse (3 s instead of 90 ms
#                          per NFE) under load from parallel compiles. Set ACTIVE (or "") to time
#                          the default behaviour on an idle machine.
#
# Every figure is the minimum over all repetitions and rounds (the machine may be shared; the
# minimum is the least disturbed run). Timings are only comparable within one run.
set -euo pipefail

BUILD=${1:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${TWEEDIE_BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-2}
REPS=${BENCH_REPETITIONS:-3}
MIN_TIME=${BENCH_MIN_TIME:-0.5}
EAGER_CL=${BENCH_EAGER_CL:-1}
EAGER_MALLOC=${BENCH_EAGER_MALLOC:-1}
OUT=${BENCH_OUT:-results/bench}
BIN="$BUILD/bench/bench_unet"
REF="$ROOT/bench/adm_unet_reference.py"

if [[ ! -x "$BIN" ]]; then
  echo "bench.sh: $BIN not found; build it first (cmake --build $BUILD --target bench_unet;" \
       "Google Benchmark is libbenchmark-dev)" >&2
  exit 1
fi
mkdir -p "$OUT"
RAW="$OUT/raw"
rm -rf "$RAW"
mkdir -p "$RAW"

# One thread count for every pool: LibTorch's OpenMP (at::set_num_threads in both programs) and
# the OpenBLAS that bmm/addmm call into, which keeps its own pthreads and ignores set_num_threads.
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" \
  TWEEDIE_BENCH_THREADS="$THREADS"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY-PASSIVE}"

if [[ -z "${TWEEDIE_BENCH_MODEL:-}" ]]; then
  TWEEDIE_BENCH_MODEL="$RAW/shipped_random.safetensors"
  "$PYTHON" "$REF" --save-weights "$TWEEDIE_BENCH_MODEL" --seed 0
fi
export TWEEDIE_BENCH_MODEL
# Both sides must compute the same function: tweedie writes its output for these inputs and the
# Python side reports the difference from its own (in the report).
"$PYTHON" "$REF" --model "$TWEEDIE_BENCH_MODEL" --write-inputs "$RAW/check_x.npy" "$RAW/check_t.npy"
echo "bench.sh: model $TWEEDIE_BENCH_MODEL, $THREADS threads (OMP_WAIT_POLICY=$OMP_WAIT_POLICY)," \
     "$ROUNDS rounds x $REPS repetitions" >&2

for ((r = 1; r <= ROUNDS; r++)); do
  echo "bench.sh: round $r/$ROUNDS: tweedie (C++)" >&2
  TWEEDIE_BENCH_CHECK="$RAW/check_x.npy:$RAW/check_t.npy:$RAW/check_tweedie_out.npy" \
    "$BIN" --threads="$THREADS" --benchmark_repetitions="$REPS" --benchmark_min_time="$MIN_TIME" \
    --benchmark_out="$RAW/cpp_$r.json" --benchmark_out_format=json >&2
  echo "bench.sh: round $r/$ROUNDS: PyTorch eager" >&2
  "$PYTHON" "$REF" --bench --model "$TWEEDIE_BENCH_MODEL" --threads "$THREADS" \
    --compare "$RAW/check_x.npy" "$RAW/check_t.npy" "$RAW/check_tweedie_out.npy" \
    --repetitions "$REPS" --min-time "$MIN_TIME" --train-min-time "$MIN_TIME" --json "$RAW/eager_$r.json"
  if [[ "$EAGER_CL" == 1 ]]; then
    echo "bench.sh: round $r/$ROUNDS: PyTorch eager, channels-last" >&2
    "$PYTHON" "$REF" --bench --model "$TWEEDIE_BENCH_MODEL" --threads "$THREADS" --channels-last \
      --repetitions "$REPS" --min-time "$MIN_TIME" --train-min-time "$MIN_TIME" --json "$RAW/eagercl_$r.json"
  fi
  if [[ "$EAGER_MALLOC" == 1 ]]; then
    echo "bench.sh: round $r/$ROUNDS: PyTorch eager, tweedie's malloc settings" >&2
    # tweedie::keep_freed_memory (tweedie/core/runtime.h): M_MMAP_THRESHOLD 32 MB, M_TRIM_THRESHOLD 1 GB.
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 \
      "$PYTHON" "$REF" --bench --model "$TWEEDIE_BENCH_MODEL" --threads "$THREADS" \
      --repetitions "$REPS" --min-time "$MIN_TIME" --train-min-time "$MIN_TIME" --json "$RAW/eagermalloc_$r.json"
  fi
done

status=0
"$PYTHON" "$ROOT/bench/bench_report.py" --raw "$RAW" --md "$OUT/unet.md" --json "$OUT/unet.json" ||
  status=$?

echo "bench.sh: operators (bench_operators --table)" >&2
"$BUILD/bench/bench_operators" --table --json "$OUT/operators.json" > "$OUT/operators.md"
SCALE_SIZE=${BENCH_SCALE_SIZE:-256}
rm -f "$OUT/scale.json" "$OUT/scale.md"
if [[ "$SCALE_SIZE" != 0 ]]; then
  echo "bench.sh: Diff-OneBit and SIM-DMIS at 3x${SCALE_SIZE}x${SCALE_SIZE} (bench_scale)" >&2
  "$BUILD/bench/bench_scale" --size "$SCALE_SIZE" --threads "$THREADS" --json "$OUT/scale.json" --md "$OUT/scale.md"
fi
"$PYTHON" "$ROOT/bench/bench_goals.py" --dir "$OUT" --md "$OUT/goals.md" > /dev/null
{
  cat "$OUT/goals.md"
  echo
  cat "$OUT/unet.md"
  printf '\n## Operators: apply + adjoint against a copy (bench_operators --table)\n\n'
  cat "$OUT/operators.md"
  if [[ -f "$OUT/scale.md" ]]; then
    printf '\n## End to end at the seeds'"'"' scale (bench_scale)\n\n'
    cat "$OUT/scale.md"
  fi
} > "$OUT/bench.md"
cat "$OUT/bench.md"
echo "bench.sh: wrote $OUT/bench.md (and unet, operators, scale, goals .md/.json; raw results in $RAW)" >&2
exit "$status"
