"""tweedie info / convert against numpy as the oracle, and their bad-input errors."""
import json
import os

import numpy as np

from tweedie_cli import FIXTURES, CliTestCase, run

DTYPES = ["<f4", "<f8", "<i8", "<i4", "|u1", "|b1", "<c8", "<f2", "<i2", "|i1", "<c16"]


def sample(dtype, shape, rng):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) > 0.5
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, endpoint=True).astype(dt)
    return rng.standard_normal(shape).astype(dt)


class NpyThroughCli(CliTestCase):
    def test_numpy_files_roundtrip_through_tweedie_for_every_dtype(self):
        rng = np.random.default_rng(0)
        for dtype in DTYPES:
            # Each call pays LibTorch's start-up; the C++ tests cover shapes exhaustively.
            for shape in [(), (1, 2, 3, 2, 2)]:
                with self.subTest(dtype=dtype, shape=shape):
                    a = sample(dtype, shape, rng)
                    src, dst = self.path("a.npy"), self.path("b.npy")
                    np.save(src, a)
                    run("convert", src, dst, check=0)
                    b = np.load(dst)
                    self.assertEqual(b.dtype, a.dtype)
                    self.assertEqual(b.shape, a.shape)
                    np.testing.assert_array_equal(a, b)
                    if shape == ():
                        continue
                    info = json.loads(run("info", src, "--json", check=0).stdout)
                    t = info["tensors"]["array"]
                    self.assertEqual(t["shape"], list(shape))
                    if a.size and a.dtype.kind not in "cb":
                        self.assertAlmostEqual(t["min"], float(a.min()), places=4)
                        self.assertAlmostEqual(t["max"], float(a.max()), places=4)

    def test_fortran_order_and_big_endian_are_read_correctly(self):
        a = np.arange(24, dtype=">f8").reshape(2, 3, 4)
        np.save(self.path("be.npy"), a)
        run("convert", self.path("be.npy"), self.path("out.npy"), check=0)
        np.testing.assert_array_equal(np.load(self.path("out.npy")), a.astype("<f8"))
        f = np.asfortranarray(np.arange(24, dtype="<i4").reshape(2, 3, 4))
        np.save(self.path("f.npy"), f)
        run("convert", self.path("f.npy"), self.path("out.npy"), check=0)
        np.testing.assert_array_equal(np.load(self.path("out.npy")), f)

    def test_info_reports_sha256(self):
        import hashlib
        np.save(self.path("a.npy"), np.ones((3, 3), np.float32))
        info = json.loads(run("info", self.path("a.npy"), "--json", check=0).stdout)
        with open(self.path("a.npy"), "rb") as f:
            self.assertEqual(info["sha256"], hashlib.sha256(f.read()).hexdigest())

    def test_broken_npy_files_are_usage_errors(self):
        good = self.path("good.npy")
        np.save(good, np.arange(100, dtype=np.float32))
        raw = open(good, "rb").read()
        cases = {
            "truncated": raw[:-37],
            "badmagic": b"\x93NUMPX" + raw[6:],
            "lying": raw.replace(b"(100,)", b"(200,)"),
            "dtype": raw.replace(b"'<f4'", b"'<U1'"),
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                p = self.path(name + ".npy")
                with open(p, "wb") as f:
                    f.write(data)
                self.assertUsageError(run("info", p), name + ".npy")
                self.assertUsageError(run("convert", p, self.path("x.png")), name + ".npy")
                self.assertFalse(os.path.exists(self.path("x.png")))


class PngThroughCli(CliTestCase):
    def test_npy_to_png_to_npy(self):
        rng = np.random.default_rng(1)
        u8 = rng.integers(0, 256, size=(3, 17, 23), dtype=np.uint8)
        np.save(self.path("u8.npy"), u8)
        run("convert", self.path("u8.npy"), self.path("img.png"), check=0)
        run("convert", self.path("img.png"), self.path("back.npy"), "--dtype", "uint8", check=0)
        np.testing.assert_array_equal(np.load(self.path("back.npy")), u8)
        # float32 in [-1, 1] is what the library works with.
        run("convert", self.path("img.png"), self.path("f.npy"), check=0)
        f = np.load(self.path("f.npy"))
        self.assertEqual(f.dtype, np.float32)
        np.testing.assert_allclose(f, u8 / 255.0 * 2 - 1, atol=1e-6)

    def test_batch_becomes_grid_and_range_option(self):
        a = np.zeros((6, 1, 4, 5), np.float32)
        np.save(self.path("b.npy"), a)
        run("convert", self.path("b.npy"), self.path("g.png"), "--cols", "3", "--range", "0,1", check=0)
        info = json.loads(run("info", self.path("g.png"), "--json", check=0).stdout)
        self.assertEqual(info["tensors"]["image"]["shape"], [1, 2 * 4 + 3 * 2, 3 * 5 + 4 * 2])
        self.assertUsageError(run("convert", self.path("b.npy"), self.path("g.png"), "--range", "1,0"), "--range")

    def test_png_errors(self):
        np.save(self.path("c.npy"), np.zeros((5, 4, 4), np.float32))
        self.assertUsageError(run("convert", self.path("c.npy"), self.path("c.png")), "channels")
        np.save(self.path("n.npy"), np.full((4, 4), np.nan, np.float32))
        self.assertUsageError(run("convert", self.path("n.npy"), self.path("n.png")), "NaN")
        with open(self.path("fake.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\nnot really")
        self.assertUsageError(run("info", self.path("fake.png")), "fake.png")
        self.assertUsageError(run("convert", self.path("c.npy"), self.path("c.jpg")), "extension")


class TensorFilesThroughCli(CliTestCase):
    def test_info_on_guided_diffusion_state_dict(self):
        pt = os.path.join(FIXTURES, "guided-diffusion", "gd_A.pt")
        if not os.path.exists(pt):
            self.skip_missing("fixtures not found: " + pt)
        info = json.loads(run("info", pt, "--json", check=0).stdout)
        self.assertEqual(info["format"], "torch-zip")
        self.assertEqual(len(info["tensors"]), 198)
        self.assertEqual(info["num_elements"], 1370242)
        self.assertEqual(info["tensors"]["input_blocks.3.1.qkv.weight"]["shape"], [192, 64, 1])

    def test_truncated_checkpoint_is_usage_error(self):
        pt = os.path.join(FIXTURES, "guided-diffusion", "gd_A.pt")
        if not os.path.exists(pt):
            self.skip_missing("fixtures not found: " + pt)
        data = open(pt, "rb").read()
        for cut in [100, len(data) // 2, len(data) - 10]:
            with self.subTest(cut=cut):
                p = self.path("cut.pt")
                with open(p, "wb") as f:
                    f.write(data[:cut])
                self.assertUsageError(run("info", p), "cut.pt")


class DatasetThroughCli(CliTestCase):
    def test_fashion_mnist_export_matches_idx_file(self):
        import gzip
        run("dataset", "fashion-mnist", "--count", "10", "--offset", "5", "-o", self.path("x.npy"),
            "--labels", self.path("y.npy"), check=0)
        x, y = np.load(self.path("x.npy")), np.load(self.path("y.npy"))
        self.assertEqual(x.shape, (10, 1, 32, 32))
        root = "/usr/share/datasets/fashion-mnist"
        with gzip.open(f"{root}/t10k-images-idx3-ubyte.gz") as f:
            imgs = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
        with gzip.open(f"{root}/t10k-labels-idx1-ubyte.gz") as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)
        np.testing.assert_allclose(x[:, 0, 2:30, 2:30], imgs[5:15] / 255.0 * 2 - 1, atol=1e-6)
        self.assertTrue(np.all(x[:, :, :2, :] == -1))
        np.testing.assert_array_equal(y, labels[5:15])

    def test_unknown_test_image(self):
        self.assertUsageError(run("dataset", "no_such_image", "-o", self.path("a.png")), "no_such_image")
