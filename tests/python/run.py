"""Runs the Python module's pytest suite for ctest (tests/CMakeLists.txt): exit 77 (ctest's
skip) when pytest itself is missing, except under CI=true, where that is a failure."""
import os
import sys

try:
    import pytest
except ImportError:
    print("python3-pytest is not installed (scripts/install-deps.sh installs it)")
    sys.exit(1 if os.environ.get("CI") == "true" else 77)

sys.exit(pytest.main(["-v", "-p", "no:cacheprovider", os.path.dirname(os.path.abspath(__file__)), *sys.argv[1:]]))
