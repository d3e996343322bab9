#!/usr/bin/env bash
# Installs every Debian 12 package tweedie needs to build, test, benchmark and run its demo.
# Idempotent: packages already present are skipped, and apt is not touched when none is missing.
set -euo pipefail

#   install-deps.sh        everything: build, tests, benchmarks, Python module
#   install-deps.sh demo   what `make demo` needs: the library and CLI, and the shipped data
#   install-deps.sh fuzz   everything, plus clang-14 for `make fuzz`
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-pthread          # LibTorch 1.13 (CPU, oneDNN) + a fast BLAS
  libgloo-dev                                # Gloo headers for c10d ProcessGroupGloo (docs/distributed.md)
  libcli11-dev nlohmann-json3-dev libstb-dev zlib1g-dev libssl-dev
  dataset-fashion-mnist                      # shipped training / test data
  python3-skimage                            # its test images (camera, astronaut, ...): data only
)
if [ "${1:-}" != "demo" ]; then
  PACKAGES+=(
    libgtest-dev libgmock-dev libbenchmark-dev
    python3 python3-numpy python3-torch                   # test oracles only
    python3-dev pybind11-dev python3-pytest                # the Python module (python/) and its tests
    python3-venv python3-pip python3-setuptools python3-wheel   # the venv install (install.pip test)
  )
fi

# `install-deps.sh fuzz` adds what `make fuzz` needs: clang-14 with its sanitizer and libFuzzer
# runtimes (the normal build, demo and tests do not need them).
if [ "${1:-}" = "fuzz" ]; then
  PACKAGES+=(clang-14 libclang-rt-14-dev)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
