"""Ctrl-C and SIGTERM (issue 29 item 3, tweedie/core/interrupt.h): a run stops within 1 s of the
signal at its next check point, exits 128 + signal with one line, leaves a command's outputs as they
were, and an experiment or a training run resumes from what it finished."""
import json
import os
import signal
import subprocess
import time

import numpy as np

from test_train_sample import TINY, blob_images
from tweedie_cli import BIN, CliTestCase, run

SOLVE = ["solve", "-i", "fashion-mnist:test:0-3", "--op", "sr-avg:factor=2", "--channel", "gaussian:sigma=0.05",
         "--method", "dps", "--set", "steps=1000", "--threads", "1"]


class Processes(CliTestCase):
    """Starts tweedie in the background and signals it."""

    def start(self, args, marker, stream="stderr"):
        """Starts tweedie and returns it once `marker` has appeared on `stream` (the run is under way)."""
        p = subprocess.Popen([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen = b""
        pipe = p.stderr if stream == "stderr" else p.stdout
        deadline = time.time() + 300
        while marker.encode() not in seen:
            chunk = os.read(pipe.fileno(), 4096)
            self.assertTrue(chunk and time.time() < deadline, f"{args}: never printed {marker!r}: {seen[-500:]!r}")
            seen += chunk
        return p

    def stop(self, p, sig):
        """Sends `sig`; returns (seconds to exit, exit code, the rest of stderr, the rest of stdout)."""
        t0 = time.monotonic()
        p.send_signal(sig)
        rest = p.stderr.read()  # until the process closes it: its exit
        p.wait()
        elapsed = time.monotonic() - t0
        stdout = p.stdout.read().decode()
        p.stdout.close()
        p.stderr.close()
        self.stdout = stdout
        return elapsed, p.returncode, rest.decode()


class Interrupt(Processes):

    def test_solve_stops_within_a_second_and_writes_nothing(self):
        for sig, code, name in ((signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")):
            out = self.path("out-" + name)
            p = self.start(SOLVE + ["-o", out], "nfe ")
            elapsed, rc, rest = self.stop(p, sig)
            self.assertEqual(rc, code, rest)
            self.assertLess(elapsed, 1.0)
            last = rest.replace("\r", "\n").strip().splitlines()[-1]
            self.assertEqual(last, f"tweedie: interrupted by {name}; nothing is half-written: an experiment or "
                                   "a training run resumes from what it finished")
            self.assertFalse(os.path.exists(out), "a stopped solve leaves no output")

    def test_an_existing_output_is_left_as_it_was(self):
        out = self.path("out")
        os.makedirs(out)
        with open(os.path.join(out, "keep.txt"), "w") as f:
            f.write("mine")
        p = self.start(SOLVE + ["-o", out], "nfe ")
        self.assertEqual(self.stop(p, signal.SIGINT)[1], 130)
        self.assertEqual(os.listdir(out), ["keep.txt"])

    def test_posterior_eval_stops_inside_its_sampled_reference(self):
        # 1-bit CS on the mixture prior: the reference is a Gibbs sampler (512 draws of 4 images,
        # about 90 s here) that evaluates no network, so it needs its own stop points
        gmm = os.path.join(os.environ.get("TWEEDIE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")),
                           "models", "fmnist-gmm", "gmm.safetensors")
        cfg = {"name": "pe", "prior": "gmm:" + gmm, "images": ["fashion-mnist:test:0-3"], "seed": 0,
               "samples": 4, "reference_draws": 512,
               "problems": [{"name": "cs1bit", "op": "gaussian:ratio=0.5", "channel": "sign:sigma=0.5"}],
               "methods": [{"method": "dps", "set": {"steps": 3}}]}
        path = self.path("pe.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        p = self.start(["posterior-eval", path, "-o", self.path("pe"), "--threads", "1"], "running", stream="stdout")
        time.sleep(3)  # the 3-step DPS draws are done; the Gibbs reference runs
        elapsed, rc, rest = self.stop(p, signal.SIGINT)
        self.assertEqual(rc, 130, rest)
        self.assertLess(elapsed, 1.0)

    def test_experiment_keeps_finished_cells_and_resumes(self):
        cfg = {"name": "intr", "images": ["fashion-mnist:test:0-1"], "seed": 0,
               "problems": [{"name": "sr", "op": "sr-avg:factor=2", "channel": "gaussian:sigma=0.05"}],
               "methods": [{"method": "dps", "set": {"steps": [20, 1000]}}]}
        path = self.path("intr.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        out = self.path("exp")
        # the first cell (20 steps) is done when the second (1000) starts
        p = self.start(["experiment", path, "-o", out, "--threads", "1"], "cell 2/2", stream="stdout")
        elapsed, rc, rest = self.stop(p, signal.SIGINT)
        self.assertEqual(rc, 130, rest)
        self.assertLess(elapsed, 1.0)
        cells = os.path.join(out, "cells", "sr", "dps")
        self.assertEqual(sorted(os.listdir(cells)), ["steps=20"])  # the stopped cell left nothing
        # resumed with the long cell shortened: the stored one is kept
        cfg["methods"][0]["set"]["steps"] = [20, 30]
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = run("experiment", path, "-o", out, "--threads", 1, check=0)
        self.assertIn("1 cells computed, 1 kept", r.stdout)

    def test_train_writes_a_checkpoint_and_resumes_from_it(self):
        data = self.path("data.npy")
        np.save(data, blob_images(16))
        out = self.path("run")
        args = ["train", "-o", out, "--data", data, "--steps", "100000", "--checkpoint-every", "100000", *TINY]
        p = self.start(args, "step")
        time.sleep(1.0)  # some steps
        elapsed, rc, rest = self.stop(p, signal.SIGINT)
        self.assertEqual(rc, 130, rest)
        self.assertLess(elapsed, 1.0)
        # one process: the steps since the last checkpoint are kept, and a rerun resumes there
        stopped = [l for l in self.stdout.splitlines() if l.startswith("stopped at step ")]
        self.assertEqual(len(stopped), 1, self.stdout)
        step = int(stopped[0].split()[3].rstrip(";"))
        self.assertGreater(step, 0)
        args[6] = str(step + 2)
        r = run(*args, check=0)
        self.assertIn(f"resuming {os.path.join(out, 'checkpoint.safetensors')} at step {step}", r.stdout)


class ExclusiveOutput(Processes):
    """Issue 32 item 3: two tweedie processes never write one output (core/fs.h claim_output)."""

    def test_a_second_run_on_the_same_output_is_refused_with_the_holders_pid(self):
        out = self.path("out")
        first = self.start(SOLVE + ["-o", out], "nfe ")
        second = run(*SOLVE, "-o", out)
        self.assertUsageError(second, "--output " + out, f"in use by another tweedie (pid {first.pid})")
        # the same directory named another way is the same output
        third = run(*SOLVE, "-o", os.path.join(self.tmp, ".", "out"))
        self.assertUsageError(third, f"(pid {first.pid})")
        # another output is not held
        other = self.path("other")
        r = run(*SOLVE[:-4], "--set", "steps=3", "--threads", "1", "-o", other, check=0)
        self.assertTrue(os.path.exists(os.path.join(other, "estimate.npy")), r.stderr)
        self.assertEqual(self.stop(first, signal.SIGINT)[1], 130)
        # the claim died with its process
        run(*SOLVE[:-4], "--set", "steps=3", "--threads", "1", "-o", out, check=0)
        self.assertTrue(os.path.exists(os.path.join(out, "estimate.npy")))

    def test_two_experiments_on_one_output_are_refused(self):
        cfg = {"name": "excl", "images": ["fashion-mnist:test:0-1"], "seed": 0,
               "problems": [{"name": "sr", "op": "sr-avg:factor=2", "channel": "gaussian:sigma=0.05"}],
               "methods": [{"method": "dps", "set": {"steps": 1000}}]}
        path = self.path("excl.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        out = self.path("exp")
        first = self.start(["experiment", path, "-o", out, "--threads", "1"], "running", stream="stdout")
        self.assertUsageError(run("experiment", path, "-o", out, "--threads", 1), f"(pid {first.pid})")
        self.assertEqual(self.stop(first, signal.SIGTERM)[1], 143)
