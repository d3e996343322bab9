// Self-diffusion and Deep Image Prior (seed 004) on single-coil MRI 4× of the Shepp–Logan phantom
// at 64×64 and 128×128: seconds per Adam step and per run, and the share of a step spent in the
// U-Net (forward + backward), for the seed's network (ExtraDeepUNet: width 64, depth 5) and the
// narrowed one our CPU experiments use (width 16, depth 4).
//
//   build/bench/bench_untrained [--benchmark_filter=w64] [--benchmark_min_time=0]
//
// A full run at the seed's defaults is T·K = 40 × 100 = 4000 Adam steps (self-diffusion) and the
// same budget for DIP, so each benchmark times a few steps and reports the run's extrapolation.
// Counters: s_per_step, s_per_run (× 4000), unet_share (U-Net forward + backward over a whole
// step: the rest is the operator, loss and Adam's update), params. Threads: TWEEDIE_BENCH_THREADS
// (default 2).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <tuple>

#include "tweedie/core/runtime.h"
#include "tweedie/data/test_images.h"
#include "tweedie/problem.h"
#include "tweedie/solve/solver.h"
#include "tweedie/solve/untrained_unet.h"
#include "bench_support.h"

namespace {

using namespace tweedie;
using Clock = std::chrono::steady_clock;

constexpr int64_t kRunSteps = 40 * 100;  // T·K at the seed's code defaults (methods.md §7.5)

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// state.range: 0 = image size, 1 = width, 2 = depth, 3 = timed steps.
void run(benchmark::State& state, const std::string& method) {
  const int64_t n = state.range(0), steps = state.range(3);
  const std::vector<std::string> net = {"width=" + std::to_string(state.range(1)),
                                        "depth=" + std::to_string(state.range(2))};
  torch::Tensor x = data::shepp_logan(n).unsqueeze(0);
  Problem problem = make_problem("mri:accel=4", "gaussian:sigma=0", {1, n, n}, 0);
  torch::Tensor y = simulate(problem, x);
  std::vector<std::string> set = net;
  if (method == "self-diffusion") set.insert(set.end(), {"steps=1", "iters=" + std::to_string(steps)});
  else set.insert(set.end(), {"iters=" + std::to_string(steps), "report_every=" + std::to_string(steps)});
  Params params = solve::resolve_solver(method, set);
  const auto& entry = solve::solver_registry().find(method);
  double per_step = 0;
  for (auto _ : state) {
    torch::Generator gen = make_generator(0);
    solve::SolveContext ctx{problem, y, solve::no_prior(), gen, {}};
    auto r = entry.make.run(params, ctx);
    per_step = r.cost.seconds / static_cast<double>(steps);
  }
  // the U-Net alone: forward and backward of a scalar of its output, same input shape
  torch::Generator gen = make_generator(0);
  solve::UntrainedUNetConfig c;
  c.width = state.range(1), c.depth = state.range(2);
  c.in_channels = method == "dip" ? 32 : 1;
  solve::UntrainedUNet unet(c, gen);
  auto input = randn({1, c.in_channels, n, n}, gen);
  unet->forward(input).sum().backward();  // warm-up
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    unet->zero_grad();
    unet->forward(input).square().mean().backward();
  }
  const double net_step = seconds_since(t0) / static_cast<double>(steps);
  state.counters["s_per_step"] = per_step;
  state.counters["s_per_run"] = per_step * kRunSteps;
  state.counters["unet_share"] = net_step / per_step;
  state.counters["params"] = static_cast<double>(unet->parameter_count());
}

}  // namespace

int main(int argc, char** argv) {
  tweedie::keep_freed_memory();  // as the CLI does (runtime.h)
  tweedie::set_threads(tweedie::bench::bench_threads(2));
  for (const char* method : {"self-diffusion", "dip"}) {
    for (auto [width, depth, label] : {std::tuple{64, 5, "w64d5"}, std::tuple{16, 4, "w16d4"}}) {
      const std::string name = std::string(method) + "/" + label;
      benchmark::RegisterBenchmark(name.c_str(), [m = std::string(method)](benchmark::State& s) { run(s, m); })
          ->Args({64, width, depth, width == 64 ? 5 : 40})
          ->Args({128, width, depth, width == 64 ? 3 : 20})
          ->ArgNames({"size", "width", "depth", "steps"})
          ->Iterations(1)
          ->Unit(benchmark::kSecond)
          ->UseRealTime();
    }
  }
  return tweedie::bench::run_benchmarks(argc, argv);
}
