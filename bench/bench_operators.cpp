// Compressed-sensing operators side by side: apply + adjoint time and memory for the dense and
// matrix-free Gaussian matrix and the subsampled randomized Hadamard transform, at
// N = 32², 64², 3·256² with M = N/16. Run: build/bench/bench_operators [--benchmark_filter=...]
// Counters: stored_MB = memory the operator holds; peak_MB = rise of the process's peak
// resident set (VmHWM) during build + the timed loop, over the resident set before it.
//
// build/bench/bench_operators --table [--json FILE] prints instead one markdown table from one run (the one
// in docs/measurements.md): per size, a plain copy of the image tensor as the yardstick, SRHT
// apply + adjoint and its ratio to the copy, the dense Gaussian where A fits in memory, and the
// matrix-free Gaussian with wall and process CPU time and ns per entry per core; with the CPU
// model, load average and thread count, so the numbers can be read against the machine's state.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tweedie/core/fs.h"
#include "tweedie/core/memory.h"
#include "tweedie/core/runtime.h"
#include "tweedie/op/gaussian.h"
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
BENCHMARK(BM_Fwht)->Arg(1 << 10)->Arg(1 << 12)->Arg(1 << 16)->Arg(1 << 18)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FwhtReference)->Arg(1 << 10)->Arg(1 << 18)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Dense)->DenseRange(0, 1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatrixFree)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Srht)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);

// ---- --table --------------------------------------------------------------------------------------

struct Timing {
  double wall = 0, cpu = 0;  // seconds per call: elapsed, and CPU time of the whole process
};

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// The median over `reps` timed calls (one warm-up call first).
Timing time_call(const std::function<void()>& fn, int reps) {
  fn();
  std::vector<Timing> t(static_cast<size_t>(reps));
  for (auto& r : t) {
    const double c0 = process_cpu_seconds();
    const auto w0 = std::chrono::steady_clock::now();
    fn();
    r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    r.cpu = process_cpu_seconds() - c0;
  }
  std::sort(t.begin(), t.end(), [](const Timing& a, const Timing& b) { return a.wall < b.wall; });
  return t[t.size() / 2];
}

std::string first_line_with(const char* path, const char* key) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return line.substr(line.find(':') + 2);
  return "?";
}

std::string read_line(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// Seconds for apply + adjoint of `spec` on one random item of shape `in`.
Timing time_operator(const std::string& spec, const Shape& in, int reps) {
  auto gen = tweedie::make_generator(0);
  auto x = torch::randn(tweedie::op::with_batch(1, in), gen, torch::kFloat32);
  auto A = tweedie::op::make_operator(spec, in, 1);
  return time_call([&] { benchmark::DoNotOptimize(A->adjoint(A->apply(x)).data_ptr<float>()); }, reps);
}

// `json_path` (optional): the same rows as JSON, written atomically.
int print_table(const std::string& json_path) {
  nlohmann::json rows = nlohmann::json::array();
  torch::NoGradGuard no_grad;
  const int threads = torch::get_num_threads();
  std::printf("CPU: %s; %d threads (torch); load average before the run: %s\n",
              first_line_with("/proc/cpuinfo", "model name").c_str(), threads, read_line("/proc/loadavg").c_str());
  std::printf("Gaussian generator: %s. Times are medians of repeated calls (one call for the matrix-free "
              "Gaussian at 3x256x256); CPU = process CPU time over the same calls.\n\n",
              tweedie::op::gaussian_kernels().front().c_str());
  std::printf("| item | N | M | copy | SRHT A+Aᵀ | SRHT / copy | SRDCT A+Aᵀ | SRDCT / copy | dense Gaussian A+Aᵀ | "
              "matrix-free A+Aᵀ: wall | CPU | ns / entry / core (CPU) | ns / entry (wall × threads) |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (int64_t id = 0; id <= 2; ++id) {
    const Shape in = shape_of(id);
    const int64_t N = tweedie::op::numel(in), M = N / 16;
    const bool big = N > 64 * 64;
    auto x = torch::randn(tweedie::op::with_batch(1, in));
    auto y = torch::empty_like(x);
    const Timing copy = time_call([&] { y.copy_(x); }, big ? 400 : 2000);
    const std::string m = std::to_string(M);
    const Timing srht = time_operator("srht:m=" + m, in, big ? 100 : 400);
    const Timing srdct = time_operator("srdct:m=" + m, in, big ? 100 : 400);
    char held[64];
    std::snprintf(held, sizeof held, "not run: A would hold %.1f GB", 4.0 * M * N / 1e9);
    std::string dense = held;
    if (!big) {
      const Timing d = time_operator("gaussian:m=" + m + ",impl=dense", in, 200);
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.3f ms", d.wall * 1e3);
      dense = buf;
    }
    const Timing mf = time_operator("gaussian:m=" + m + ",impl=matrix-free", in, big ? 1 : 20);
    const double entries = 2.0 * static_cast<double>(M) * static_cast<double>(N);
    std::printf("| %s | %ld | %ld | %.1f µs | %.1f µs | %.1f | %.1f µs | %.1f | %s | %.4g s | %.4g s | %.2f | %.2f |\n",
                tweedie::op::shape_text(in).c_str(), static_cast<long>(N), static_cast<long>(M), copy.wall * 1e6,
                srht.wall * 1e6, srht.wall / copy.wall, srdct.wall * 1e6, srdct.wall / copy.wall, dense.c_str(), mf.wall, mf.cpu, mf.cpu / entries * 1e9,
                mf.wall * threads / entries * 1e9);
    std::fflush(stdout);
    rows.push_back({{"shape", tweedie::op::shape_text(in)},
                    {"n", N},
                    {"m", M},
                    {"copy_seconds", copy.wall},
                    {"srht_seconds", srht.wall},
                    {"srht_over_copy", srht.wall / copy.wall},
                    {"srdct_seconds", srdct.wall},
                    {"srdct_over_copy", srdct.wall / copy.wall},
                    {"matrix_free_seconds", mf.wall},
                    {"matrix_free_cpu_seconds", mf.cpu},
                    {"matrix_free_ns_per_entry_per_core", mf.cpu / entries * 1e9},
                    {"threads", threads}});
  }
  if (!json_path.empty()) tweedie::atomic_write_file(json_path, rows.dump(2) + "\n");
  std::printf("\nload average after the run: %s\n", read_line("/proc/loadavg").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  tweedie::keep_freed_memory();  // as the CLI does (runtime.h)
  tweedie::set_threads(tweedie::bench::bench_threads(0));
  // --table [--json FILE]
  bool table = false;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--table") == 0) table = true;
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) json_path = argv[++i];
  }
  if (table) return print_table(json_path);
  return tweedie::bench::run_benchmarks(argc, argv);
}
