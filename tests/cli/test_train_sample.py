"""tweedie train (resume after kill -9 is bit-identical), tweedie sample, tweedie denoise-eval."""
import json
import os
import signal
import struct
import subprocess
import time

import numpy as np

from tweedie_cli import BIN, CliTestCase, run

TINY = ["--channel-mult", "1,2", "--attention-ds", "2",
        "--num-head-channels", "32", "--batch-size", "4", "--warmup-steps", "2",
        "--log-every", "2", "--threads", "1", "--seed", "5"]


def read_safetensors(path):
    """Minimal reader (the spec: u64 header length, JSON header, raw little-endian data)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    dtypes = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "U8": "u1"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtypes[info["dtype"]]).reshape(info["shape"])
    return out, header.get("__metadata__", {})


def blob_images(count):
    """`count` tiny 16x16 training "images" [count, 1, 16, 16]: discs at seeded random places and
    sizes, enough for the loss to fall."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16]
    imgs = []
    for _ in range(count):
        cy, cx, r = rng.uniform(4, 12), rng.uniform(4, 12), rng.uniform(2, 5)
        imgs.append(np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 1.0, -1.0))
    return np.array(imgs, np.float32)[:, None]


class TrainResumeSample(CliTestCase):
    def setUp(self):
        super().setUp()
        self.data = self.path("data.npy")
        np.save(self.data, blob_images(64))

    def train(self, out, steps, *extra, check=0):
        if "--model-channels" not in extra:
            extra = ("--model-channels", "32", *extra)
        return run("train", "-o", out, "--data", self.data, "--steps", steps, *TINY, *extra, check=check)

    def test_kill9_then_resume_equals_uninterrupted(self):
        a = self.path("a")
        # Checkpoints every 3 steps, a loss row every 2: resuming from step 3 or 9 starts inside a
        # log window, whose partial sum the checkpoint must carry for loss.csv to come out equal.
        self.train(a, 12, "--checkpoint-every", "3")
        b = self.path("b")
        proc = subprocess.Popen([BIN, "train", "-o", b, "--data", self.data, "--steps", "12", "--model-channels", "32", *TINY,
                                 "--checkpoint-every", "3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ckpt = os.path.join(b, "checkpoint.safetensors")
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(ckpt):
                _, meta = read_safetensors(ckpt)
                if json.loads(meta["tweedie.train"])["step"] >= 3:
                    break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _, meta = read_safetensors(ckpt)
        killed_at = json.loads(meta["tweedie.train"])["step"]
        self.assertLess(killed_at, 12, "the run finished before it could be killed")
        # No temp files are left behind that a reader could mistake for outputs.
        p = self.train(b, 12, "--checkpoint-every", "3")
        self.assertIn(f"resuming {ckpt} at step {killed_at}", p.stdout)
        ta, _ = read_safetensors(os.path.join(a, "checkpoint.safetensors"))
        tb, _ = read_safetensors(ckpt)
        self.assertEqual(sorted(ta), sorted(tb))
        for k in ta:
            if k == "history":
                np.testing.assert_array_equal(ta[k][:, :3], tb[k][:, :3])  # step, loss, lr
            else:
                np.testing.assert_array_equal(ta[k], tb[k], err_msg=k)
        hist = np.loadtxt(os.path.join(b, "loss.csv"), delimiter=",", skiprows=1)
        self.assertEqual(list(hist[:, 0]), [2, 4, 6, 8, 10, 12])
        self.assertTrue(os.path.getsize(os.path.join(b, "loss.svg")) > 200)
        # Every output but the wall-clock record is byte-identical to the uninterrupted run's.
        for name in ["loss.csv", "loss.svg", "model.safetensors", "model.json"]:
            with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
                self.assertEqual(fa.read(), fb.read(), name)
        self.assertTrue(os.path.exists(os.path.join(b, "timing.csv")))

    def test_resume_with_other_architecture_is_an_error(self):
        a = self.path("a")
        self.train(a, 2)
        p = self.train(a, 4, "--model-channels", "64", check=None)
        self.assertUsageError(p, "architecture")

    def test_sample_and_denoise_eval(self):
        a = self.path("a")
        self.train(a, 2)
        model = os.path.join(a, "model.safetensors")
        common = ["--model", model, "--count", "3", "--cols", "3", "--steps", "5", "--threads", "1"]
        run("sample", *common, "-o", self.path("s1.npy"), "--seed", "1", check=0)
        run("sample", *common, "-o", self.path("s2.npy"), "--seed", "1", check=0)
        run("sample", *common, "-o", self.path("s3.npy"), "--seed", "2", check=0)
        s1, s2, s3 = (np.load(self.path(f"s{i}.npy")) for i in (1, 2, 3))
        self.assertEqual(s1.shape, (3, 1, 16, 16))
        np.testing.assert_array_equal(s1, s2)
        self.assertFalse(np.array_equal(s1, s3))
        with open(self.path("s1.npy") + ".json") as f:
            prov = json.load(f)
        self.assertEqual(prov["nfe"], 5)
        self.assertEqual(len(prov["prior"]["sha256"]), 64)
        run("sample", *common, "-o", self.path("grid.png"), "--sampler", "ddpm", check=0)
        info = json.loads(run("info", self.path("grid.png"), "--json", check=0).stdout)
        self.assertIn("tweedie", info["text"])
        # 16-pixel samples are shown 6x (96-pixel tiles, 2-pixel padding); --tile 0 keeps them.
        self.assertEqual(info["tensors"]["image"]["shape"], [1, 96 + 4, 3 * 96 + 8])
        run("sample", *common, "-o", self.path("grid0.png"), "--sampler", "ddpm", "--tile", "0", check=0)
        info = json.loads(run("info", self.path("grid0.png"), "--json", check=0).stdout)
        self.assertEqual(info["tensors"]["image"]["shape"], [1, 16 + 4, 3 * 16 + 8])
        run("denoise-eval", "--model", model, "--data", self.data, "--count", "8", "--sigmas", "0.2,1.0",
            "-o", self.path("d.json"), "--threads", "1", check=0)
        with open(self.path("d.json")) as f:
            rows = json.load(f)["rows"]
        self.assertEqual([r["sigma"] for r in rows], [0.2, 1.0])
        for r in rows:
            self.assertTrue(all(np.isfinite(v) for v in r.values()))
            # The noisy input's PSNR follows from σ alone: 10 log10(4 / σ²) within sampling error.
            self.assertAlmostEqual(r["psnr_noisy"], 10 * np.log10(4 / r["sigma"] ** 2), delta=0.5)


if __name__ == "__main__":
    import unittest
    unittest.main()
