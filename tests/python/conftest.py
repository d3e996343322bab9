"""Shared set-up of the Python module's tests (run by tests/python/run.py under ctest).

The module is imported from TWEEDIE_PYTHON_DIR (the build's python/ folder). When it, or the
CLI binary a test compares with, is missing, tests skip; under CI=true they fail instead, so CI
cannot pass by testing nothing (tests/cli/tweedie_cli.py's convention).
"""
import os
import sys

import pytest

CI_STRICT = os.environ.get("CI") == "true"
SOURCE_DIR = os.environ.get("TWEEDIE_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
PYTHON_DIR = os.environ.get("TWEEDIE_PYTHON_DIR", os.path.join(SOURCE_DIR, "build", "python"))
TWEEDIE_BIN = os.environ.get("TWEEDIE_BIN", os.path.join(SOURCE_DIR, "build", "tweedie"))


def skip_missing(reason):
    """Skips a test whose prerequisite is missing; under CI=true, fails instead."""
    if CI_STRICT:
        pytest.fail("CI=true, so a missing prerequisite is a failure: " + reason)
    pytest.skip(reason)


if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)


@pytest.fixture(scope="session")
def tweedie():
    try:
        import tweedie as module
    except ImportError as e:
        skip_missing(f"the tweedie module is not built in {PYTHON_DIR} ({e})")
    import torch

    torch.set_num_threads(2)  # the CLI runs below get --threads 2: same reductions, same bits
    return module


@pytest.fixture(scope="session")
def tweedie_bin():
    if not os.access(TWEEDIE_BIN, os.X_OK):
        skip_missing(f"the tweedie CLI is not built at {TWEEDIE_BIN}")
    return TWEEDIE_BIN


class GaussianDenoiser:
    """x0 ~ N(mu, v) per pixel: D(x, sigma) = E[x0 | x0 + sigma n = x] = mu + v/(v + sigma^2) (x - mu).
    Counts its calls."""

    def __init__(self, mu, v):
        self.mu, self.v, self.calls = mu, v, 0

    def __call__(self, x, sigma):
        self.calls += 1
        return self.mu + self.v / (self.v + sigma**2) * (x - self.mu)
