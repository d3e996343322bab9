#pragma once
// Runs a registered solver by name with --set style settings, as `tweedie solve` does, with a
// generator seeded `seed` and no monitor. Shared by the solver unit tests.
#include <string>
#include <vector>

#include "tweedie/core/runtime.h"
#include "tweedie/solve/solver.h"

namespace tweedie::test {

inline solve::Result run_solver(const std::string& name, const std::vector<std::string>& set, const Problem& problem,
                                const torch::Tensor& y, const diffusion::EpsDenoiser& prior, uint64_t seed = 0) {
  torch::Generator gen = make_generator(seed);
  solve::SolveContext ctx{problem, y, prior, gen, {}};
  return solve::solver_registry().find(name).make.run(solve::resolve_solver(name, set), ctx);
}

}  // namespace tweedie::test
