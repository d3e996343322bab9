"""Shared helpers for the end-to-end CLI tests (run by ctest with Debian's python3)."""
import os
import subprocess
import tempfile
import unittest

BIN = os.environ.get("TWEEDIE_BIN", "tweedie")
FIXTURES = os.environ.get("TWEEDIE_FIXTURES_DIR", "")


def run(*args, check=None, **kw):
    """Runs tweedie; returns CompletedProcess. check=N asserts the exit code."""
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, **kw)
    if check is not None and p.returncode != check:
        raise AssertionError(f"tweedie {' '.join(map(str, args))}: exit {p.returncode}, "
                             f"expected {check}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


CI_STRICT = os.environ.get("CI") == "true"


class CliTestCase(unittest.TestCase):
    def skip_missing(self, reason):
        """Skips a test whose fixture or Python oracle is missing; under CI=true, fails instead,
        so CI cannot pass by testing nothing."""
        if CI_STRICT:
            self.fail("CI=true, so a missing fixture or oracle is a failure: " + reason)
        self.skipTest(reason)

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="tweedie-cli-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def assertUsageError(self, proc, *needles):
        """Exit 2 with exactly one 'tweedie: error:' line naming the problem."""
        self.assertEqual(proc.returncode, 2, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("tweedie: error: "), lines[0])
        for n in needles:
            self.assertIn(n, lines[0])
