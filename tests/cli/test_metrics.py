"""tweedie metrics against skimage (SSIM, PSNR) and numpy (cosine, norm error) as oracles, on
21 random image pairs in three invocations (each pays LibTorch's start-up), and its errors."""
import json
import os

import numpy as np

from tweedie_cli import CliTestCase, run

try:
    from PIL import Image
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
except ImportError:  # the oracle is Debian's python3-skimage (scripts/install-deps.sh)
    structural_similarity = None

SSIM_TOL = 1e-4  # issue 5's acceptance bound; the C++ side computes in float64


def skimage_ssim(a01, b01):
    """SSIM of [C, H, W] images in [0, 1] as docs/metrics.md defines it."""
    return structural_similarity(a01, b01, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=1, channel_axis=0)


def pairs(rng, shape):
    """Truth and a noisy, partly blurred estimate, both in [0, 1], float64 [B, C, H, W]."""
    truth = rng.random(shape)
    truth = 0.5 * truth + 0.25 * (np.roll(truth, 1, -1) + np.roll(truth, 1, -2))  # some structure
    noise = rng.normal(0, rng.uniform(0.02, 0.3, (shape[0], 1, 1, 1)), shape)
    return np.clip(truth + noise, 0, 1), truth


class MetricsAgainstSkimage(CliTestCase):
    def setUp(self):
        super().setUp()
        if structural_similarity is None:
            self.skip_missing("python3-skimage / python3-pil not installed")

    def check(self, report, est01, truth01, what):
        self.assertEqual(report["count"], len(est01))
        worst = 0.0
        for i, (e, t) in enumerate(zip(est01, truth01)):
            row = report["images"][i]
            want = skimage_ssim(e, t)
            worst = max(worst, abs(row["ssim"] - want))
            self.assertAlmostEqual(row["ssim"], want, delta=SSIM_TOL, msg=f"{what} image {i} SSIM")
            self.assertAlmostEqual(row["psnr"], peak_signal_noise_ratio(t, e, data_range=1), delta=1e-6,
                                   msg=f"{what} image {i} PSNR")
            x, xh = (2 * t - 1).ravel(), (2 * e - 1).ravel()  # the [-1, 1] signal vectors
            self.assertAlmostEqual(row["cosine"], x @ xh / np.linalg.norm(x) / np.linalg.norm(xh), places=6)
            self.assertAlmostEqual(row["rel_norm_error"], np.linalg.norm(xh) / np.linalg.norm(x) - 1, places=6)
        mean_ssim = np.mean([r["ssim"] for r in report["images"]])
        self.assertAlmostEqual(report["mean"]["ssim"], mean_ssim, places=12)
        return worst

    def test_npy_stacks_and_png_match_skimage(self):
        rng = np.random.default_rng(5)
        worst = 0.0
        # 12 gray 32x32 pairs in the library's [-1, 1] (float32): Fashion-MNIST-like, so the
        # classifier metrics come too when the shipped classifier is present.
        est, truth = pairs(rng, (12, 1, 32, 32))
        est, truth = (2 * est - 1).astype(np.float32), (2 * truth - 1).astype(np.float32)
        np.save(self.path("e.npy"), est)
        np.save(self.path("t.npy"), truth)
        report = json.loads(run("metrics", self.path("e.npy"), self.path("t.npy"), "--json", check=0).stdout)
        e01, t01 = (est.astype(np.float64) + 1) / 2, (truth.astype(np.float64) + 1) / 2
        worst = max(worst, self.check(report, e01, t01, "gray 32x32"))
        if "path" in report["classifier"]:
            for row in report["images"]:
                self.assertGreaterEqual(row["classifier_feature_distance"], 0.0)
                self.assertLessEqual(row["classifier_feature_distance"], 2.0)
            self.assertGreater(report["classifier_frechet_distance"], 0.0)

        # 8 RGB, non-square 40x56 pairs given in [0, 1] (float64) with --range 0,1.
        est, truth = pairs(rng, (8, 3, 40, 56))
        np.save(self.path("e3.npy"), est)
        np.save(self.path("t3.npy"), truth)
        out = self.path("report.json")
        run("metrics", self.path("e3.npy"), self.path("t3.npy"), "--range", "0,1", "--json", "-o", out, check=0)
        with open(out) as f:
            report = json.load(f)
        self.assertIn("skipped", report["classifier"])  # RGB: no classifier metrics
        self.assertNotIn("classifier_feature_distance", report["images"][0])
        worst = max(worst, self.check(report, est, truth, "rgb 40x56"))

        # One gray 8-bit PNG (odd, non-square 31x45) against the same truth as a uint8 [H, W] npy.
        est, truth = pairs(rng, (1, 1, 31, 45))
        e8, t8 = np.round(est[0, 0] * 255).astype(np.uint8), np.round(truth[0, 0] * 255).astype(np.uint8)
        Image.fromarray(e8).save(self.path("e.png"))
        np.save(self.path("t8.npy"), t8)
        report = json.loads(run("metrics", self.path("e.png"), self.path("t8.npy"), "--json", check=0).stdout)
        worst = max(worst, self.check(report, e8[None, None] / 255.0, t8[None, None] / 255.0, "png 31x45"))
        self.assertIsNone(report["classifier_frechet_distance"])
        print(f"\n  max |SSIM - skimage| over 21 pairs: {worst:.2e}")


class MetricsErrors(CliTestCase):
    def test_bad_inputs_exit_2_with_one_line(self):
        np.save(self.path("gray.npy"), np.zeros((2, 1, 16, 16), np.float32))
        np.save(self.path("rgb.npy"), np.zeros((2, 3, 16, 16), np.float32))
        self.assertUsageError(run("metrics", self.path("gray.npy"), self.path("rgb.npy")), "differ in shape")
        nan = np.zeros((16, 16), np.float32)
        nan[3, 4] = np.nan
        np.save(self.path("nan.npy"), nan)
        self.assertUsageError(run("metrics", self.path("nan.npy"), self.path("nan.npy")), "NaN")
        self.assertUsageError(run("metrics", self.path("missing.png"), self.path("gray.npy")), "missing.png")


if __name__ == "__main__":
    import unittest
    unittest.main()
