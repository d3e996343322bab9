#pragma once
// Shared by the solver unit tests: the exact Gaussian prior whose posteriors they know in closed
// form, and running a registered solver by name as `tweedie solve` does.
#include <memory>
#include <string>
#include <vector>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/gaussian_prior.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/solve/solver.h"

namespace tweedie::test {

// The exact ε-network of N(0, variance·I) on items of shape `item`, linear 1000-step schedule.
inline std::shared_ptr<diffusion::EpsDenoiser> exact_gaussian_prior(const op::Shape& item, double variance) {
  auto base = diffusion::make_schedule("linear", 1000);
  return std::make_shared<diffusion::EpsDenoiser>(
      diffusion::gaussian_eps_model(base, torch::zeros(item, torch::kFloat64), torch::full(item, variance, torch::kFloat64)),
      base);
}

// Runs solver `name` with --set style settings, a generator seeded `seed` and no monitor.
inline solve::Result run_solver(const std::string& name, const std::vector<std::string>& set, const Problem& problem,
                                const torch::Tensor& y, const diffusion::EpsDenoiser& prior, uint64_t seed = 0) {
  torch::Generator gen = make_generator(seed);
  solve::SolveContext ctx{problem, y, prior, gen, {}};
  return solve::solver_registry().find(name).make.run(solve::resolve_solver(name, set), ctx);
}

}  // namespace tweedie::test
