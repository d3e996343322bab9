#pragma once
// The x-subproblem of the half-quadratic-splitting solvers (Diff-OneBit, DiffPIR) with a
// Gaussian channel is a quadratic with a closed-form minimiser,
//   x* = (AᵀA/σ² + μ I)⁻¹ (Aᵀy/σ² + μ z),
// which their inner solvers must reach. One small dense problem, shared by their tests.
#include <torch/torch.h>

#include "tweedie/core/runtime.h"
#include "tweedie/problem.h"

namespace tweedie::test {

struct QuadraticProxCase {
  static constexpr double kSigma = 0.5, kMu = 2.0;
  Problem problem = make_problem("gaussian:m=12,impl=dense", "gaussian:sigma=0.5", {16}, 4);
  torch::Tensor x, y, z;  // truth, its measurements, the point the prox is anchored at [3, 16]

  QuadraticProxCase() {
    torch::Generator g = make_generator(2);
    x = randn({3, 16}, g);
    z = randn({3, 16}, g);
    y = simulate(problem, x);
  }

  // x* in float64, from A assembled column by column (A e_j)
  torch::Tensor minimiser() const {
    auto A = problem.op->apply(torch::eye(16)).t().to(torch::kFloat64);  // [12, 16]
    auto H = A.t().matmul(A) / (kSigma * kSigma) + kMu * torch::eye(16, torch::kFloat64);
    auto rhs = y.to(torch::kFloat64).matmul(A) / (kSigma * kSigma) + kMu * z.to(torch::kFloat64);
    return torch::linalg_solve(H, rhs.t()).t();
  }
};

}  // namespace tweedie::test
