"""Storage faults (issue 32 item 2): a write that fails because the file-size limit is reached
(RLIMIT_FSIZE, `ulimit -f`: a full disk for one process, made without privileges) gives one line
naming the path, exit 2, no temp file left, nothing written before lost; the run completes when
the limit is lifted. Python ignores SIGXFSZ but subprocess restores its default (killing the
process) in the child, so these runs also check that tweedie ignores it (core/interrupt.h)."""
import glob
import json
import os
import resource

from test_train_sample import TINY, blob_images
from tweedie_cli import CliTestCase, run

SOLVE = ["solve", "-i", "fashion-mnist:test:0-1", "--op", "sr-avg:factor=2", "--channel", "gaussian:sigma=0.05",
         "--method", "ddrm", "--set", "steps=3", "--threads", "1", "--quiet"]


def file_limit(kib):
    """preexec_fn: files of at most `kib` KiB (an 8 KiB estimate.npy of two images does not fit in 4)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))


def snapshot(folder):
    """{relative path: bytes} of every file under folder."""
    out = {}
    for path in glob.glob(os.path.join(folder, "**", "*"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


class StorageFaults(CliTestCase):
    def assertNoTempFiles(self, folder):
        left = [p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True) if ".tmp-" in os.path.basename(p)]
        self.assertEqual(left, [], "staged files left behind")

    def test_solve_past_the_size_limit_is_one_line_and_writes_nothing(self):
        out = self.path("out")
        r = run(*SOLVE, "-o", out, preexec_fn=file_limit(4))
        self.assertUsageError(r, os.path.join(out, "estimate.npy"), "File too large")
        self.assertFalse(os.path.exists(out))
        self.assertNoTempFiles(self.tmp)
        # an earlier output stays as it was
        run(*SOLVE, "-o", out, check=0)
        before = snapshot(out)
        r = run(*SOLVE[:-5], "--set", "steps=4", "--threads", "1", "--quiet", "-o", out, preexec_fn=file_limit(4))
        self.assertUsageError(r, "File too large")
        self.assertEqual(snapshot(out), before)
        self.assertNoTempFiles(self.tmp)

    def test_experiment_keeps_its_cells_and_resumes_after_the_fault(self):
        cfg = {"name": "faults", "images": ["fashion-mnist:test:0-1"], "seed": 0,
               "problems": [{"name": "sr", "op": "sr-avg:factor=2", "channel": "gaussian:sigma=0.05"}],
               "methods": [{"method": "ddrm", "set": {"steps": [3, 4]}}]}
        path, out = self.path("faults.json"), self.path("exp")
        with open(path, "w") as f:
            json.dump(cfg, f)
        run("experiment", path, "-o", out, "--threads", 1, "--quiet", check=0)
        cells = {k: v for k, v in snapshot(out).items() if k.startswith("cells")}
        self.assertEqual(len(cells), 4)  # two cells: cell.json and estimate.npy each
        # a third setting, run with no room for its estimate: one line, the two stored cells untouched
        cfg["methods"][0]["set"]["steps"] = [3, 4, 5]
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = run("experiment", path, "-o", out, "--threads", 1, "--quiet", preexec_fn=file_limit(4))
        self.assertUsageError(r, os.path.join(out, "cells", "sr", "ddrm", "steps=5", "estimate.npy"), "File too large")
        self.assertEqual({k: v for k, v in snapshot(out).items() if k.startswith("cells")}, cells)
        self.assertNoTempFiles(out)
        # the limit lifted, the rerun computes only the missing cell
        r = run("experiment", path, "-o", out, "--threads", 1, check=0)
        self.assertIn("(1 cells computed, 2 kept)", r.stdout)
        self.assertTrue(os.path.exists(os.path.join(out, "cells", "sr", "ddrm", "steps=5", "cell.json")))

    def test_train_fails_cleanly_at_its_checkpoint_and_runs_when_room_is_made(self):
        import numpy as np

        data = self.path("blobs.npy")
        np.save(data, blob_images(8))
        out = self.path("run")
        args = ["train", "-o", out, "--data", data, "--steps", "4", "--checkpoint-every", "2", *TINY]
        r = run(*args, preexec_fn=file_limit(16))  # the checkpoint (weights and Adam's moments) is larger
        self.assertUsageError(r, "File too large", out)
        self.assertNoTempFiles(self.tmp)
        run(*args, check=0)
        self.assertTrue(os.path.exists(os.path.join(out, "model.safetensors")))
