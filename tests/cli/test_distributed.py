"""Distributed runs on the loopback interface (docs/distributed.md): N `tweedie` processes
launched with torchrun's plain environment variables (RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1,
MASTER_PORT, LOCAL_RANK), every wait bounded by --dist-timeout and by the test's own timeout.

- data-parallel training at global batch B equals one process at batch B, within a stated
  float reduction-order tolerance, and a 2-rank checkpoint resumes in one process;
- a 3-rank experiment writes the same results.csv as one process, apart from the timing column;
- killing one rank mid-grid and running again completes the grid, no cell lost or duplicated;
- bad environments are one-line errors with exit 2."""
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess

import numpy as np

from test_train_sample import blob_images, read_safetensors
from tweedie_cli import BIN, CliTestCase, run

# The reduction-order tolerance: a 2-rank all-reduce sums two half-batch mean gradients where
# one process takes one full-batch mean, so the gradients differ by float32 rounding (~1e-7
# relative). AdamW turns that into weight differences of up to about the learning rate times
# the steps for the few weights whose gradient is near zero (its update is ~lr·sign(g)), so the
# bound holds at the default learning rate (2e-4) over 6-8 steps, not for any lr. The guard
# below shows a real difference (another global batch) is >10x the tolerance and >100x the
# measured difference, so the test can fail.
WEIGHT_TOL = 1e-4
TIMEOUT = 300  # seconds for any one launch: a hang fails the test instead of stalling CI

TINY = ["--channel-mult", "1,2", "--attention-ds", "2", "--num-head-channels", "32",
        "--warmup-steps", "2", "--log-every", "2", "--threads", "1", "--seed", "5"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank, world, port):
    env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(port), OMP_WAIT_POLICY="PASSIVE")
    return env


