#!/usr/bin/env bash
# The sharded-experiment bench (docs/distributed.md): the seed-001 Table I grid
# (experiments/seed001-table1.json, 8 cells) on the first N test images, run by 1 rank and then by
# R ranks of one thread each on 127.0.0.1; prints wall and CPU times, the speed-up, its
# efficiency, each rank's cells, and checks that results.csv is the same apart from timing.
#   scripts/bench-distributed.sh [IMAGES=8] [RANKS=2] [TWEEDIE=build/tweedie]
set -euo pipefail
N=${1:-8}; R=${2:-2}; BIN=$(realpath "${3:-build/tweedie}")
cd "$(dirname "$0")/.."
W=$(mktemp -d /tmp/tweedie-bench-dist.XXXXXX)
python3 - "$N" "$W/grid.json" <<'PY'
import json, sys
c = json.load(open("experiments/seed001-table1.json"))
n = int(sys.argv[1])
c.update(name=f"seed001-table1-{n}img", images=[f"fashion-mnist:test:0-{n - 1}"], batch=n)
c.pop("output")
json.dump(c, open(sys.argv[2], "w"))
PY
export OMP_WAIT_POLICY=PASSIVE
# One thread per rank means OpenBLAS too: LibTorch's --threads does not bound OpenBLAS's own
# pthread pool, which otherwise lets a "one-thread" rank use 1.3 cores (docs/distributed.md).
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N)
/usr/bin/time -f "1 rank: %U s user" "$BIN" experiment "$W/grid.json" -o "$W/one" --threads 1 > "$W/one.log"
t1=$(date +%s.%N)
export MASTER_ADDR=127.0.0.1 MASTER_PORT=${MASTER_PORT:-29517} WORLD_SIZE=$R
for ((r = 0; r < R; ++r)); do
  RANK=$r LOCAL_RANK=$r /usr/bin/time -f "rank $r of $R: %U s user" \
    "$BIN" experiment "$W/grid.json" -o "$W/many" --threads 1 > "$W/rank$r.log" &
done
wait
t2=$(date +%s.%N)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$t0" "$t1" "$t2" "$R" <<'PY'
import sys
t0, t1, t2, r = map(float, sys.argv[1:])
one, many = t1 - t0, t2 - t1
print(f"wall: 1 rank {one:.1f} s, {int(r)} ranks {many:.1f} s: speed-up {one / many:.2f}x, efficiency {one / many / r:.0%}")
PY
for ((r = 0; r < R; ++r)); do
  echo "rank $r cells:"; grep -o "cell [0-9]*/[0-9]* [^:]*: PSNR.*" "$W/rank$r.log" | sed 's/: PSNR.* NFE, / /'
done
cmp <(cut -d, -f1-11 "$W/one/results.csv") <(cut -d, -f1-11 "$W/many/results.csv") &&
  echo "results.csv: equal apart from the timing column"
echo "outputs in $W"
