"""Builds tweedie with CMake for `pip install --no-build-isolation .` (pyproject.toml).

The wheel holds one folder, site-packages/tweedie/: the Python package, and beside it what it
loads and reads, laid out as an install prefix so that nothing is found by absolute path:
    tweedie/__init__.py, _core*.so       the module (RUNPATH $ORIGIN/lib)
    tweedie/lib/libtweedie.so            the library
    tweedie/bin/tweedie                  the command-line tool (RUNPATH $ORIGIN/../lib)
    tweedie/share/tweedie/models, ...    the shipped priors and experiment specs (data_dir())
    tweedie/include, lib/cmake           headers and find_package(tweedie) for C++ users

CMake builds in TWEEDIE_PIP_BUILD_DIR (default build-pip/ in the source tree, so a reinstall is
incremental), with CMAKE_BUILD_PARALLEL_LEVEL jobs (default: every core). Tests, benchmarks and
fuzzers are not built.
"""
import os
import re
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.dist import Distribution

SOURCE = os.path.dirname(os.path.abspath(__file__))


def version():
    with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
        return re.search(r"project\(tweedie\s+VERSION\s+([0-9.]+)", f.read()).group(1)


class BinaryDistribution(Distribution):
    """A platform wheel: the package carries compiled code."""

    def has_ext_modules(self):
        return True


class CMakeBuild(build_ext):
    """build_ext: the step setuptools runs for a distribution with compiled code."""

    def run(self):
        build = os.path.abspath(os.environ.get("TWEEDIE_PIP_BUILD_DIR", os.path.join(SOURCE, "build-pip")))
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        configure = ["cmake", "-S", SOURCE, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                     "-DTWEEDIE_BUILD_TESTS=OFF", "-DTWEEDIE_BUILD_BENCH=OFF", "-DTWEEDIE_PYTHON=ON",
                     "-DPython3_EXECUTABLE=" + sys.executable,
                     # the prefix layout of the docstring: everything under tweedie/
                     "-DTWEEDIE_PYTHON_INSTALL_DIR=.", "-DCMAKE_INSTALL_LIBDIR=tweedie/lib",
                     "-DCMAKE_INSTALL_BINDIR=tweedie/bin", "-DCMAKE_INSTALL_DATADIR=tweedie/share",
                     "-DCMAKE_INSTALL_INCLUDEDIR=tweedie/include"]
        if subprocess.run(["ninja", "--version"], capture_output=True).returncode == 0 and \
                not os.path.exists(os.path.join(build, "CMakeCache.txt")):
            configure += ["-G", "Ninja"]
        subprocess.check_call(configure)
        subprocess.check_call(["cmake", "--build", build, "--parallel", jobs,
                               "--target", "tweedie", "tweedie_cli", "tweedie_python"])
        # the module is optional in a CMake build (skipped when pybind11 or torch's Python library
        # is missing); here it is the point
        if not any(n.startswith("_core") for n in os.listdir(os.path.join(build, "python", "tweedie"))):
            raise SystemExit("tweedie: the Python module was not built; see CMake's 'tweedie Python module skipped' line")
        subprocess.check_call(["cmake", "--install", build, "--prefix", os.path.abspath(self.build_lib)])


os.makedirs(os.path.join(SOURCE, "build-pip"), exist_ok=True)  # egg_base must exist
setup(
    version=version(),
    distclass=BinaryDistribution,
    cmdclass={"build_ext": CMakeBuild},
    packages=[],
    options={"build": {"build_base": os.path.join("build-pip", "setuptools")},
             "egg_info": {"egg_base": "build-pip"}},
    zip_safe=False,
)
