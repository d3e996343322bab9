#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang + ASan/UBSan) and runs each target: first its
# regression inputs (fuzz/regressions/<target>/, each must pass), then FUZZ_SECONDS of fuzzing
# from a scratch copy of its seed corpus (the committed corpus never grows during a run).
# Exits non-zero if any target crashes, reports a sanitizer error, times out or runs out of
# memory; the input that did it is saved under fuzz/findings/<target>/ (git-ignored).
#
#   scripts/fuzz.sh                         # every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh npy    # one target, 10 minutes
#   FUZZ_RUNS=1000000 scripts/fuzz.sh       # a fixed number of executions instead of a time
#   FUZZ_SECONDS=0 scripts/fuzz.sh          # build and replay the regressions only (CI)
#
# Environment: FUZZ_BUILD (build-fuzz), FUZZ_SECONDS (60), FUZZ_RUNS (unset), FUZZ_JOBS (build
# jobs, 2), FUZZ_CXX (clang++-14), FUZZ_CC (clang-14), FUZZ_NICE (10), FUZZ_ARGS (extra
# libFuzzer flags). Installs clang-14 and libclang-rt-14-dev first if they are missing
# (scripts/install-deps.sh fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BUILD=${FUZZ_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
RUNS=${FUZZ_RUNS:-}
JOBS=${FUZZ_JOBS:-2}
NICE=${FUZZ_NICE:-10}
ALL_TARGETS=(npy png safetensors pickle torch_pt zip config problem)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")

# Longest input each target is fuzzed with: a little above its largest seed.
max_len() {
  case $1 in
    npy|config|problem) echo 4096 ;;
    png|safetensors|pickle) echo 16384 ;;
    torch_pt|zip) echo 20000 ;;
    *) echo 8192 ;;
  esac
}

bash scripts/install-deps.sh fuzz

if [ ! -f "$BUILD/build.ninja" ]; then
  CC=${FUZZ_CC:-clang-14} CXX=${FUZZ_CXX:-clang++-14} cmake -S . -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DTWEEDIE_FUZZ=ON -DTWEEDIE_BUILD_TESTS=OFF \
    -DTWEEDIE_BUILD_BENCH=OFF -DTWEEDIE_PCH=OFF -DTWEEDIE_PYTHON=OFF
fi
nice -n "$NICE" cmake --build "$BUILD" -j "$JOBS" --target $(printf 'fuzz_%s ' "${TARGETS[@]}")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1

LOGS="$BUILD/fuzz-logs"
mkdir -p "$LOGS"
failed=()
for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz/fuzz_$t"
  common=(-rss_limit_mb=2048 -timeout=10 "-max_len=$(max_len "$t")")
  [ -f "fuzz/dict/$t.dict" ] && common+=("-dict=fuzz/dict/$t.dict")
  findings="fuzz/findings/$t"
  mkdir -p "$findings"

  # 1. The regressions: each crashed once; each must now pass.
  shopt -s nullglob
  regressions=(fuzz/regressions/"$t"/*)
  shopt -u nullglob
  if [ ${#regressions[@]} -gt 0 ]; then
    echo "== $t: replaying ${#regressions[@]} regression input(s)"
    if ! nice -n "$NICE" "$bin" "${common[@]}" "${regressions[@]}" > "$LOGS/$t.regressions.log" 2>&1; then
      tail -n 40 "$LOGS/$t.regressions.log"
      echo "== $t: a regression input fails again (log: $LOGS/$t.regressions.log)"
      failed+=("$t(regression)")
      continue
    fi
  fi

  # 2. Fuzzing from a scratch copy of the seed corpus.
  if [ -n "$RUNS" ]; then limit=("-runs=$RUNS"); else limit=("-max_total_time=$SECONDS_EACH"); fi
  [ -z "$RUNS" ] && [ "$SECONDS_EACH" = 0 ] && continue
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/tweedie-fuzz-$t.XXXXXX")
  cp -r "fuzz/corpus/$t/." "$scratch/"
  echo "== $t: fuzzing (${limit[*]}), corpus copy in $scratch, log $LOGS/$t.log"
  start=$(date +%s)
  set +e
  # shellcheck disable=SC2086
  nice -n "$NICE" "$bin" "${common[@]}" "${limit[@]}" -print_final_stats=1 \
    "-artifact_prefix=$findings/" ${FUZZ_ARGS:-} "$scratch" > "$LOGS/$t.log" 2>&1
  rc=$?
  set -e
  elapsed=$(( $(date +%s) - start ))
  stats=$(grep -E '^(#[0-9]+.*(DONE|INITED)|stat::)' "$LOGS/$t.log" | tr '\n' ' ' | sed 's/  */ /g')
  echo "   rc=$rc, ${elapsed}s, corpus $(ls "$scratch" | wc -l) files; $stats"
  if [ $rc -ne 0 ]; then
    grep -E 'ERROR: (AddressSanitizer|libFuzzer)|runtime error|terminate called|what\(\)|Test unit written' \
      "$LOGS/$t.log" | head -n 10
    failed+=("$t")
  fi
  rm -rf "$scratch"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs under fuzz/findings/, logs under $LOGS/)"
  exit 1
fi
echo "fuzz: all targets passed: ${TARGETS[*]}"
