# tweedie — the two set-up commands of the README are `make demo` and `make test`.
# Both install the Debian packages they need (scripts/install-deps.sh, idempotent), then build.
BUILD      ?= build
SAN_BUILD  ?= build-sanitize
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
DEMO_OUT   ?= results/demo
CTEST_ARGS ?=

.PHONY: all deps configure build demo test test-all test-release test-sanitize test-fast bench fuzz clean

all: build

deps:
	bash scripts/install-deps.sh

# Everything (tests, benchmarks, Python module) unless a target turns parts off.
# Under CI (CI=true) a warning in tweedie's own code fails the build.
FULL_ARGS  = -DTWEEDIE_BUILD_TESTS=ON -DTWEEDIE_BUILD_BENCH=ON -DTWEEDIE_PYTHON=ON \
             -DTWEEDIE_WERROR=$(if $(filter true,$(CI)),ON,OFF)
DEMO_ARGS  = -DTWEEDIE_BUILD_TESTS=OFF -DTWEEDIE_BUILD_BENCH=OFF -DTWEEDIE_PYTHON=OFF

configure: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(FULL_ARGS) $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The main job on the shipped data. It installs only the packages the demo needs and builds only
# the library and CLI: tests, benchmarks and the Python module build under `make test`/`make bench`
# (which configure the same build directory with them switched on).
demo:
	bash scripts/install-deps.sh demo
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(DEMO_ARGS) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS) --target tweedie_cli
	bash scripts/demo.sh $(BUILD)/tweedie $(DEMO_OUT)

# Every test of the release build (unit, slow, cli labels): the README's test command and CI's.
# The sanitizer pass (test-sanitize: the unit tests built with ASan + UBSan) compiles the library a
# second time; CI (.ci/run) runs it after `make test`, and `make test-all` runs both.
test: test-release

test-all: test-release test-sanitize

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L 'unit|cli' $(CTEST_ARGS)

test-sanitize: deps
	cmake -S . -B $(SAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 -DTWEEDIE_SANITIZE=ON \
	  -DTWEEDIE_BUILD_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(SAN_BUILD) -j $(JOBS) --target tweedie_unit_tests
	cd $(SAN_BUILD) && ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0} \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -L unit $(CTEST_ARGS)

bench: build
	bash scripts/bench.sh $(BUILD)

# libFuzzer + ASan/UBSan on the file parsers (clang-14; see fuzz/CMakeLists.txt, docs/reliability.md):
# replays fuzz/regressions/, then fuzzes each target for FUZZ_SECONDS from a scratch copy of its
# corpus; fails if any target finds a crash. FUZZ_TARGETS="npy png" picks targets.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
