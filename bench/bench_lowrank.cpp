// Matrix completion by GD and ScaledGD, side by side: seconds and memory to reach a relative error
// of 1e-6 at n = 1000 and n = 5000, rank r = 10, 10% of the entries observed (p = 0.1), κ = 5
// (σ*_i = linspace(1, 1/κ, r)), spectral start included in the time.
//
// Run: build/bench/bench_lowrank [--benchmark_filter=...]
// Env: TWEEDIE_BENCH_THREADS (intra-op threads, default 1), TWEEDIE_BENCH_KAPPA (default 5).
// Step sizes: each method tries η = 0.5 (MC.m) and, if that diverges, η = 0.25 (at p = 0.1,
// r = 10, n = 1000 the spectral start is too rough for ScaledGD at η = 0.5 once κ ≥ 5; see
// docs/lowrank.md); the diverged attempt's time counts.
// Time is the process CPU time (one intra-op thread by default), which a loaded machine inflates
// far less than wall time; both are reported.
// Counters: iterations, eta, cpu_s, wall_s, s_per_iter (CPU, iterations only), init_s (spectral
// start, wall), peak_MB (peak resident set while generating and solving, over the resident set
// before: problem + solver), problem_MB (observed entries, indices and CSR pattern), error.
// BM_Iteration*: CPU cost of one iteration (10 per benchmark iteration; per_iter) for both.
// A table with the GD / ScaledGD CPU-time ratio is printed at the end.
#include <benchmark/benchmark.h>

#include <malloc.h>

#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "tweedie/core/memory.h"
#include "tweedie/core/runtime.h"
#include "tweedie/lowrank/matrix.h"
#include "bench_support.h"

namespace {

using namespace tweedie::lowrank;

double env_number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atof(v) : fallback;
}

struct Row {
  double cpu = 0, wall = 0, peak_mb = 0, eta = 0;
  int64_t iterations = 0;
  std::string stop;
};
std::map<int64_t, std::map<std::string, Row>>& table() {
  static std::map<int64_t, std::map<std::string, Row>> t;
  return t;
}

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

void completion_to_tolerance(benchmark::State& state, Method method) {
  int64_t n = state.range(0);
  ProblemSpec spec;
  spec.task = Task::completion;
  spec.n1 = spec.n2 = n;
  spec.rank = 10;
  spec.ratio = 0.1;
  spec.kappa = env_number("TWEEDIE_BENCH_KAPPA", 5);
  MatrixOptions o;
  o.method = method;
  o.stop.tolerance = 1e-6;
  o.stop.max_iterations = 20000;
  Row row;
  MatrixResult res;
  double problem_mb = 0;
  for (auto _ : state) {
    malloc_trim(0);  // return what earlier benchmarks freed, so the resident set starts low
    tweedie::reset_peak_resident();
    int64_t base = tweedie::resident_bytes();
    auto gen = tweedie::make_generator(0);
    MatrixProblem p = generate_matrix_problem(spec, gen);
    problem_mb = static_cast<double>(p.values.numel()) * 8 * 5 / 1048576.0;  // values, rows, cols, 2 permutations
    double cpu0 = cpu_seconds(), wall = 0;
    for (double eta : {0.5, 0.25}) {
      o.eta = eta;
      auto solver_gen = tweedie::make_generator(1);
      res = solve_matrix(p, o, solver_gen);
      wall += res.seconds;
      if (res.stop != "diverged") break;
    }
    row = {cpu_seconds() - cpu0, wall, static_cast<double>(tweedie::peak_resident_bytes() - base) / 1048576.0, o.eta,
           res.iterations, res.stop};
    state.SetIterationTime(row.cpu);
  }
  state.counters["iterations"] = static_cast<double>(res.iterations);
  state.counters["eta"] = row.eta;
  state.counters["cpu_s"] = row.cpu;
  state.counters["wall_s"] = row.wall;
  state.counters["s_per_iter"] = (row.cpu - res.init_seconds) / static_cast<double>(std::max<int64_t>(1, res.iterations));
  state.counters["init_s"] = res.init_seconds;
  state.counters["peak_MB"] = row.peak_mb;
  state.counters["problem_MB"] = problem_mb;
  state.counters["error"] = res.history.back().error;
  state.SetLabel(res.stop);
  table()[n][method_name(method)] = row;
}

// The cost of one iteration (gradient on Ω, update, error and change metrics) from the spectral
// start, same problem for both methods: ScaledGD's r×r solves should add little.
void iteration_cost(benchmark::State& state, Method method) {
  ProblemSpec spec;
  spec.task = Task::completion;
  spec.n1 = spec.n2 = state.range(0);
  spec.rank = 10;
  spec.ratio = 0.1;
  spec.kappa = 5;
  auto gen = tweedie::make_generator(0);
  MatrixProblem p = generate_matrix_problem(spec, gen);
  MatrixOptions o;
  o.method = method;
  o.eta = 0.1;  // small enough never to diverge: this measures cost, not progress
  o.stop = {10, 0, 0, 1e3};
  auto start = initialize(p, o, gen);
  for (auto _ : state) benchmark::DoNotOptimize(iterate(p, start, o).left.data_ptr());
  state.counters["per_iter"] = benchmark::Counter(10, benchmark::Counter::kIsIterationInvariantRate |
                                                                benchmark::Counter::kInvert);
}

void BM_CompletionGd(benchmark::State& s) { completion_to_tolerance(s, Method::gd); }
void BM_CompletionScaledGd(benchmark::State& s) { completion_to_tolerance(s, Method::scaledgd); }
void BM_IterationGd(benchmark::State& s) { iteration_cost(s, Method::gd); }
void BM_IterationScaledGd(benchmark::State& s) { iteration_cost(s, Method::scaledgd); }

BENCHMARK(BM_CompletionScaledGd)->Arg(1000)->Arg(5000)->Iterations(1)->UseManualTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_CompletionGd)->Arg(1000)->Arg(5000)->Iterations(1)->UseManualTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_IterationGd)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IterationScaledGd)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  tweedie::keep_freed_memory();  // as the CLI does (runtime.h)
  tweedie::set_threads(tweedie::bench::bench_threads(1));
  if (int rc = tweedie::bench::run_benchmarks(argc, argv)) return rc;
  std::printf("\nmatrix completion, r = 10, p = 0.1, kappa = %g, to relative error 1e-6, %d thread(s); CPU seconds\n",
              env_number("TWEEDIE_BENCH_KAPPA", 5), at::get_num_threads());
  std::printf("%6s | %8s %6s %5s %8s | %8s %6s %5s %8s | %s\n", "n", "GD s", "iters", "eta", "peak MB", "SGD s", "iters",
              "eta", "peak MB", "GD/ScaledGD");
  for (auto& [n, row] : table()) {
    Row gd = row.count("gd") ? row.at("gd") : Row{}, sgd = row.count("scaledgd") ? row.at("scaledgd") : Row{};
    std::printf("%6lld | %8.2f %6lld %5.2f %8.1f | %8.2f %6lld %5.2f %8.1f | %.2fx%s\n", static_cast<long long>(n),
                gd.cpu, static_cast<long long>(gd.iterations), gd.eta, gd.peak_mb, sgd.cpu,
                static_cast<long long>(sgd.iterations), sgd.eta, sgd.peak_mb, sgd.cpu > 0 ? gd.cpu / sgd.cpu : 0.0,
                gd.stop == "tolerance" && sgd.stop == "tolerance" ? "" : " (a run did not reach 1e-6)");
  }
  return 0;
}
