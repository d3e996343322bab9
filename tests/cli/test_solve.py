"""tweedie solve end to end: simulate -> solve with the shipped prior, outputs and report
checked with numpy (PSNR recomputed, prior hash recomputed), and the bad-input errors."""
import hashlib
import json
import os

import numpy as np

from tweedie_cli import CliTestCase, run

SOURCE = os.environ.get("TWEEDIE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PRIOR = os.path.join(SOURCE, "models", "fmnist32-long", "model.safetensors")  # the default


def psnr(a, b):
    """PSNR of images in [-1, 1] (data range 2), per item."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(4.0 / mse)


class Solve(CliTestCase):
    def simulate(self, *args, out="p"):
        d = self.path(out)
        run("simulate", *args, "-o", d, "--quiet", "--threads", 2, check=0)
        return d

    def test_sim_dmis_on_one_bit_fashion_mnist(self):
        p = self.simulate("--input", "fashion-mnist:test:0-3", "--op", "gaussian:ratio=0.5",
                          "--channel", "sign:sigma=0.3", "--seed", 1)
        out = self.path("sim")
        r = run("solve", "--problem", p, "--method", "sim-dmis", "--set", "inversion_steps=10",
                "--set", "sampling_steps=10", "--threads", 2, "-o", out, check=0)
        self.assertIn("sim-dmis: 4 items, 20 NFE", r.stdout)
        for f in ("estimate.npy", "estimate.png", "comparison.png", "report.json"):
            self.assertTrue(os.path.exists(os.path.join(out, f)), f)
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        est = np.load(os.path.join(out, "estimate.npy"))
        x = np.load(os.path.join(p, "x.npy"))
        self.assertEqual(est.shape, (4, 1, 32, 32))
        self.assertTrue(np.isfinite(est).all())
        # the report's PSNR is the PSNR of the written estimate
        np.testing.assert_allclose([i["psnr"] for i in rep["metrics"]["images"]], psnr(est, x), rtol=1e-5)
        self.assertAlmostEqual(rep["metrics"]["mean"]["psnr"], psnr(est, x).mean(), places=4)
        for key in ("ssim", "cosine", "rel_norm_error", "classifier_feature_distance"):
            self.assertIn(key, rep["metrics"]["mean"])
        # cost, resolved options and provenance
        self.assertEqual(rep["cost"]["nfe"], 20)
        self.assertEqual(rep["options"]["inversion_steps"], 10)
        self.assertEqual(rep["options"]["c_s"], 0)
        with open(PRIOR, "rb") as f:
            self.assertEqual(rep["prior"]["sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertIn("gaussian:m=512", rep["problem"]["operator"]["spec"])
        # the estimate points towards the truth: far better than a random image would
        xc, ec = x.reshape(4, -1) - x.mean(), est.reshape(4, -1) - est.mean()
        cos = (xc * ec).sum(1) / np.linalg.norm(xc, axis=1) / np.linalg.norm(ec, axis=1)
        self.assertGreater(cos.mean(), 0.5, cos)

    def test_bad_inputs_are_one_line_errors(self):
        p = self.simulate("--input", "fashion-mnist:test:0-1", "--op", "gaussian:m=64", "--channel", "sign:sigma=0.5")
        out = self.path("o")
        self.assertUsageError(run("solve", "--problem", p, "--method", "nope", "-o", out), "unknown method 'nope'")
        self.assertUsageError(run("solve", "--problem", p, "--method", "diff-onebit", "--set", "lamda=1", "-o", out),
                              "unknown parameter 'lamda'")
        self.assertUsageError(run("solve", "--problem", p, "--method", "diff-onebit", "--set", "zeta=2", "-o", out),
                              "zeta")
        self.assertUsageError(run("solve", "--problem", p, "--input", "camera", "--op", "identity",
                                  "--method", "sim-dms", "-o", out), "not both")
        # a prior whose images differ from the problem's
        small = self.simulate("--input", "camera", "--size", "16", "--gray", "--op", "gaussian:m=32", out="small")
        self.assertUsageError(run("solve", "--problem", small, "--method", "sim-dms", "-o", out),
                              "[1, 32, 32]", "[1, 16, 16]")
        # measurements that do not fit the operator
        np.save(os.path.join(p, "y.npy"), np.ones((2, 63), np.float32))
        self.assertUsageError(run("solve", "--problem", p, "--method", "sim-dms", "-o", out), "y.npy")
        self.assertFalse(os.path.exists(out), "nothing written on error")

    def test_samples_write_draws_mean_std_and_the_exact_posterior_is_calibrated(self):
        # issue 28: --samples K on the mixture prior, where `exact` draws from the closed-form posterior
        gmm = "gmm:" + os.path.join(SOURCE, "models", "fmnist-gmm", "gmm.safetensors")
        p = self.simulate("--input", "fashion-mnist:test:0-5", "--op", "random-mask:ratio=0.7",
                          "--channel", "gaussian:sigma=0.1", "--seed", 2)
        x = np.load(os.path.join(p, "x.npy"))
        out = self.path("exact")
        r = run("solve", "--problem", p, "--prior", gmm, "--method", "exact", "--samples", 16, "--threads", 2,
                "-o", out, check=0)
        self.assertIn("the mean of 16 draws", r.stdout)
        for f in ("samples.npy", "mean.npy", "std.npy", "samples.png", "samples.svg", "estimate.npy", "report.json"):
            self.assertTrue(os.path.exists(os.path.join(out, f)), f)
        draws = np.load(os.path.join(out, "samples.npy"))
        self.assertEqual(draws.shape, (6, 16, 1, 32, 32))
        np.testing.assert_allclose(np.load(os.path.join(out, "mean.npy")), draws.mean(1), atol=1e-6)
        np.testing.assert_allclose(np.load(os.path.join(out, "std.npy")), draws.std(1, ddof=1), atol=1e-5)
        np.testing.assert_allclose(np.load(os.path.join(out, "estimate.npy")), draws.mean(1), atol=1e-6)
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        self.assertEqual(rep["samples"], 16)
        self.assertEqual(rep["cost"]["nfe"], 0)
        per_draw = psnr(draws.reshape(-1, 1, 32, 32), np.repeat(x, 16, 0))
        self.assertAlmostEqual(rep["metrics_draws"]["mean"]["psnr"], per_draw.mean(), places=4)
        # exact draws of a mixture fitted to these images: the truth lies inside the draws' central
        # 90 % interval at most of the pixels that vary (0.85 here; 16 draws' 5-95 % quantiles cover
        # a little less than 90 %), where the mean repeated 16 times covers none
        moving = draws.std(1) > 1e-6
        lo, hi = np.quantile(draws, 0.05, axis=1), np.quantile(draws, 0.95, axis=1)
        inside = ((x >= lo) & (x <= hi))[moving].mean()
        self.assertGreater(inside, 0.75)
        self.assertLess(inside, 0.97)
        # the mean of the draws beats a single draw (the MMSE estimate; about 3 dB for exact draws)
        self.assertGreater(rep["metrics"]["mean"]["psnr"], rep["metrics_draws"]["mean"]["psnr"] + 1.5)
        # a network solver draws too, all K in one batch: one call, K x the NFE of one run's batch
        out = self.path("dps")
        run("solve", "--problem", p, "--method", "dps", "--set", "steps=4", "--samples", 3, "--threads", 2,
            "-o", out, check=0)
        draws = np.load(os.path.join(out, "samples.npy"))
        self.assertEqual(draws.shape, (6, 3, 1, 32, 32))
        self.assertGreater(np.abs(draws[:, 0] - draws[:, 1]).max(), 1e-3, "independent draws differ")
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        self.assertEqual((rep["cost"]["nfe"], rep["solve_calls"]), (4, 1))
        # exact refuses where the posterior is not in closed form, in one line
        self.assertUsageError(run("solve", "--problem", p, "--method", "exact", "-o", self.path("e2")),
                              "needs a Gaussian-mixture prior")

    def test_ddrm_and_ddnm_on_noisy_inpainting(self):
        # seed 001 Table IV's linear baselines: half the pixels, sigma = 0.2, 10 steps each
        p = self.simulate("--input", "fashion-mnist:test:0-3", "--op", "random-mask:ratio=0.5",
                          "--channel", "gaussian:sigma=0.2", "--seed", 3)
        x = np.load(os.path.join(p, "x.npy"))
        self.assertEqual(np.load(os.path.join(p, "y.npy")).shape, (4, 512))
        grey = psnr(np.zeros_like(x), x).mean()  # the mid-grey image: the bar to clear by 3 dB
        for method, extra in (("ddrm", []), ("ddnm", []), ("ddnm", ["--set", "path=svd"])):
            out = self.path(method + "".join(extra).replace("=", "-").replace("--set", ""))
            r = run("solve", "--problem", p, "--method", method, "--set", "steps=10", *extra,
                    "--threads", 2, "-o", out, check=0)
            self.assertIn(f"{method}: 4 items, 10 NFE", r.stdout)
            with open(os.path.join(out, "report.json")) as f:
                rep = json.load(f)
            self.assertEqual(rep["options"]["sigma"], "channel")
            self.assertEqual(rep["cost"]["nfe"], 10)
            est = np.load(os.path.join(out, "estimate.npy"))
            self.assertEqual(est.shape, x.shape)
            self.assertGreater(psnr(est, x).mean(), grey + 3, method)
        # an operator without an SVD view
        q = self.simulate("--input", "fashion-mnist:test:0", "--op", "motion-blur", "--channel", "gaussian:sigma=0.1",
                          out="motion")
        self.assertUsageError(run("solve", "--problem", q, "--method", "ddrm", "-o", self.path("m")), "no SVD view")

    def test_seed002_and_dpnp_solvers_fit_super_resolution_and_refuse_bad_settings(self):
        # SR x4 on 4 images, sigma_y = 0.05: each method at a small budget must beat the bicubic
        # of nothing (mid-grey) by 3 dB and report its cost; bad settings are one-line errors.
        p = self.simulate("--input", "fashion-mnist:test:0-3", "--op", "sr-avg:factor=2",
                          "--channel", "gaussian:sigma=0.05", "--seed", 2)
        x = np.load(os.path.join(p, "x.npy"))
        grey = psnr(np.zeros_like(x), x).mean()
        runs = (("red-diff", ["steps=20"], 20, 20),
                ("red-diff-mo", ["steps=10", "mo_steps=3"], 20, 10 + 30 + 20),
                ("dps-mo", ["steps=10", "mo_steps=3"], 20, 30 + 20),
                # two outer steps; reg=0 and a large scale let 50 PCS steps reach the data; the
                # code's ddpm-pnp order (DDS, PCS, DDS) runs PCS once, pcs-dds twice
                ("dpnp", ["k_start=1", "k=1", "pcs_steps=50", "reg=0", "pcs_scale=5", "dds=ddpm"], None, 50),
                ("dpnp", ["k_start=1", "k=1", "pcs_steps=50", "reg=0", "pcs_scale=5", "dds=ddpm",
                          "order=pcs-dds"], None, 100))
        for i, (method, sets, nfe, grads) in enumerate(runs):
            out = self.path(f"{method}-{i}")
            args = [a for kv in sets for a in ("--set", kv)]
            run("solve", "--problem", p, "--method", method, *args, "--threads", 2, "-o", out, check=0)
            with open(os.path.join(out, "report.json")) as f:
                rep = json.load(f)
            if nfe is not None:
                self.assertEqual(rep["cost"]["nfe"], nfe, method)
            self.assertEqual(rep["cost"]["likelihood_grads"], grads, method)
            est = np.load(os.path.join(out, "estimate.npy"))
            self.assertEqual(est.shape, x.shape)
            self.assertGreater(psnr(est, x).mean(), grey + 3, method)
        out = self.path("bad")
        self.assertUsageError(run("solve", "--problem", p, "--method", "dps-mo", "--set", "sigma_min=100", "-o", out),
                              "sigma_min (100) must be below sigma_max (80)")
        self.assertUsageError(run("solve", "--problem", p, "--method", "red-diff-mo", "--set", "mo_steps=0", "-o", out),
                              "mo_steps must be at least 1 with mo=true")
        self.assertUsageError(run("solve", "--problem", p, "--method", "dpnp", "--set", "eta_min=1", "-o", out),
                              "eta_min (1) must not exceed eta_max (0.4)")
        q = self.simulate("--input", "fashion-mnist:test:0", "--op", "phase", "--channel", "gaussian:sigma=0.05",
                          out="phase")
        self.assertUsageError(run("solve", "--problem", q, "--method", "red-diff", "-o", out), "init=pinv", "no SVD view")
        self.assertUsageError(run("solve", "--problem", q, "--method", "ddrm", "-o", out), "no SVD view")
        self.assertFalse(os.path.exists(out), "nothing written on error")

    def test_self_diffusion_needs_no_prior_and_writes_previews(self):
        # 16 x 16 analytic phantom, half the pixels: no prior is loaded (a missing --prior is fine)
        p = self.simulate("--input", "phantom:16", "--op", "random-mask:ratio=0.5",
                          "--channel", "gaussian:sigma=0.01", "--seed", 2)
        out = self.path("sd")
        r = run("solve", "--problem", p, "--method", "self-diffusion", "--prior", self.path("none.safetensors"),
                "--set", "steps=4", "--set", "iters=30", "--set", "width=8", "--set", "depth=2",
                "--set", "lr=0.01", "--preview-every", 2, "--threads", 2, "-o", out, check=0)
        self.assertIn("self-diffusion: 1 item, 121 NFE", r.stdout)
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        self.assertIsNone(rep["prior"])
        self.assertEqual(rep["options"]["steps"], 4)
        self.assertEqual(rep["options"]["beta_end"], 0.02)
        est = np.load(os.path.join(out, "estimate.npy"))
        x = np.load(os.path.join(p, "x.npy"))
        self.assertEqual(est.shape, (1, 1, 16, 16))
        # better than zero filling (the observed pixels, zeros elsewhere)
        self.assertGreater(psnr(est, x)[0], psnr(np.zeros_like(x), x)[0] + 3)
        self.assertAlmostEqual(rep["metrics"]["mean"]["psnr"], psnr(est, x)[0], places=3)
        for step in (2, 4):
            self.assertTrue(os.path.exists(os.path.join(out, "previews", f"step_{step:04d}.npy")))
        self.assertTrue(np.allclose(np.load(os.path.join(out, "previews", "step_0004.npy")), est, atol=1e-6))

    def test_self_diffusion_bad_sizes_and_complex_measurements(self):
        out = self.path("o")
        self.assertUsageError(run("solve", "--input", "phantom:20", "--op", "identity", "--method", "self-diffusion",
                                  "--set", "depth=3", "-o", out), "divisible by 8")
        self.assertUsageError(run("solve", "--input", "phantom:16", "--op", "identity", "--method", "dip",
                                  "--set", "loss=l2", "-o", out), "loss")
        self.assertFalse(os.path.exists(out), "nothing written on error")

    def test_doa_compares_music_and_self_diffusion(self):
        out = self.path("doa")
        r = run("doa", "--elements", 8, "--grid", 64, "--angles=-20,20", "--snapshots", 200, "--snr", 20,
                "--set", "steps=3", "--set", "iters=30", "--set", "width=8", "--set", "depth=2", "--set", "lr=0.01",
                "--threads", 2, "-o", out, check=0)
        self.assertIn("angle RMSE (deg): MUSIC", r.stdout)
        with open(os.path.join(out, "report.json")) as f:
            rep = json.load(f)
        self.assertEqual(rep["options"]["steps"], 3)
        self.assertTrue(rep["options"]["sigmoid"])  # the radar default, under the --set values
        grid_step = 120 / 63
        self.assertLess(rep["rmse_deg"]["music"], 2 * grid_step)
        rows = open(os.path.join(out, "spectra.csv")).read().splitlines()
        self.assertEqual(rows[0], "angle_deg,truth,music,bartlett,self-diffusion")
        self.assertEqual(len(rows), 65)
        self.assertTrue(open(os.path.join(out, "spectra.svg")).read().startswith("<svg"))
        self.assertUsageError(run("doa", "--angles=70", "-o", out), "outside the span")
        self.assertUsageError(run("doa", "--method", "dps", "-o", out), "without a prior")
