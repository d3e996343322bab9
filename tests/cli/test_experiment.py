"""tweedie experiment end to end on a tiny grid with the shipped prior: outputs, resumption
(finished cells are kept, changed ones recomputed) and a swept setting's CSV and plot."""
import csv
import json
import os

from tweedie_cli import CliTestCase, run


class Experiment(CliTestCase):
    def write_config(self, name, cfg):
        path = self.path(name)
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def test_tiny_grid_resumes_and_sweeps(self):
        cfg = {"name": "tiny", "images": ["fashion-mnist:test:0-1"], "seed": 3, "batch": 1,
               "problems": [{"name": "cs", "op": "gaussian:m=256", "channel": "sign:sigma=0.3"}],
               "methods": [{"method": "sim-dms", "set": {"sampling_steps": [1, 2]}}]}
        path = self.write_config("tiny.json", cfg)
        out = self.path("out")
        r = run("experiment", path, "-o", out, "--threads", 2, check=0)
        self.assertIn("2 cells computed, 0 kept", r.stdout)
        with open(os.path.join(out, "results.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 4)  # 2 cells x 2 images
        self.assertEqual({r["setting"] for r in rows}, {"sampling_steps=1", "sampling_steps=2"})
        self.assertEqual({r["nfe"] for r in rows}, {"2", "4"})  # one solve call per image
        for row in rows:
            self.assertTrue(-1 <= float(row["cosine"]) <= 1)
        for name in ("table.md", "experiment.json", "comparison_cs.png", "sweep_cs_sim-dms_sampling_steps.csv",
                     "sweep_cs_sim-dms_sampling_steps.svg"):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        with open(os.path.join(out, "table.md")) as f:
            self.assertIn("| sim-dms | sampling_steps=2 | 4 |", f.read())
        # again: nothing recomputed; a changed setting recomputes only the new cell
        r = run("experiment", path, "-o", out, "--threads", 2, check=0)
        self.assertIn("0 cells computed, 2 kept", r.stdout)
        cfg["methods"][0]["set"]["sampling_steps"] = [2, 3]
        self.write_config("tiny.json", cfg)
        r = run("experiment", path, "-o", out, "--threads", 2, check=0)
        self.assertIn("1 cells computed, 1 kept", r.stdout)
        # a typo in any cell's options fails before anything runs
        cfg["methods"][0]["set"]["sampling_stepz"] = 1
        self.write_config("tiny.json", cfg)
        self.assertUsageError(run("experiment", path, "-o", out), "sampling_stepz")

    def test_an_axis_across_problems_is_plotted(self):
        # three noise levels, listed out of order, each tagged with its sigma
        problems = [{"name": f"s{s}", "op": "gaussian:m=256", "channel": f"sign:sigma={s}", "sweep": {"sigma": s}}
                    for s in (0.8, 0.2, 0.4)]
        cfg = {"name": "axis", "images": ["fashion-mnist:test:0-1"], "seed": 1, "problems": problems,
               "methods": [{"method": "sim-dms", "set": {"sampling_steps": [1, 2]}}]}
        out = self.path("out")
        run("experiment", self.write_config("axis.json", cfg), "-o", out, "--threads", 2, check=0)
        with open(os.path.join(out, "sweep_sigma_sim-dms.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 6)  # 3 problems x 2 settings
        self.assertEqual({(r["sigma"], r["problem"]) for r in rows}, {("0.8", "s0.8"), ("0.2", "s0.2"), ("0.4", "s0.4")})
        # each point is its cell's mean PSNR over the images
        with open(os.path.join(out, "results.csv")) as f:
            per_image = list(csv.DictReader(f))
        for r in rows:
            psnrs = [float(p["psnr"]) for p in per_image
                     if p["problem"] == r["problem"] and p["setting"] == r["other_settings"]]
            self.assertEqual(len(psnrs), 2)
            self.assertAlmostEqual(float(r["psnr_mean"]), sum(psnrs) / 2, places=4)
        with open(os.path.join(out, "sweep_sigma_sim-dms.svg")) as f:
            svg = f.read()
        self.assertIn("PSNR vs sigma", svg)
        self.assertIn("sampling_steps=2", svg)
        cfg["problems"][0]["sweep"] = {"sigma": "high"}
        self.assertUsageError(run("experiment", self.write_config("axis.json", cfg), "-o", out), "sweep.sigma")

    def test_a_diverging_cell_is_recorded_and_the_sweep_goes_on(self):
        # QCS-SGM with a step far past Langevin's stability limit blows up within a few steps
        cfg = {"name": "div", "images": ["fashion-mnist:test:0-1"], "seed": 0,
               "problems": [{"name": "cs", "op": "gaussian:m=256", "channel": "sign:sigma=0.3"}],
               "methods": [{"method": "qcs-sgm", "set": {"levels": 4, "steps_each": 1,
                                                          "step_lr": [2e-4, 1e3]}}]}
        path = self.write_config("div.json", cfg)
        out = self.path("out")
        r = run("experiment", path, "-o", out, "--threads", 2, check=0)
        self.assertIn("step_lr=1e_03: failed (qcs-sgm: the estimate is no longer finite", r.stdout)
        self.assertIn("2 cells computed", r.stdout)
        with open(os.path.join(out, "table.md")) as f:
            table = f.read()
        self.assertRegex(table, r"step_lr=1e\+03 steps_each=1 \| \d+ \| failed")
        self.assertRegex(table, r"step_lr=0.0002 steps_each=1 \| 4 \| -?\d+\.\d\d ±")
        with open(os.path.join(out, "results.csv")) as f:
            rows = [row for row in csv.DictReader(f) if "step_lr=1e+03" in row["setting"]]
        self.assertEqual([row["psnr"] for row in rows], ["", ""])
        # kept as failed on a re-run: not recomputed
        r = run("experiment", path, "-o", out, "--threads", 2, check=0)
        self.assertIn("0 cells computed, 2 kept", r.stdout)

    def test_posterior_eval_scores_draws_against_the_exact_posterior(self):
        # issue 28: K draws per measurement on the mixture prior; exact draws sit at the floor, the
        # posterior mean repeated K times has no coverage, DDRM's draws are scored too
        source = os.environ.get("TWEEDIE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        gmm = "gmm:" + os.path.join(source, "models", "fmnist-gmm", "gmm.safetensors")
        cfg = {"name": "post", "images": ["fashion-mnist:test:0-5"], "seed": 1, "samples": 8, "reference_draws": 64,
               "prior": gmm,
               "problems": [{"name": "inp", "op": "random-mask:ratio=0.7", "channel": "gaussian:sigma=0.05"}],
               "methods": [{"method": "exact"}, {"label": "mean", "method": "exact", "set": {"output": "mean"}},
                           {"method": "ddrm", "set": {"steps": 5}}]}
        path = self.write_config("post.json", cfg)
        out = self.path("out")
        r = run("posterior-eval", path, "-o", out, "--threads", 2, check=0)
        self.assertIn("3 cells computed", r.stdout)
        for name in ("posterior.md", "calibration_inp.svg", "table.md"):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        cells = {}
        for label in ("exact", "mean", "ddrm"):
            d = os.path.join(out, "cells", "inp", label)
            with open(os.path.join(d, os.listdir(d)[0], "cell.json")) as f:
                cells[label] = json.load(f)
        mean = lambda v: sum(v) / len(v)
        ex, rep = cells["exact"]["posterior"], cells["mean"]["posterior"]
        self.assertAlmostEqual(mean(ex["coverage90"]), mean(ex["floor_coverage90"]), delta=0.03)
        self.assertLess(mean(rep["coverage90"]), 0.01)
        self.assertGreater(mean(rep["energy"]), 0.5)
        self.assertEqual(len(cells["ddrm"]["posterior"]["coverage50"]), 6)
        self.assertEqual(len(cells["ddrm"]["metrics"]["draw_psnr"]), 6)
        with open(os.path.join(out, "posterior.md")) as f:
            self.assertIn("| exact | defaults |", f.read())
        # where there is no reference posterior (a noiseless channel: no density): one line, before any work
        cfg["problems"][0]["channel"] = "gaussian:sigma=0"
        self.assertUsageError(run("posterior-eval", self.write_config("bad.json", cfg), "-o", self.path("o2")),
                              "has no reference posterior")
        cfg["problems"][0]["channel"] = "gaussian:sigma=0.05"
        del cfg["samples"]
        self.assertUsageError(run("posterior-eval", self.write_config("bad2.json", cfg), "-o", self.path("o3")),
                              "'samples'")
