// Compressed-sensing operators side by side: apply + adjoint time and memory for the dense and
// matrix-free Gaussian matrix and the subsampled randomized Hadamard transform, at
// N = 32², 64², 3·256² with M = N/16. Run: build/bench/bench_operators [--benchmark_filter=...]
// Counters: stored_MB = memory the operator holds; peak_MB = rise of the process's peak
// resident set (VmHWM) during build + the timed loop, over the resident set before it.
#include <benchmark/benchmark.h>

#include "tweedie/core/memory.h"
#include "tweedie/core/runtime.h"
#include "tweedie/op/registry.h"
#include "tweedie/op/structured.h"
#include "bench_support.h"

namespace {

using tweedie::op::Shape;

Shape shape_of(int64_t id) {
  switch (id) {
    case 0: return {1, 32, 32};
    case 1: return {1, 64, 64};
    default: return {3, 256, 256};
  }
}

void run(benchmark::State& state, const std::string& impl) {
  Shape in = shape_of(state.range(0));
  int64_t N = tweedie::op::numel(in), M = N / 16;
  if (impl == "dense" && N > 64 * 64) {
    state.SkipWithError("dense A at 3x256x256 would hold 9.7 GB");
    return;
  }
  std::string spec = impl == "srht" ? "srht:m=" + std::to_string(M)
                                    : "gaussian:m=" + std::to_string(M) + ",impl=" + impl;
  auto gen = tweedie::make_generator(0);
  auto x = torch::randn(tweedie::op::with_batch(1, in), gen, torch::kFloat32);
  torch::NoGradGuard no_grad;
  tweedie::reset_peak_resident();
  int64_t base = tweedie::resident_bytes();
  auto A = tweedie::op::make_operator(spec, in, 1);
  for (auto _ : state) {
    auto y = A->apply(x);
    auto z = A->adjoint(y);
    benchmark::DoNotOptimize(z.data_ptr<float>());
  }
  int64_t peak = tweedie::peak_resident_bytes() - base;
  double stored = impl == "dense" ? 4.0 * M * N : impl == "srht" ? 12.0 * N : 0.0;
  state.counters["N"] = static_cast<double>(N);
  state.counters["M"] = static_cast<double>(M);
  state.counters["stored_MB"] = stored / 1048576.0;
  state.counters["peak_MB"] = peak / 1048576.0;
  state.SetLabel(A->spec());
}

// The yardstick for the structured operators: one memory pass over the same tensor (a copy).
void BM_Copy(benchmark::State& state) {
  auto x = torch::randn(tweedie::op::with_batch(1, shape_of(state.range(0))));
  auto y = torch::empty_like(x);
  for (auto _ : state) {
    y.copy_(x);
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  state.counters["N"] = static_cast<double>(x.numel());
}

// The Walsh–Hadamard transform alone on one row of n = 2^k floats: the blocked kernel and the
// level-by-level tensor-op reference it replaced.
void fwht_bench(benchmark::State& state, bool fast) {
  auto x = torch::randn({1, state.range(0)});
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    auto y = fast ? tweedie::op::fwht(x) : tweedie::op::fwht_reference(x);
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
}
void BM_Fwht(benchmark::State& s) { fwht_bench(s, true); }
void BM_FwhtReference(benchmark::State& s) { fwht_bench(s, false); }

void BM_Dense(benchmark::State& s) { run(s, "dense"); }
void BM_MatrixFree(benchmark::State& s) { run(s, "matrix-free"); }
void BM_Srht(benchmark::State& s) { run(s, "srht"); }

BENCHMARK(BM_Copy)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Fwht)->Arg(1 << 10)->Arg(1 << 18)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FwhtReference)->Arg(1 << 10)->Arg(1 << 18)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dense)->DenseRange(0, 1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatrixFree)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Srht)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  tweedie::set_threads(0);
  return tweedie::bench::run_benchmarks(argc, argv);
}