def launch(world, *args):
    """Starts `world` ranks of `tweedie args...`; returns the Popen objects (stdout/stderr piped)."""
    port = free_port()
    return [subprocess.Popen([BIN, *map(str, args)], env=rank_env(r, world, port), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for r in range(world)]


def finish(procs):
    """Waits for every rank (killing all on the test timeout); returns [(code, stdout, stderr)]."""
    out = []
    try:
        for p in procs:
            o, e = p.communicate(timeout=TIMEOUT)
            out.append((p.returncode, o, e))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return out


def run_ranks(world, *args, check=0):
    res = finish(launch(world, *args))
    if check is not None:
        for r, (code, o, e) in enumerate(res):
            if code != check:
                raise AssertionError(f"rank {r}: exit {code}, expected {check}\nstdout: {o}\nstderr: {e}")
    return res


def model_weights(path):
    tensors, _ = read_safetensors(os.path.join(path, "checkpoint.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "ema."))}


def max_diff(a, b):
    assert sorted(a) == sorted(b)
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a)


class DataParallelTraining(CliTestCase):
    def setUp(self):
        super().setUp()
        self.data = self.path("data.npy")
        np.save(self.data, blob_images(32))

    def args(self, out, steps, batch, *extra, channels=32):
        return ["train", "-o", out, "--data", self.data, "--steps", steps, "--batch-size", batch,
                "--model-channels", channels, *TINY, *extra]

    def test_two_ranks_equal_one_rank_and_resume_in_one(self):
        one = self.path("one")
        run(*self.args(one, 6, 4), check=0, env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
        two = self.path("two")
        res = run_ranks(2, *self.args(two, 6, 4, "--dist-timeout", 60))
        self.assertIn("rank 0 of 2: data-parallel, 2 of every 4 images per step", res[0][1])
        self.assertIn("rank 1 of 2: data-parallel", res[1][1])
        a, b = model_weights(one), model_weights(two)
        d = max_diff(a, b)
        self.assertLess(d, WEIGHT_TOL, f"2 ranks vs 1 at global batch 4: max weight difference {d}")
        print(f"\n2 ranks vs 1 at global batch 4, 6 steps: max weight difference {d:.3g}", end=" ")
        # Only rank 0 wrote, and the loss history agrees too.
        with open(os.path.join(one, "loss.csv")) as f1, open(os.path.join(two, "loss.csv")) as f2:
            l1 = [float(r["loss"]) for r in csv.DictReader(f1)]
            l2 = [float(r["loss"]) for r in csv.DictReader(f2)]
        np.testing.assert_allclose(l1, l2, rtol=1e-4)
        # Guard: another global batch (3 instead of 4) moves the weights far more than the tolerance.
        other = self.path("other")
        run(*self.args(other, 6, 3), check=0)
        guard = max_diff(a, model_weights(other))
        print(f"batch 3 vs 4: {guard:.3g}", end=" ")
        self.assertGreater(guard, 10 * WEIGHT_TOL)
        self.assertGreater(guard, 100 * d)
        # Resume with another world size, both ways: the 2-rank checkpoint continued by one
        # process to step 8, and the 1-process checkpoint continued by 2 ranks, equal one process
        # throughout.
        three = self.path("three")
        shutil.copytree(one, three)
        run(*self.args(one, 8, 4), check=0)
        p = run(*self.args(two, 8, 4), check=0)
        self.assertIn("at step 6", p.stdout)
        d8 = max_diff(model_weights(one), model_weights(two))
        self.assertLess(d8, WEIGHT_TOL, f"2 ranks then 1 vs 1 throughout, step 8: max weight difference {d8}")
        res = run_ranks(2, *self.args(three, 8, 4, "--dist-timeout", 60))
        self.assertIn("at step 6", res[0][1])
        d8 = max_diff(model_weights(one), model_weights(three))
        self.assertLess(d8, WEIGHT_TOL, f"1 process then 2 ranks vs 1 throughout, step 8: max weight difference {d8}")

    def test_a_lost_rank_is_one_error_naming_the_survivor_within_the_timeout(self):
        procs = launch(2, *self.args(self.path("lost"), 100000, 4, "--dist-timeout", 20))
        try:
            for line in procs[1].stdout:  # rank 1 has joined and is about to train: kill it (an event, not a time)
                if "data-parallel" in line:
                    break
        finally:
            procs[1].send_signal(signal.SIGKILL)
            procs[1].communicate()
        code, _, err = finish([procs[0]])[0]
        self.assertEqual(code, 1, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"^tweedie: error: rank 0 of 2: lost the process group during all-reduce of "
                                   r"the gradients at step \d+")

    def test_uneven_batch_is_refused_on_every_rank(self):
        res = run_ranks(2, *self.args(self.path("u"), 2, 5, "--dist-timeout", 60), check=None)
        for code, _, err in res:
            self.assertEqual(code, 2, err)
            lines = err.strip().splitlines()
            self.assertEqual(len(lines), 1, err)
            self.assertRegex(lines[0], r"^tweedie: error: --batch-size 5: .*WORLD_SIZE=2")

    def test_checkpoint_of_another_architecture_is_refused_on_every_rank(self):
        out = self.path("arch")
        run(*self.args(out, 2, 4), check=0)
        res = run_ranks(2, *self.args(out, 4, 4, "--dist-timeout", 60, channels=64), check=None)
        for code, _, err in res:
            self.assertEqual(code, 2, err)
            self.assertRegex(err.strip(), r"^tweedie: error: .*checkpoint\.safetensors: checkpoint architecture differs")


class BadEnvironment(CliTestCase):
    def train(self, env, *extra):
        np.save(self.path("d.npy"), np.zeros((4, 1, 16, 16), np.float32))
        return run("train", "-o", self.path("o"), "--data", self.path("d.npy"), "--steps", 1, "--batch-size", 2,
                   "--model-channels", 32, *TINY, *extra, env=dict(os.environ, **env))

    def test_rank_not_below_world_size(self):
        p = self.train({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
        self.assertUsageError(p, "RANK=2 but WORLD_SIZE=2: RANK must be below WORLD_SIZE")
        self.assertFalse(os.path.exists(self.path("o")))  # nothing written

    def test_non_numeric_and_missing_variables(self):
        self.assertUsageError(self.train({"RANK": "one", "WORLD_SIZE": "2"}), "RANK=one")
        self.assertUsageError(self.train({"RANK": "0"}), "WORLD_SIZE is not set")
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
        p = run("train", "-o", self.path("o"), "--steps", 1, "--dist", "on", env=env)
        self.assertUsageError(p, "RANK is not set: a distributed run needs RANK, WORLD_SIZE")
        # --dist off ignores the variables: one process, as without them.
        p = self.train({"RANK": "2", "WORLD_SIZE": "2"}, "--dist", "off")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_unreachable_master_after_the_timeout(self):
        port = free_port()  # nobody listens there
        p = self.train({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)},
                       "--dist-timeout", "1")
        self.assertUsageError(p, "rank 1 of 2: cannot join the process group at MASTER_ADDR:MASTER_PORT = "
                                 f"127.0.0.1:{port} within 1000 ms")


def write_config(path, cfg):
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


GRID = {"name": "grid", "images": ["fashion-mnist:test:0-1"], "seed": 4, "batch": 1,
        "problems": [{"name": "cs", "op": "gaussian:m=128", "channel": "sign:sigma=0.3"},
                     {"name": "lin", "op": "gaussian:m=128", "channel": "gaussian:sigma=0.1"}],
        "methods": [{"method": "sim-dms", "set": {"sampling_steps": [1, 2, 3]}}]}
CELLS = 6


def rows_without_timing(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        del r["seconds_per_image"]
    return rows


def cells_logged(outputs, what):
    """Cell ids from lines 'rank R of W: cell i/N ID: <what>...'."""
    ids = []
    for o in outputs:
        ids += re.findall(r"cell \d+/\d+ (\S+): " + what, o)
    return ids


class ShardedExperiment(CliTestCase):
    def test_three_ranks_equal_one_rank(self):
        cfg = write_config(self.path("grid.json"), GRID)
        one, three = self.path("one"), self.path("three")
        run("experiment", cfg, "-o", one, "--threads", 1, check=0, env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
        res = run_ranks(3, "experiment", cfg, "-o", three, "--threads", 1, "--dist-timeout", 120)
        self.assertIn("6 cells computed, 0 kept", res[0][1])
        ran = cells_logged([o for _, o, _ in res], "running")
        self.assertEqual(len(ran), CELLS)          # each cell computed once, by some rank
        self.assertEqual(len(set(ran)), CELLS)
        a, b = rows_without_timing(os.path.join(one, "results.csv")), rows_without_timing(os.path.join(three, "results.csv"))
        self.assertEqual(len(a), CELLS * 2)
        self.assertEqual(a, b)
        for name in ("table.md", "experiment.json", "comparison_cs.png", "sweep_cs_sim-dms_sampling_steps.csv"):
            self.assertTrue(os.path.exists(os.path.join(three, name)), name)
        # A sharded --dry-run lists (on rank 0) and every rank leaves cleanly.
        res = run_ranks(2, "experiment", cfg, "-o", three, "--dry-run", "--dist-timeout", 60)
        self.assertEqual(len(re.findall(r"done before, kept", res[0][1])), CELLS)
        # Guard: the comparison sees a real change (another seed gives other numbers).
        other = dict(GRID, seed=5)
        run("experiment", write_config(self.path("other.json"), other), "-o", self.path("other"), "--threads", 1,
            check=0)
        self.assertNotEqual(a, rows_without_timing(os.path.join(self.path("other"), "results.csv")))

    def test_killed_rank_then_rerun_loses_and_repeats_no_cell(self):
        cfg = write_config(self.path("grid.json"), GRID)
        out = self.path("out")
        args = ["experiment", cfg, "-o", out, "--threads", 1, "--dist-timeout", 30]
        procs = launch(3, *args)
        # Kill rank 1 as soon as it starts a cell (an event, not a time): its cell is unfinished.
        killed_out = ""
        try:
            for line in procs[1].stdout:
                killed_out += line
                if re.search(r"cell \d+/\d+ \S+: running", line):
                    procs[1].send_signal(signal.SIGKILL)
                    break
        finally:
            if procs[1].poll() is None:
                procs[1].send_signal(signal.SIGKILL)
        procs[1].communicate()  # reaps it and closes its pipes
        rest = finish([procs[0], procs[2]])
        # The others finish the queue, then stop at the final barrier with one line each; rank 0,
        # which serves the store, names the rank that never arrived. (Rank 2 may instead find the
        # store gone, when rank 0 reached the barrier first and left: also one line.)
        for rank, (code, _, err) in zip((0, 2), rest):
            self.assertEqual(code, 1, err)
            lines = err.strip().splitlines()
            self.assertEqual(len(lines), 1, err)
            self.assertRegex(lines[0], rf"^tweedie: error: rank {rank} of 3: lost the (process group|store)")
        # Rank 1 is always named, rank 0 never; rank 2 is named too when it was still finishing
        # its last cell as rank 1's connection closed (the barrier fails at once; it does not
        # wait out the timeout for the live ranks).
        missing = re.search(r"\(ranks not yet arrived when it failed: ([0-9, ]+)\)", rest[0][2])
        self.assertIsNotNone(missing, rest[0][2])
        self.assertIn(missing.group(1), ("1", "1, 2"), rest[0][2])
        self.assertFalse(os.path.exists(os.path.join(out, "results.csv")))
        first = [killed_out] + [o for _, o, _ in rest]
        finished1 = cells_logged(first, "PSNR")
        killed_cell = cells_logged([killed_out], "running")[0]
        stored = {c for c in (os.path.relpath(os.path.dirname(p), os.path.join(out, "cells"))
                              for p in _cell_jsons(out))}
        self.assertEqual(set(finished1), stored)
        self.assertNotIn(killed_cell, stored)
        # Again, all three ranks: only the missing cells run, each once.
        res = run_ranks(3, *args)
        ran2 = cells_logged([o for _, o, _ in res], "running")
        self.assertEqual(len(ran2), len(set(ran2)))
        self.assertEqual(set(ran2) | stored, {f"{p}/sim-dms/sampling_steps={s}" for p in ("cs", "lin") for s in (1, 2, 3)})
        self.assertFalse(set(ran2) & stored)
        self.assertIn(killed_cell, ran2)
        print(f"\nrun 1 stored {len(stored)} cells, rank 1 killed in {killed_cell}; run 2 ran {len(ran2)}", end=" ")
        self.assertIn(f"{len(ran2)} cells computed, {CELLS - len(ran2)} kept", res[0][1])
        rows = rows_without_timing(os.path.join(out, "results.csv"))
        keys = [(r["problem"], r["setting"], r["image"]) for r in rows]
        self.assertEqual(len(keys), CELLS * 2)
        self.assertEqual(len(set(keys)), CELLS * 2)


def _cell_jsons(out):
    for root, _, files in os.walk(os.path.join(out, "cells")):
        if "cell.json" in files:
            yield os.path.join(root, "cell.json")
