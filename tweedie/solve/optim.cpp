#include "tweedie/solve/optim.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

void Adam::step(torch::Tensor& x, const torch::Tensor& g) {
  torch::NoGradGuard no_grad;
  if (!m_.defined()) {
    m_ = torch::zeros_like(x);
    v_ = torch::zeros_like(x);
  }
  ++t_;
  m_.mul_(o_.beta1).add_(g, 1 - o_.beta1);         // m ← β₁ m + (1−β₁) g
  v_.mul_(o_.beta2).addcmul_(g, g, 1 - o_.beta2);  // v ← β₂ v + (1−β₂) g²
  const double bc1 = 1 - std::pow(o_.beta1, static_cast<double>(t_));
  const double bc2 = 1 - std::pow(o_.beta2, static_cast<double>(t_));
  auto denom = (v_.sqrt() / std::sqrt(bc2)).add_(o_.eps);
  x.addcdiv_(m_, denom, -o_.lr / bc1);              // x ← x − lr m̂ / (√v̂ + ε)
}

torch::Tensor prox_adam(const Likelihood& lik, const torch::Tensor& z, const torch::Tensor& mu, int64_t iterations,
                        double lr) {
  torch::Tensor mu_b = mu.to(z.options());
  if (mu_b.dim() == 1) mu_b = per_item(mu_b, z);  // one μ per item: [B] → [B, 1, ..., 1]
  AdamOptions ao;
  ao.lr = lr;
  Adam adam(ao);
  torch::Tensor x = z.detach().clone();
  for (int64_t it = 1; it <= iterations; ++it) {
    auto g = lik.grad(x);
    torch::NoGradGuard no_grad;
    g.add_(mu_b * (x - z));  // + ∇ (μ/2)‖x − z‖² = μ (x − z)
    adam.step(x, g);
  }
  return x;
}

CgProxResult gaussian_prox_cg(const op::Operator& A, const torch::Tensor& y, const torch::Tensor& z, double mu,
                              double sigma, int64_t iterations) {
  require(A.linear(), "prox=cg needs a linear operator, got " + A.name());
  torch::NoGradGuard no_grad;
  const double c = mu * sigma * sigma;  // (AᵀA + c I) x = Aᵀy + c z,  c = μσ²
  auto dot = [&](const torch::Tensor& a, const torch::Tensor& b) { return per_item((a * b).flatten(1).sum(1), a); };
  CgProxResult r;
  torch::Tensor x = z.clone();
  torch::Tensor res = A.adjoint(y - A.apply(x));  // b − (AᵀA + cI) z = Aᵀ(y − A z)
  ++r.normal_products;
  torch::Tensor p = res.clone(), rs = dot(res, res);
  for (int64_t it = 0; it < iterations; ++it) {
    auto Ap = A.normal(p) + c * p;
    ++r.normal_products;
    auto alpha = rs / dot(p, Ap).clamp_min(1e-30);  // α = rᵀr / pᵀ(AᵀA + cI)p
    x = x + alpha * p;
    res = res - alpha * Ap;
    auto rs_new = dot(res, res);
    p = res + (rs_new / rs.clamp_min(1e-30)) * p;   // β = r'ᵀr'/rᵀr
    rs = rs_new;
  }
  r.x = x;
  return r;
}

torch::Tensor sgld(const Likelihood& lik, torch::Tensor x, const SgldOptions& o, torch::Generator& gen) {
  x = x.detach();
  const double noise = std::sqrt(2 * o.lr) * o.noise;
  for (int64_t i = 0; i < o.steps; ++i) {
    auto g = lik.grad(x);
    torch::NoGradGuard no_grad;
    x = x - o.lr * g;                                               // gradient step on f
    if (noise > 0) x = x + noise * randn(x.sizes(), gen, x.device());  // + √(2η) γ z
  }
  return x;
}

}  // namespace tweedie::solve
