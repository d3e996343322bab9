"""The PyTorch-eager U-Net used as the benchmark baseline (bench/adm_unet_reference.py) against
guided-diffusion's own outputs, and its safetensors reader/writer."""
import json
import os
import struct
import sys
import unittest

import numpy as np
import torch

from tweedie_cli import FIXTURES, CliTestCase

SOURCE = os.environ.get("TWEEDIE_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "bench"))
import adm_unet_reference as ref  # noqa: E402

GD = os.path.join(FIXTURES, "guided-diffusion")


class ReferenceUNetMatchesGuidedDiffusion(CliTestCase):
    def setUp(self):
        super().setUp()
        if not os.path.exists(os.path.join(GD, "gd_A.pt")):
            self.skip_missing("guided-diffusion fixtures missing: " + GD)
        torch.set_num_threads(1)
        with open(os.path.join(GD, "gd_A.json")) as f:
            self.cfg = json.load(f)

    def test_state_dict_keys_and_shapes_equal_guided_diffusion(self):
        model = ref.UNetModel(self.cfg)
        expected = []
        with open(os.path.join(GD, "gd_A_keys.txt")) as f:
            for line in f:
                key, shape, _ = line.rstrip("\n").split("\t")
                expected.append((key, json.loads(shape)))
        got = [(k, list(v.shape)) for k, v in model.state_dict().items()]
        self.assertEqual(got, expected)
        self.assertEqual(sum(p.numel() for p in model.parameters()), self.cfg["num_parameters"])

    def test_forward_matches_fixture_output_and_intermediates(self):
        torch.manual_seed(12345)  # any init: every parameter is overwritten
        model = ref.UNetModel(self.cfg)
        model.load_state_dict(torch.load(os.path.join(GD, "gd_A.pt"), map_location="cpu"), strict=True)
        model.eval()
        x = torch.from_numpy(np.load(os.path.join(GD, "gd_A_x.npy")))
        t = torch.from_numpy(np.load(os.path.join(GD, "gd_A_t.npy")))
        trace = {}
        with torch.no_grad():
            out = model(x, t, trace=trace)
        want = np.load(os.path.join(GD, "gd_A_out.npy"))
        self.assertEqual(tuple(out.shape), want.shape)
        self.assertLessEqual(float(np.abs(out.numpy() - want).max()), 1e-4)
        inter = os.path.join(GD, "gd_A_inter")
        for name in sorted(os.listdir(inter)):
            with self.subTest(block=name):
                key = name[:-len(".npy")]
                self.assertIn(key, trace)
                w = np.load(os.path.join(inter, name))
                np.testing.assert_allclose(trace[key].numpy(), w, rtol=1e-4, atol=1e-4)

    def test_input_gradient_matches_fixture(self):
        model = ref.UNetModel(self.cfg)
        model.load_state_dict(torch.load(os.path.join(GD, "gd_A.pt"), map_location="cpu"), strict=True)
        model.eval()
        x = torch.from_numpy(np.load(os.path.join(GD, "gd_A_x.npy"))).requires_grad_(True)
        t = torch.from_numpy(np.load(os.path.join(GD, "gd_A_t.npy")))
        w = torch.from_numpy(np.load(os.path.join(GD, "gd_A_grad_w.npy")))
        (model(x, t) * w).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), np.load(os.path.join(GD, "gd_A_grad_x.npy")),
                                   rtol=1e-4, atol=1e-4)

    def test_check_fixture_entry_point(self):
        errors = ref.check_fixture(FIXTURES)
        self.assertLessEqual(max(errors.values()), 1e-4, errors)


class ReferenceUNetIO(CliTestCase):
    def test_safetensors_roundtrip_with_config_in_metadata(self):
        model = ref.random_model(seed=3)
        path = self.path("m.safetensors")
        ref.save_model(path, model)
        # Layout: u64 header length, JSON header padded to 8 bytes, raw little-endian data.
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        self.assertEqual(n % 8, 0)
        self.assertEqual(json.loads(header["__metadata__"]["tweedie.unet"]), ref.SHIPPED_CONFIG)
        loaded = ref.load_model(path)
        self.assertEqual(loaded.config, model.config)
        for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
            self.assertEqual(k, k2)
            self.assertTrue(torch.equal(a, b), k)

    def test_state_dict_pt_with_sidecar_json(self):
        model = ref.random_model(seed=4)
        torch.save(model.state_dict(), self.path("w.pt"))
        with open(self.path("w.json"), "w") as f:
            json.dump({"unet_kwargs": model.config}, f)
        loaded = ref.load_model(self.path("w.pt"))
        x, t = torch.randn(2, 1, 32, 32), torch.tensor([3, 900])
        with torch.no_grad():
            self.assertTrue(torch.equal(model(x, t), loaded(x, t)))

    def test_missing_or_unexpected_keys_are_rejected(self):
        model = ref.random_model(seed=5)
        sd = model.state_dict()
        sd.pop("out.2.bias")
        ref.write_safetensors(self.path("bad.safetensors"), sd,
                              {"tweedie.unet": json.dumps(model.config)})
        with self.assertRaises(RuntimeError):
            ref.load_model(self.path("bad.safetensors"))

    def test_config_variants(self):
        # New attention order, learn_sigma output, plain up/downsampling, several res blocks.
        cfg = dict(ref.SHIPPED_CONFIG, out_channels=2, use_new_attention_order=True,
                   resblock_updown=False, num_res_blocks=2, use_scale_shift_norm=False,
                   attention_resolutions="16,8", channel_mult="1,2,2")
        model = ref.UNetModel(cfg)
        self.assertEqual(model.config["attention_resolutions"], [2, 4])
        self.assertIn("input_blocks.3.0.op.weight", model.state_dict())
        with torch.no_grad():
            y = model(torch.randn(2, 1, 32, 32), torch.tensor([1.5, 999.0]))
        self.assertEqual(tuple(y.shape), (2, 2, 32, 32))


if __name__ == "__main__":
    unittest.main()
