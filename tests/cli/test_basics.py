"""tweedie --help/--version, subcommand dispatch, shared options, config files, errors."""
import json
import subprocess
import unittest

from tweedie_cli import CliTestCase, run

SUBCOMMANDS = ["convert", "dataset", "info", "problem", "simulate"]


class Basics(CliTestCase):
    def test_help_lists_subcommands(self):
        p = run("--help", check=0)
        for c in SUBCOMMANDS:
            self.assertIn(c, p.stdout)

    def test_version_has_git_hash(self):
        p = run("--version", check=0)
        self.assertRegex(p.stdout, r"tweedie \d+\.\d+\.\d+ \(git [0-9a-f]{7,}")

    def test_each_subcommand_help_lists_common_options_with_defaults(self):
        for c in SUBCOMMANDS:
            p = run(c, "--help", check=0)
            for opt in ["--threads", "--seed", "--device", "--quiet", "--config"]:
                self.assertIn(opt, p.stdout, c)
            self.assertIn("=cpu", p.stdout, c)  # defaults are shown

    def test_no_subcommand_or_unknown_is_usage_error(self):
        self.assertUsageError(run())
        self.assertUsageError(run("frobnicate"))
        self.assertUsageError(run("info", "--no-such-flag", "x"))

    def test_bad_device_is_usage_error(self):
        self.assertUsageError(run("dataset", "list", "--device", "tpu"), "tpu")

    def test_config_file_json_and_toml_flags_override(self):
        out = self.path("a.png")
        cfg = self.path("c.json")
        with open(cfg, "w") as f:
            json.dump({"count": 4, "cols": 2, "output": out, "threads": 1, "tile": 0}, f)  # native 32-pixel tiles
        run("dataset", "fashion-mnist", "--config", cfg, check=0)
        info = json.loads(run("info", out, "--json", check=0).stdout)
        self.assertEqual(info["tensors"]["image"]["shape"], [1, 2 * 32 + 3 * 2, 2 * 32 + 3 * 2])
        # The flag wins over the file.
        run("dataset", "fashion-mnist", "--config", cfg, "--cols", "4", check=0)
        info = json.loads(run("info", out, "--json", check=0).stdout)
        self.assertEqual(info["tensors"]["image"]["shape"], [1, 32 + 2 * 2, 4 * 32 + 5 * 2])
        toml = self.path("c.toml")
        with open(toml, "w") as f:
            f.write(f'count = 1\noutput = "{out}"\n')
        run("dataset", "fashion-mnist", "--config", toml, check=0)
        info = json.loads(run("info", out, "--json", check=0).stdout)
        self.assertEqual(info["tensors"]["image"]["shape"], [1, 32, 32])

    def test_config_file_errors(self):
        bad = self.path("bad.json")
        with open(bad, "w") as f:
            f.write('{"count": 4, "no_such_option": 1}')
        self.assertUsageError(run("dataset", "fashion-mnist", "--config", bad), "no_such_option")
        with open(bad, "w") as f:
            f.write('{"count": ')
        self.assertUsageError(run("dataset", "fashion-mnist", "--config", bad), "JSON")
        self.assertUsageError(run("dataset", "fashion-mnist", "--config", self.path("missing.json")))

    def test_quiet_prints_nothing(self):
        p = run("dataset", "camera", "-o", self.path("c.png"), "--quiet", check=0)
        self.assertEqual(p.stdout, "")
        self.assertEqual(p.stderr, "")

    def test_missing_input_file(self):
        self.assertUsageError(run("info", self.path("nope.npy")), "nope.npy")


if __name__ == "__main__":
    unittest.main()
