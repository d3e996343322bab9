"""tweedie lowrank end to end: generate a small completion problem, check the estimate and the
spectral start against numpy, reload the saved problem, and the bad-input errors (exit 2, one
line)."""
import csv
import json
import os

import numpy as np

from tweedie_cli import CliTestCase, run


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class LowRank(CliTestCase):
    def test_generate_solve_reload(self):
        d = self.path("gen")
        run("lowrank", "--task", "completion", "--n1", 40, "--n2", 50, "--rank", 2, "--kappa", 3,
            "--ratio", 0.5, "--method", "scaledgd", "--save-problem", "--seed", 4, "-o", d, "--quiet",
            check=0)
        for name in ("estimate.npy", "left.npy", "right.npy", "errors.csv", "summary.csv",
                     "convergence.svg", "report.json"):
            self.assertTrue(os.path.exists(os.path.join(d, name)), name)
        truth = np.load(os.path.join(d, "problem", "truth.npy"))
        Y = np.load(os.path.join(d, "problem", "observations.npy"))
        mask = np.load(os.path.join(d, "problem", "mask.npy")) != 0
        est = np.load(os.path.join(d, "estimate.npy"))
        self.assertEqual(est.shape, (40, 50))
        self.assertLess(np.linalg.norm(est - truth) / np.linalg.norm(truth), 1e-6)
        self.assertEqual(np.linalg.matrix_rank(truth), 2)
        self.assertTrue(np.all(Y[~mask] == 0))
        # The spectral start is the top-2 SVD of Y/p (MC.m): its error is row 0 of errors.csv.
        # A generated problem uses the nominal p, a loaded one the observed fraction.
        def start_error(p):
            U, s, Vt = np.linalg.svd(Y / p)
            X0 = (U[:, :2] * s[:2]) @ Vt[:2]
            return np.linalg.norm(X0 - truth) / np.linalg.norm(truth)
        rows = read_csv(os.path.join(d, "errors.csv"))
        self.assertEqual(int(rows[0]["iteration"]), 0)
        self.assertAlmostEqual(float(rows[0]["error"]) / start_error(0.5), 1, places=6)
        self.assertLess(float(rows[-1]["error"]), 1e-10)
        report = json.load(open(os.path.join(d, "report.json")))
        r = report["runs"][0]
        self.assertEqual(r["result"]["stop"], "tolerance")
        self.assertEqual(r["options"]["method"], "scaledgd")
        self.assertEqual(r["problem"]["observations"], int(mask.sum()))

        # The saved problem loads back and GD solves it.
        e = self.path("load")
        run("lowrank", "--task", "completion", "--rank", 2, "--method", "gd",
            "--observations", os.path.join(d, "problem", "observations.npy"),
            "--mask", os.path.join(d, "problem", "mask.npy"),
            "--truth", os.path.join(d, "problem", "truth.npy"), "-o", e, "--quiet", "--iterations", 3000,
            check=0)
        rows2 = read_csv(os.path.join(e, "errors.csv"))
        self.assertAlmostEqual(float(rows2[0]["error"]) / start_error(mask.mean()), 1, places=6)
        self.assertLess(float(rows2[-1]["error"]), 1e-10)
        self.assertEqual(rows2[0]["label"], "gd")

    def test_bad_inputs(self):
        self.assertUsageError(run("lowrank", "--n1", 10, "--n2", 12, "--rank", 11, "-o", self.path("a")),
                              "rank 11")
        Y = np.ones((6, 5))
        Y[2, 3] = np.nan
        np.save(self.path("Y.npy"), Y)
        np.save(self.path("M.npy"), np.ones((6, 5), np.uint8))
        self.assertUsageError(run("lowrank", "--rank", 2, "--observations", self.path("Y.npy"),
                                  "--mask", self.path("M.npy"), "-o", self.path("b")),
                              "non-finite")
