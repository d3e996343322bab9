"""The virtual-environment install of docs/python.md (issue 29 item 5):

    python3 -m venv --system-site-packages V && V/bin/pip install --no-build-isolation .

with Debian's tools only (--no-index: pip may fetch nothing). Then, from another directory and
without PYTHONPATH: the module imports from V, finds its shipped prior inside V, gives the build
tree's estimate bit for bit, its CLI runs, and `pip uninstall` removes it. Run by ctest
(install.pip) with TWEEDIE_SOURCE_DIR, TWEEDIE_PYTHON_DIR (the build's module, for the
comparison) and TWEEDIE_PIP_BUILD_DIR (CMake's folder for the pip build, kept between runs so a
rerun is incremental).
"""
import os
import tempfile
import unittest

from test_install import sh  # one way to run a command and show its output on failure

SOURCE = os.environ.get("TWEEDIE_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_MODULE = os.environ.get("TWEEDIE_PYTHON_DIR", "")
CI_STRICT = os.environ.get("CI") == "true"
PY = "/usr/bin/python3"

SOLVE = """
import os, sys, torch, tweedie
torch.set_num_threads(1)
x = tweedie.load_images("fashion-mnist:test:0-1")
p = tweedie.Problem("sr-avg:factor=2", shape=(1, 32, 32), seed=0)
x_hat, cost = tweedie.solve("dps", p, p.simulate(x), seed=1, steps=3)
torch.save(x_hat, sys.argv[1])
print(tweedie.__file__)
print(tweedie.data_dir())
print(os.path.exists(tweedie.DEFAULT_PRIOR), cost["nfe"])
"""


class PipInstall(unittest.TestCase):
    def test_venv_pip_install_then_use_then_uninstall(self):
        if not os.path.isdir(BUILD_MODULE):
            msg = "TWEEDIE_PYTHON_DIR does not name the build's module: " + repr(BUILD_MODULE)
            if CI_STRICT:
                self.fail("CI=true, so this is a failure: " + msg)
            self.skipTest(msg)
        with tempfile.TemporaryDirectory(prefix="tweedie-pip-") as tmp:
            venv = os.path.join(tmp, "V")
            sh([PY, "-m", "venv", "--system-site-packages", venv])
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TWEEDIE_DATA_DIR")}
            env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", "2")
            sh([os.path.join(venv, "bin", "pip"), "install", "--no-build-isolation", "--no-index", SOURCE],
               cwd=tmp, env=env)
            elsewhere = os.path.join(tmp, "elsewhere")
            os.mkdir(elsewhere)
            script = os.path.join(tmp, "solve.py")
            with open(script, "w") as f:
                f.write(SOLVE)
            r = sh([os.path.join(venv, "bin", "python"), script, os.path.join(tmp, "venv.pt")], cwd=elsewhere, env=env)
            module_file, data_dir, line = r.stdout.strip().splitlines()
            self.assertTrue(os.path.realpath(module_file).startswith(os.path.realpath(venv)), module_file)
            self.assertTrue(os.path.realpath(data_dir).startswith(os.path.realpath(venv)), data_dir)
            self.assertEqual(line, "True 3")
            # the same estimate as the build tree's module
            sh([PY, script, os.path.join(tmp, "build.pt")], cwd=elsewhere, env=dict(env, PYTHONPATH=BUILD_MODULE))
            import torch
            self.assertTrue(torch.equal(torch.load(os.path.join(tmp, "venv.pt")), torch.load(os.path.join(tmp, "build.pt"))))
            # the CLI that came with it runs, and finds the same data
            cli = os.path.join(os.path.dirname(module_file), "bin", "tweedie")
            r = sh([cli, "--version"], cwd=elsewhere, env=env)
            self.assertIn("tweedie 0.1", r.stdout)
            # uninstall leaves nothing importable
            sh([os.path.join(venv, "bin", "pip"), "uninstall", "-y", "tweedie"], cwd=elsewhere, env=env)
            r = sh([os.path.join(venv, "bin", "python"), "-c", "import tweedie"], check=False, cwd=elsewhere, env=env)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("No module named 'tweedie'", r.stderr)
            self.assertFalse(os.path.exists(os.path.dirname(module_file)), "pip uninstall left files behind")


if __name__ == "__main__":
    unittest.main(verbosity=2)
