#pragma once
// What the benchmark programs' main() share: the thread count (TWEEDIE_BENCH_THREADS) and
// Google Benchmark's initialise / run / shut down sequence.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <functional>

namespace tweedie::bench {

// TWEEDIE_BENCH_THREADS when set to a positive number, else `fallback`.
inline int bench_threads(int fallback) {
  const char* env = std::getenv("TWEEDIE_BENCH_THREADS");
  const int t = env && *env ? std::atoi(env) : 0;
  return t > 0 ? t : fallback;
}

// Parses the benchmark flags (1 on an unknown one), calls `before_run` (false: exit 1), runs the
// selected benchmarks. Returns the exit status for main().
inline int run_benchmarks(int argc, char** argv, const std::function<bool()>& before_run = {}) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (before_run && !before_run()) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace tweedie::bench
