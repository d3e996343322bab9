// Solvers side by side on the 1-bit compressed-sensing problem of the seeds, with the shipped
// Fashion-MNIST prior: seconds per image at batch 1 and batch 32, with each method's default
// options (Diff-OneBit 20 NFE, SIM-DMIS 150 NFE, DPS 1000 NFE, ...).
//
//   build/bench/bench_solvers [--benchmark_filter=diff-onebit] [--benchmark_min_time=0]
//
// Every solver in the registry is benchmarked (one run per measurement: a solve is long).
// Counters: s_per_image, nfe, likelihood_grads, network_grads. Threads: TWEEDIE_BENCH_THREADS
// (default 2). Prior: TWEEDIE_BENCH_MODEL (default models/fmnist32/model.safetensors).
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "tweedie/core/data_dir.h"
#include "tweedie/core/runtime.h"
#include "tweedie/data/fashion_mnist.h"
#include "tweedie/diffusion/prior.h"
#include "tweedie/problem.h"
#include "tweedie/solve/solver.h"
#include "bench_support.h"

namespace {

using namespace tweedie;

const diffusion::Prior& prior() {
  static diffusion::Prior p = [] {
    const char* m = std::getenv("TWEEDIE_BENCH_MODEL");
    return diffusion::load_prior(m ? m : kDefaultPrior);
  }();
  return p;
}

const torch::Tensor& images() {
  static torch::Tensor x = data::load_fashion_mnist(data::Split::kTest).images.slice(0, 0, 32).contiguous();
  return x;
}

void run_solver(benchmark::State& state, const std::string& method) {
  const int64_t B = state.range(0);
  torch::Tensor x = images().slice(0, 0, B);
  // seed 001's setting at our size: A ~ N(0, 1/M), M/N = 1/2, σ = 0.3 (σ/std(aᵀx) ≈ 0.23)
  Problem problem = make_problem("gaussian:ratio=0.5", "sign:sigma=0.3", {1, 32, 32}, 0);
  torch::Tensor y = simulate(problem, x);
  Params params = solve::resolve_solver(method, {});
  const auto& entry = solve::solver_registry().find(method);
  solve::Cost cost;
  for (auto _ : state) {
    torch::Generator gen = make_generator(0);
    solve::SolveContext ctx{problem, y, *prior().denoiser, gen, {}};
    cost = entry.make.run(params, ctx).cost;
  }
  state.counters["s_per_image"] = cost.seconds / static_cast<double>(B);
  state.counters["nfe"] = static_cast<double>(cost.nfe);
  state.counters["likelihood_grads"] = static_cast<double>(cost.likelihood_grads);
  state.counters["network_grads"] = static_cast<double>(cost.network_grads);
  state.SetLabel(entry.make.describe(params).dump());
}

}  // namespace

int main(int argc, char** argv) {
  tweedie::keep_freed_memory();  // as the CLI does (runtime.h)
  tweedie::set_threads(tweedie::bench::bench_threads(2));
  // Every enrolled solver with a prior, so a new one is benchmarked without touching this file.
  // Self-diffusion and DIP train their own network: bench_untrained times them.
  for (const auto* e : tweedie::solve::solver_registry().entries()) {
    if (!e->make.uses_prior || e->make.reference) continue;
    benchmark::RegisterBenchmark(e->name.c_str(), [name = e->name](benchmark::State& s) { run_solver(s, name); })
        ->Arg(1)
        ->Arg(32)
        ->Iterations(1)
        ->Unit(benchmark::kSecond)
        ->UseRealTime();
  }
  return tweedie::bench::run_benchmarks(argc, argv);
}
