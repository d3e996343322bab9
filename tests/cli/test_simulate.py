"""tweedie simulate / problem end to end, with python torch and numpy as the oracle, and the
bad-input errors (exit 2, one line)."""
import json
import os

import numpy as np
import torch

from tweedie_cli import CliTestCase, run

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z):
    """SplitMix64's output function on uint64 numpy arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def gaussian_matrix(m, n, seed, unit_variance=False):
    """A as documented in tweedie/op/gaussian.cpp: row i uses the key
    k_i = mix64(splitmix64(seed)) + i; entry pair p takes w_c = mix64(k_i + (c + 1) golden) for
    c = 2p, 2p + 1, and Box-Muller in float64, rounded to float32, times 1/sqrt(m)."""
    with np.errstate(over="ignore"):
        s = mix64(np.array([(seed + GOLDEN) & MASK], np.uint64))[0]
        base = mix64(np.array([s], np.uint64))[0]
        keys = base + np.arange(m, dtype=np.uint64)[:, None]
        c = np.arange(0, n, 2, dtype=np.uint64)[None, :]
        w1 = mix64(keys + (c + np.uint64(1)) * np.uint64(GOLDEN))
        w2 = mix64(keys + (c + np.uint64(2)) * np.uint64(GOLDEN))
    u1 = ((w1 >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53
    u2 = (w2 >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    r = np.sqrt(-2.0 * np.log(u1))
    a = np.empty((m, c.shape[1] * 2), np.float64)
    a[:, 0::2] = r * np.cos(2 * np.pi * u2)
    a[:, 1::2] = r * np.sin(2 * np.pi * u2)
    a = a[:, :n].astype(np.float32)
    if not unit_variance:
        a = a * np.float32(1.0 / np.sqrt(m))
    return torch.from_numpy(a)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class Simulate(CliTestCase):
    def simulate(self, *args, out="out", check=0):
        d = self.path(out)
        run("simulate", *args, "-o", d, "--quiet", check=check)
        return d

    def test_one_bit_gaussian_matches_the_python_oracle(self):
        d = self.simulate("--input", "fashion-mnist:test:0-3", "--op", "gaussian:m=64",
                          "--channel", "sign:sigma=0.5", "--seed", "3")
        y = np.load(os.path.join(d, "y.npy"))
        x = np.load(os.path.join(d, "x.npy"))
        self.assertEqual(y.shape, (4, 64))
        self.assertEqual(x.shape, (4, 1, 32, 32))
        self.assertTrue(set(np.unique(y)) <= {-1.0, 1.0})
        p = read_json(os.path.join(d, "problem.json"))
        self.assertEqual(p["format"], "tweedie-problem")
        self.assertEqual(p["operator"]["spec"], "gaussian:m=64,var=1/m,seed=3,impl=dense")
        self.assertEqual(p["channel"]["spec"], "sign:sigma=0.5")
        self.assertEqual(p["x_shape"], [1, 32, 32])
        self.assertEqual(p["y_shape"], [64])
        # Rebuild A and the noise in python from the documented definitions.
        a = gaussian_matrix(64, 1024, 3)
        z = torch.from_numpy(x).reshape(4, -1) @ a.T
        noise = torch.randn(4, 64, dtype=torch.float64,
                            generator=torch.Generator().manual_seed(p["noise_seed"])).float()
        want = torch.where(z + 0.5 * noise >= 0, 1.0, -1.0).numpy()
        self.assertLessEqual(int((want != y).sum()), 1)  # float32 rounding at the threshold
        for png in ["x.png", "adjoint.png"]:
            self.assertTrue(os.path.exists(os.path.join(d, png)), png)

    def test_same_seed_same_bytes_other_seed_differs(self):
        args = ["--input", "camera", "--size", "32", "--op", "random-mask:ratio=0.5|scale:c=2",
                "--channel", "gaussian:sigma=0.1"]
        a = self.simulate(*args, "--seed", "1", out="a")
        b = self.simulate(*args, "--seed", "1", out="b")
        c = self.simulate(*args, "--seed", "2", out="c")
        self.assertEqual(read_bytes(os.path.join(a, "y.npy")), read_bytes(os.path.join(b, "y.npy")))
        self.assertNotEqual(read_bytes(os.path.join(a, "y.npy")), read_bytes(os.path.join(c, "y.npy")))

    def test_identity_noiseless_and_blur_against_numpy(self):
        d = self.simulate("--input", "camera", "--size", "48", "--op", "identity",
                          "--channel", "gaussian:sigma=0")
        np.testing.assert_array_equal(np.load(os.path.join(d, "y.npy")), np.load(os.path.join(d, "x.npy")))
        self.assertTrue(os.path.exists(os.path.join(d, "y.png")))
        # Circular Gaussian blur = circular correlation with the scipy-style kernel.
        d = self.simulate("--input", "camera", "--size", "48", "--op", "gaussian-blur:size=61,std=3",
                          "--channel", "gaussian:sigma=0", out="blur")
        x = np.load(os.path.join(d, "x.npy")).astype(np.float64)[0, 0]
        y = np.load(os.path.join(d, "y.npy"))[0, 0]
        t = np.exp(-0.5 * np.arange(-12, 13) ** 2 / 9.0)
        t /= t.sum()
        want = np.zeros_like(x)
        for i, u in enumerate(range(-12, 13)):
            for j, v in enumerate(range(-12, 13)):
                want += t[i] * t[j] * np.roll(x, (-u, -v), axis=(0, 1))
        np.testing.assert_allclose(y, want, atol=2e-5)

    def test_mri_box_phase_quantizer_and_problem_check(self):
        d = self.simulate("--input", "camera", "--size", "32", "--gray", "--op", "mri:accel=4",
                          "--channel", "gaussian:sigma=0.01", out="mri")
        y = np.load(os.path.join(d, "y.npy"))
        self.assertEqual(y.dtype, np.complex64)
        self.assertEqual(y.shape[:3], (1, 1, 32))
        self.assertTrue(os.path.exists(os.path.join(d, "adjoint.png")))
        # Centred orthonormal FFT of the image, kept columns: the oracle picks them by matching.
        x = np.load(os.path.join(d, "x.npy"))[0, 0].astype(np.float64)
        k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x), norm="ortho"))
        err = np.abs(k[:, :, None] - y[0, 0][:, None, :]).max(axis=0)  # [W, L]
        self.assertLess(err.min(axis=0).max(), 0.1)  # every line is a k-space column + noise
        d = self.simulate("--input", "camera", "--size", "32", "--op", "box-mask:size=8,top=4,left=6",
                          "--channel", "sign:sigma=0.1", out="box")
        self.assertEqual(np.load(os.path.join(d, "y.npy")).shape, (1, 32 * 32 - 64))
        d = self.simulate("--input", "camera", "--size", "32", "--op", "phase", "--channel",
                          "gaussian:sigma=0.05", out="phase")
        self.assertEqual(np.load(os.path.join(d, "y.npy")).shape, (1, 1, 48, 48))
        self.assertTrue(os.path.exists(os.path.join(d, "y.png")))
        d = self.simulate("--input", "fashion-mnist:test:0-1", "--op", "srht:m=100",
                          "--channel", "quantize:bits=3", out="q")
        spec = read_json(os.path.join(d, "problem.json"))["channel"]["spec"]
        self.assertIn("delta=", spec)
        p = run("problem", d, "--x", os.path.join(d, "x.npy"), check=0)
        out = json.loads(p.stdout)
        self.assertEqual(len(out["nll"]), 2)
        self.assertTrue(all(np.isfinite(out["nll"])))

    def test_list_shows_registries(self):
        p = run("simulate", "--list", check=0)
        for name in ["gaussian", "srht", "mri", "phase", "sign", "quantize", "poisson", "ratio="]:
            self.assertIn(name, p.stdout)

    def test_bad_inputs_are_one_line_errors(self):
        base = ["simulate", "--input", "camera", "--size", "32", "-o", self.path("bad")]
        self.assertUsageError(run(*base, "--op", "warp"), "unknown operator 'warp'")
        self.assertUsageError(run(*base, "--op", "identity", "--channel", "telepathy"), "unknown channel 'telepathy'")
        self.assertUsageError(run(*base, "--op", "gaussian"), "'m'")
        self.assertUsageError(run(*base, "--op", "identity", "--channel", "sign"), "missing parameter 'sigma'")
        self.assertUsageError(run(*base, "--op", "gaussian:m=ten"), "m='ten'")
        self.assertUsageError(run(*base, "--op", "gaussian:m=10,q=1"), "unknown parameter 'q'")
        self.assertUsageError(run(*base, "--op", "sr-avg:factor=3"), "divisible")
        self.assertUsageError(run(*base, "--op", "mri|gaussian:m=4"), "complex")
        self.assertUsageError(run("simulate", "--input", "camera", "--input", "fashion-mnist", "--op", "identity",
                                  "-o", self.path("bad")), "do not match")
        nan = self.path("nan.npy")
        a = np.zeros((1, 1, 4, 4), np.float32)
        a[0, 0, 1, 1] = np.nan
        np.save(nan, a)
        self.assertUsageError(run("simulate", "--input", nan, "--op", "identity", "-o", self.path("bad")), "NaN")
        self.assertUsageError(run("simulate", "--op", "identity", "-o", self.path("bad")), "--input")

    def test_bad_problem_files_are_one_line_errors(self):
        d = self.simulate("--input", "fashion-mnist:test:0-1", "--op", "gaussian:m=20",
                          "--channel", "sign:sigma=0.5")
        run("problem", d, check=0)
        y = np.load(os.path.join(d, "y.npy"))
        for bad, needle in [(np.where(np.arange(20) == 3, np.nan, y), "NaN"),
                            (np.where(np.arange(20) == 5, np.inf, y), "NaN or Inf"),
                            (np.ones((2, 21), np.float32), "expected [B, 20]"),
                            (y * 0.5, "-1 or +1")]:
            np.save(os.path.join(d, "y.npy"), bad.astype(np.float32))
            self.assertUsageError(run("problem", d), needle)
        np.save(os.path.join(d, "y.npy"), y)
        pj = os.path.join(d, "problem.json")
        p = read_json(pj)
        p["tweedie_version"] = "99.0.0"
        write_json(pj, p)
        self.assertUsageError(run("problem", d), "newer than this tweedie")
        p["tweedie_version"] = "0.0.1"
        p["format_version"] = 99
        write_json(pj, p)
        self.assertUsageError(run("problem", d), "newer than this tweedie")
        with open(pj, "w") as f:
            f.write("{")
        self.assertUsageError(run("problem", d), "not valid JSON")


if __name__ == "__main__":
    import unittest
    unittest.main()
