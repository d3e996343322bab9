#pragma once
// Inner optimisers and samplers the solvers share, each counting its likelihood gradients
// through the Likelihood it is given:
//  * Adam (Kingma & Ba 2015, Algorithm 1) with torch.optim.Adam's arithmetic, on a tensor whose
//    gradient the caller supplies (RED-diff's μ, Diff-OneBit's prox). Written here rather than
//    with torch::optim::Adam because the callers hold a plain tensor and compute its gradient
//    themselves (through Likelihood, outside any autograd graph); torch::optim::Adam wants a leaf
//    with .grad() set before each step, for the same arithmetic.
//  * proximal steps of a data term: Adam for any channel, conjugate gradients for a Gaussian one;
//  * SGLD on a data term (Welling & Teh 2011): x ← x − η ∇f(x) + √(2η)·γ·z, the MO module's
//    inner loop (seed 002, methods.md §5.1); γ = 0 is plain gradient descent.
#include <torch/torch.h>

#include <cstdint>

#include "tweedie/solve/likelihood.h"

namespace tweedie::solve {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;  // torch.optim.Adam defaults
  double eps = 1e-8;
};

class Adam {
 public:
  explicit Adam(AdamOptions o) : o_(o) {}
  // One step on x in place with gradient g (shapes equal):
  //   m ← β₁ m + (1−β₁) g;  v ← β₂ v + (1−β₂) g²;  x ← x − lr m̂/(√v̂ + ε)
  void step(torch::Tensor& x, const torch::Tensor& g);
  int64_t steps() const { return t_; }

 private:
  AdamOptions o_;
  torch::Tensor m_, v_;
  int64_t t_ = 0;
};

struct SgldOptions {
  int64_t steps = 0;   // N
  double lr = 0;       // η
  double noise = 1;    // γ: 1 = SGLD proper, 0 = gradient descent
};

// The proximal step of a data term: argmin_x Σ_items [nll_b(x) + (μ_b/2)‖x_b − z_b‖²] by
// `iterations` Adam steps from x = z (fresh state each call). μ is [B] or one value. Diff-OneBit's
// x-subproblem and DiffPIR's prox=adam. lik counts the gradients.
torch::Tensor prox_adam(const Likelihood& lik, const torch::Tensor& z, const torch::Tensor& mu, int64_t iterations,
                        double lr);

// argmin_x ‖y − A x‖²/(2σ²) + (μ/2)‖x − z‖² per item, by `iterations` CG steps from x = z on
// (AᵀA + μσ² I) x = Aᵀy + μσ² z. Needs a linear A. DiffPIR's prox=cg.
struct CgProxResult {
  torch::Tensor x;
  int64_t normal_products = 0;  // AᵀA applications (each one A and one Aᵀ)
};
CgProxResult gaussian_prox_cg(const op::Operator& A, const torch::Tensor& y, const torch::Tensor& z, double mu,
                              double sigma, int64_t iterations);

// N steps of x ← x − η ∇ₓ f(x) + √(2η) γ z, z ~ N(0, I) from `gen`, where f(x) = lik.nll(x)
// summed over items. Returns the new x (detached); lik counts the N gradients.
torch::Tensor sgld(const Likelihood& lik, torch::Tensor x, const SgldOptions& o, torch::Generator& gen);

}  // namespace tweedie::solve
