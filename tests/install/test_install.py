"""The installed package (issue 18, docs/install.md): `cmake --install` into a temporary prefix,
then what a user of the prefix sees. Run by ctest (install.package) with TWEEDIE_BUILD_DIR and
TWEEDIE_SOURCE_DIR set; everything it writes goes under one temporary directory.

Checks, in order (one class: installing once is the slow part):
  layout                  CLI, shared library, public headers, CMake package, shipped models
  headers                 internal headers absent; every installed header includes only installed ones
  no build paths          no source or build directory in installed binaries, headers, CMake files
  C++ example             examples/cpp built against the prefix with find_package, run elsewhere
  CLI from elsewhere      the installed CLI finds the shipped prior from another directory, and
                          again after the whole prefix is moved
  bad TWEEDIE_DATA_DIR    one line naming the variable, exit 2
  Python                  the installed module finds the installed data directory; the Python
                          example prints the C++ example's PSNR and NFE
  plugin                  examples/cpp/own_parts.cpp, built against the prefix, enrols an operator
                          with an SVD view, a nonlinear operator, a channel and a solver that the
                          installed CLI, an experiment config and Python then name; bad plugins
                          are one line, exit 2
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("TWEEDIE_BUILD_DIR", "")
SOURCE = os.environ.get("TWEEDIE_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
CI_STRICT = os.environ.get("CI") == "true"
PY = "/usr/bin/python3"
INTERNAL = ["core/json_input.h", "io/byte_order.h", "io/mapped_file.h", "io/pickle.h", "io/zip_reader.h"]


def sh(args, check=True, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))}: exit {p.returncode}\nstdout: {p.stdout[-3000:]}\n"
                             f"stderr: {p.stderr[-3000:]}")
    return p


def summary(text):
    """The example's result line: 'mean PSNR 17.12 dB, NFE 20'."""
    m = re.search(r"mean PSNR ([0-9.]+) dB, NFE (\d+)", text)
    if not m:
        raise AssertionError("no PSNR line in: " + text)
    return float(m.group(1)), int(m.group(2))


class InstalledPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not BUILD or not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
            msg = "TWEEDIE_BUILD_DIR does not name a configured build: " + repr(BUILD)
            if CI_STRICT:
                raise AssertionError("CI=true, so this is a failure: " + msg)
            raise unittest.SkipTest(msg)
        cls._tmp = tempfile.TemporaryDirectory(prefix="tweedie-install-")
        cls.tmp = cls._tmp.name
        cls.prefix = os.path.join(cls.tmp, "prefix")
        sh(["cmake", "--install", BUILD, "--prefix", cls.prefix])
        cls.elsewhere = os.path.join(cls.tmp, "elsewhere")
        os.makedirs(cls.elsewhere)
        cls.env = {k: v for k, v in os.environ.items() if not k.startswith("TWEEDIE_")}
        cls.env.update(OMP_NUM_THREADS="2", OMP_WAIT_POLICY="PASSIVE")

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def p(self, *parts):
        return os.path.join(self.prefix, *parts)

    def installed_files(self):
        for root, _, files in os.walk(self.prefix):
            for f in files:
                yield os.path.join(root, f)

    def test_1_layout(self):
        for rel in ["bin/tweedie", "lib/libtweedie.so", "include/tweedie/solve/diff_onebit.h",
                    "include/tweedie/core/version.h", "include/tweedie/core/data_dir.h",
                    "lib/cmake/tweedie/tweedieConfig.cmake", "lib/cmake/tweedie/tweedieConfigVersion.cmake",
                    "lib/cmake/tweedie/tweedieTargets.cmake", "share/tweedie/models/fmnist32/model.safetensors",
                    "share/tweedie/models/fmnist32/MODEL_CARD.md", "share/tweedie/models/fmnist-classifier/model.safetensors",
                    "share/tweedie/models/fmnist-gmm/gmm.safetensors", "share/tweedie/models/configs/ffhq256_dps.json",
                    "share/tweedie/experiments/onebit-demo.json", "lib/python3/dist-packages/tweedie/__init__.py",
                    "lib/python3/dist-packages/tweedie/__init__.pyi"]:
            self.assertTrue(os.path.isfile(self.p(rel)), rel)
        self.assertTrue(any(f.startswith("_core") for f in os.listdir(self.p("lib/python3/dist-packages/tweedie"))))
        names = [os.path.basename(f) for f in self.installed_files()]
        self.assertNotIn("checkpoint.safetensors", names)  # training state is not shipped
        # The converged prior ships without its training state and milestone snapshots.
        self.assertTrue(os.path.isfile(self.p("share/tweedie/models/fmnist32-long/model.safetensors")))
        for extra in ["snapshots", "evals", "recipes"]:  # training-side records stay in the repository
            self.assertFalse(os.path.exists(self.p("share/tweedie/models/fmnist32-long/" + extra)), extra)
        # Every installed experiment's prior is installed beside it.
        for f in os.listdir(self.p("share/tweedie/experiments")):
            if not f.endswith(".json"):
                continue
            with open(self.p("share/tweedie/experiments/" + f), encoding="utf-8") as h:
                prior = json.load(h).get("prior", "")
            if prior:
                path = prior.removeprefix("gmm:")
                self.assertTrue(os.path.isfile(self.p("share/tweedie/" + path)), f + ": " + prior)

    def test_2_headers(self):
        inc = self.p("include")
        for rel in INTERNAL:
            self.assertFalse(os.path.exists(os.path.join(inc, "tweedie", rel)), rel)
        count = 0
        for f in self.installed_files():
            if not f.startswith(inc + os.sep):
                continue
            count += 1
            with open(f, encoding="utf-8") as h:
                for line in h:
                    m = re.match(r'\s*#\s*include\s+[<"](tweedie/[^>"]+)[>"]', line)
                    if m:
                        self.assertTrue(os.path.isfile(os.path.join(inc, m.group(1))),
                                        f"{os.path.relpath(f, inc)} includes {m.group(1)}, which is not installed")
        self.assertGreater(count, 50)

    def test_3_no_source_or_build_paths(self):
        needles = [os.path.realpath(SOURCE).encode(), os.path.realpath(BUILD).encode()]
        for f in self.installed_files():
            if "/share/tweedie/" in f or f.endswith(".pyc"):
                continue
            with open(f, "rb") as h:
                data = h.read()
            for n in needles:
                self.assertNotIn(n, data, f"{os.path.relpath(f, self.prefix)} names {n.decode()}")

    def test_4_cpp_example_builds_against_the_prefix_and_runs_elsewhere(self):
        out = os.path.join(self.tmp, "example-build")
        sh(["cmake", "-S", os.path.join(SOURCE, "examples", "cpp"), "-B", out, "-G", "Ninja",
            "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_PREFIX_PATH=" + self.prefix], env=self.env)
        sh(["cmake", "--build", out], env=self.env)
        r = sh([os.path.join(out, "onebit_cs")], cwd=self.elsewhere, env=self.env)
        psnr, nfe = summary(r.stdout)
        self.assertGreater(psnr, 10.0, r.stdout)  # Aᵀy alone scores about 8 dB
        self.assertEqual(nfe, 20)
        type(self).cpp_summary = (psnr, nfe)
        type(self).plugin = os.path.join(out, "libtweedie_own_parts.so")
        # docs/extending.md: an operator of one's own, enrolled by name, equal to the built-in one
        r = sh([os.path.join(out, "own_operator")], cwd=self.elsewhere, env=self.env)
        self.assertIn("measurements equal to sr-avg's: yes", r.stdout)
        self.assertRegex(r.stdout, r"dps with box2: mean PSNR \d+\.\d\d dB, NFE 50; estimates equal to sr-avg's: yes")
        self.assertIn("ddrm with box2: refused: ddrm: operator box2", r.stdout)

    def cli_solve(self, prefix, extra_env=None):
        env = dict(self.env, **(extra_env or {}))
        out = os.path.join(self.tmp, "solve-" + os.path.basename(prefix) + str(len(extra_env or {})))
        return sh([os.path.join(prefix, "bin", "tweedie"), "solve", "--input", "fashion-mnist:test:0-1",
                   "--op", "gaussian:m=256", "--channel", "sign:sigma=0.3", "--method", "diff-onebit",
                   "--set", "steps=3", "--threads", "2", "--quiet", "-o", out],
                  check=False, cwd=self.elsewhere, env=env), out

    def test_5_cli_finds_the_shipped_prior_from_elsewhere_and_after_a_move(self):
        r, out = self.cli_solve(self.prefix)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(out, "estimate.npy")))
        moved = os.path.join(self.tmp, "moved")
        os.rename(self.prefix, moved)
        try:
            r, out = self.cli_solve(moved)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(os.path.isfile(os.path.join(out, "estimate.npy")))
        finally:
            os.rename(moved, self.prefix)

    def test_6_bad_data_dir_is_one_line_exit_2(self):
        r, _ = self.cli_solve(self.prefix, {"TWEEDIE_DATA_DIR": os.path.join(self.tmp, "nowhere")})
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("tweedie: error: "), lines[0])
        self.assertIn("TWEEDIE_DATA_DIR", lines[0])

    def test_7_python_module_and_example(self):
        env = dict(self.env, PYTHONPATH=self.p("lib", "python3", "dist-packages"), PYTHONDONTWRITEBYTECODE="1")
        r = sh([PY, "-c", "import tweedie, os; print(tweedie.__file__); print(tweedie.data_dir()); "
                          "print(os.path.exists(tweedie.DEFAULT_PRIOR))"], cwd=self.elsewhere, env=env)
        module_file, data_dir, exists = r.stdout.strip().splitlines()
        self.assertTrue(module_file.startswith(self.prefix), module_file)
        self.assertEqual(os.path.realpath(data_dir), os.path.realpath(self.p("share", "tweedie")))
        self.assertEqual(exists, "True")
        r = sh([PY, os.path.join(SOURCE, "examples", "python", "onebit_cs.py")], cwd=self.elsewhere, env=env)
        psnr, nfe = summary(r.stdout)
        cpp = getattr(type(self), "cpp_summary", None)
        self.assertIsNotNone(cpp, "the C++ example did not run (test_4)")
        self.assertEqual((round(psnr, 2), nfe), (round(cpp[0], 2), cpp[1]), r.stdout)

    def test_8_plugin_parts_are_named_by_the_cli_configs_and_python(self):
        plugin = getattr(type(self), "plugin", None)
        self.assertTrue(plugin and os.path.isfile(plugin), "the plugin was not built (test_4)")
        tweedie = self.p("bin", "tweedie")
        env = dict(self.env, TWEEDIE_PLUGINS=plugin)

        def solve(name, op, channel, method, *sets, prior=None):
            out = os.path.join(self.tmp, "plugin-" + name)
            args = [tweedie, "solve", "--input", "fashion-mnist:test:0-1", "--op", op, "--channel", channel,
                    "--method", method, "--threads", "2", "--quiet", "-o", out] + (["--prior", prior] if prior else [])
            for kv in sets:
                args += ["--set", kv]
            sh(args, cwd=self.elsewhere, env=env)
            with open(os.path.join(out, "report.json")) as f:
                report = json.load(f)
            with open(os.path.join(out, "estimate.npy"), "rb") as f:
                return report, f.read()

        # box2s (with its SVD view) is sr-avg:factor=2: DDRM gives the same estimate, bit for bit,
        # under the plugin's Laplace channel; problem.json records the plugin
        mine, est_mine = solve("ddrm-box2s", "box2s", "laplace:b=0.05", "ddrm", "steps=10")
        theirs, est_theirs = solve("ddrm-sr", "sr-avg:factor=2", "laplace:b=0.05", "ddrm", "steps=10")
        self.assertEqual(est_mine, est_theirs)
        self.assertEqual(mine["problem"]["plugins"], [os.path.realpath(plugin)])
        # the nonlinear operator through DPS (autograd Jacobians), the prior-free solver
        report, _ = solve("dps-abs", "absgauss:m=512", "gaussian:sigma=0.05", "dps", "steps=5")
        self.assertEqual(report["cost"]["nfe"], 5)
        report, _ = solve("landweber", "box2s", "gaussian:sigma=0.05", "landweber", "steps=30")
        self.assertGreater(report["metrics"]["mean"]["psnr"], 15.0)  # a 2x2 average is mostly invertible
        # a prior by name: the plugin's N(m, v I) at m = 0 is the built-in gaussian prior, bit for bit
        report, est_plugin_prior = solve("dps-meangauss", "sr-avg:factor=2", "gaussian:sigma=0.05", "dps", "steps=5",
                                         prior="meangauss:m=0,v=0.25")
        self.assertEqual(report["prior"]["path"], "meangauss:m=0,v=0.25")
        self.assertEqual(report["cost"]["nfe"], 5)
        _, est_builtin_prior = solve("dps-gaussian", "sr-avg:factor=2", "gaussian:sigma=0.05", "dps", "steps=5",
                                     prior="gaussian:var=0.25")
        self.assertEqual(est_plugin_prior, est_builtin_prior)
        # an experiment config names them as built-in parts
        config = os.path.join(self.tmp, "plugin-experiment.json")
        with open(config, "w") as f:
            json.dump({"name": "plugin", "images": ["fashion-mnist:test:0-1"], "seed": 0,
                       "problems": [{"name": "box2s", "op": "box2s", "channel": "laplace:b=0.05"}],
                       "methods": [{"method": "landweber", "set": {"steps": [5, 10]}}],
                       "output": os.path.join(self.tmp, "plugin-experiment")}, f)
        sh([tweedie, "experiment", config, "--threads", "2", "--quiet"], cwd=self.elsewhere, env=env)
        cells = [d for d, _, files in os.walk(os.path.join(self.tmp, "plugin-experiment", "cells")) if "cell.json" in files]
        self.assertEqual(len(cells), 2, cells)
        # Python: TWEEDIE_PLUGINS at import, or load_plugin()
        pyenv = dict(env, PYTHONPATH=self.p("lib", "python3", "dist-packages"), PYTHONDONTWRITEBYTECODE="1")
        code = ("import tweedie; p = tweedie.Problem('absgauss:m=64', 'laplace:b=0.1', shape=(1, 32, 32)); "
                "x = tweedie.load_images('fashion-mnist:test:0-1'); "
                "r = tweedie.solve('landweber', tweedie.Problem('box2s', shape=(1, 32, 32)), "
                "tweedie.Problem('box2s', shape=(1, 32, 32)).simulate(x), steps=3); "
                "print(p.y_shape, r.steps, 'landweber' in tweedie.solvers(), len(tweedie.plugins()), "
                "tweedie.load_prior('meangauss:m=0.1').shape)")
        r = sh([PY, "-c", code], cwd=self.elsewhere, env=pyenv)
        self.assertEqual(r.stdout.strip(), "(64,) 3 True 1 (1, 32, 32)")
        del pyenv["TWEEDIE_PLUGINS"]
        r = sh([PY, "-c", f"import tweedie; tweedie.load_plugin({plugin!r}); tweedie.load_plugin({plugin!r}); "
                          "print(tweedie.Problem('box2s', shape=(1, 32, 32)).y_shape)"], cwd=self.elsewhere, env=pyenv)
        self.assertEqual(r.stdout.strip(), "(1, 16, 16)")
        # bad plugins: one line naming the variable and the file, exit 2
        for bad, words in [(os.path.join(self.tmp, "none.so"), "no such file"),
                           (config, "cannot be loaded"),
                           (self.p("lib", "libtweedie.so"), "defines no extern")]:
            r = sh([tweedie, "solve", "--help"], check=False, cwd=self.elsewhere, env=dict(self.env, TWEEDIE_PLUGINS=bad))
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("TWEEDIE_PLUGINS: plugin " + bad, r.stderr)
            self.assertIn(words, r.stderr)
        # a plugin loaded twice under two names enrols twice: refused in one line
        twin = os.path.join(self.tmp, "twin.so")
        shutil.copy(plugin, twin)
        r = sh([tweedie, "solve", "--help"], check=False, cwd=self.elsewhere,
               env=dict(self.env, TWEEDIE_PLUGINS=plugin + ":" + twin))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("enrolled twice", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
