#include "tweedie/diffusion/gmm_mala.h"

#include <cmath>
#include <tuple>

#include "tweedie/core/error.h"
#include "tweedie/diffusion/gmm_gibbs.h"

namespace tweedie::diffusion {

using torch::Tensor;

namespace {

const auto kMalaF64 = torch::TensorOptions().dtype(torch::kFloat64);

// M⁻¹ = P⁻¹ + H on the active pixels (the header's metric), dense [Da, Da].
Tensor metric_precision(const GaussianMixture& prior, const Tensor& curvature) {
  const int64_t Da = prior.active_pixels(), d = prior.dims();
  const Tensor& U = prior.basis;
  const Tensor pi = prior.log_weights.exp();
  const Tensor dev = prior.means - at::matmul(pi, prior.means);  // μ_k − μ̄ [K, Da]
  const Tensor a = at::matmul(dev, U);                            // Uᵀ(μ_k − μ̄) [K, d]
  // C̄ = Σ_k π_k (V_k diag(λ_k) V_kᵀ + a_k a_kᵀ): the total covariance inside span(U)
  const Tensor within = at::einsum("kde,ke,kfe->kdf", {prior.eigvecs, prior.eigvals, prior.eigvecs});
  const Tensor Cbar = (pi.view({-1, 1, 1}) * (within + a.unsqueeze(2) * a.unsqueeze(1))).sum(0);
  Tensor precision = at::matmul(at::matmul(U, at::cholesky_inverse(at::linalg_cholesky(Cbar))), U.t());
  if (d < Da) {
    // s̄² = Σ_k π_k (s_k² + ‖(I − UUᵀ)(μ_k − μ̄)‖² / (Da − d)): the total variance outside it
    const Tensor outside = (dev.square().sum(1) - a.square().sum(1)).clamp_min(0) / static_cast<double>(Da - d);
    const double s2 = (pi * (prior.residual + outside)).sum().item<double>();
    precision = precision + (torch::eye(Da, kMalaF64) - at::matmul(U, U.t())) / s2;
  }
  if (curvature.defined()) {
    const Tensor H = curvature.to(torch::kCPU, torch::kFloat64).index_select(0, prior.active).index_select(1, prior.active);
    precision = precision + 0.5 * (H + H.t());
  }
  return 0.5 * (precision + precision.t());
}

}  // namespace

MalaChains gmm_mala(const GaussianMixture& prior, const LogLikelihood& log_likelihood, int64_t B,
                    const Tensor& curvature, const MalaOptions& o, torch::Generator& gen, const JumpProposal* jumps) {
  require(B >= 1 && o.chains >= 1 && o.warmup >= 0 && o.thin >= 1 && o.iterations / o.thin >= 4,
          "MALA: need items >= 1, chains >= 1, thin >= 1 and iterations / thin >= 4");
  require(o.target_accept > 0 && o.target_accept < 1 && o.initial_step > 0,
          "MALA: need target_accept in (0, 1) and initial_step > 0");
  const int64_t C = o.chains, R = B * C, D = prior.item_numel(), Da = prior.active_pixels();
  require(!curvature.defined() || (curvature.dim() == 2 && curvature.size(0) == D && curvature.size(1) == D),
          "MALA: curvature must be [" + std::to_string(D) + ", " + std::to_string(D) + "]");
  const Tensor L = at::linalg_cholesky(metric_precision(prior, curvature));  // M⁻¹ = L Lᵀ
  const Tensor active = prior.active;
  const Tensor fixed_rows = prior.fixed.view({1, D}).expand({R, D});

  // log p(x | y) up to a constant and its gradient, at the active pixels xa [R, Da]
  auto target = [&](const Tensor& xa) -> std::pair<Tensor, Tensor> {
    auto [log_prior, score] = prior.active_log_density_and_score(xa);
    torch::AutoGradMode grad_on(true);
    const Tensor v = xa.detach().clone().requires_grad_(true);
    const Tensor ll = log_likelihood(at::index_copy(fixed_rows, 1, active, v));
    require(ll.dim() == 1 && ll.size(0) == R,
            "MALA: the log-likelihood must give one value per row [" + std::to_string(R) + "]");
    const Tensor g = torch::autograd::grad({ll.sum()}, {v}, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                           /*allow_unused=*/true)[0];
    return {log_prior + ll.detach().to(torch::kFloat64),
            g.defined() ? score + g.to(torch::kFloat64) : score};
  };
  auto metric_times = [&](const Tensor& g) { return at::cholesky_solve(g.t(), L).t(); };                  // M g
  auto metric_half = [&](const Tensor& xi) { return at::linalg_solve_triangular(L.t(), xi.t(), true).t(); };  // L⁻ᵀ ξ

  torch::NoGradGuard no_grad;
  Tensor xa = prior.sample(R, gen).reshape({R, D}).index_select(1, active);
  Tensor lp, g;  // log p(x | y) and its gradient at the chains' states
  std::tie(lp, g) = target(xa);
  Tensor log_h = torch::full({B}, std::log(o.initial_step), kMalaF64);
  Tensor log_h_sum = torch::zeros({B}, kMalaF64);
  int64_t averaged = 0;
  Tensor accepted = torch::zeros({B}, kMalaF64), jumped = torch::zeros({B}, kMalaF64);
  int64_t jump_tries = 0;
  require(jumps == nullptr || o.jump_every >= 1, "MALA: jump_every must be at least 1");
  // Accepts each row's proposal (x', log p(x' | y), its gradient) with probability min(1, α); a
  // non-finite log α rejects. Returns the accepted rows and log α.
  auto metropolis = [&](const Tensor& log_ratio, const Tensor& xp, const Tensor& lpp,
                        const Tensor& gp) -> std::pair<Tensor, Tensor> {
    const Tensor log_alpha =
        torch::where(torch::isfinite(log_ratio), log_ratio, torch::full_like(log_ratio, -INFINITY));
    const Tensor accept = at::rand({R}, gen, kMalaF64).log() < log_alpha;
    xa = torch::where(accept.unsqueeze(1), xp, xa);
    g = torch::where(accept.unsqueeze(1), gp, g);
    lp = torch::where(accept, lpp, lp);
    return {accept, log_alpha};
  };
  // one mode-jump proposal per chain, accepted by the independence-sampler ratio
  auto jump = [&]() -> Tensor {
    const Tensor xq = jumps->draw(C, gen).to(torch::kCPU, torch::kFloat64).reshape({R, D});
    const Tensor xqa = xq.index_select(1, active);
    auto [lpq, gq] = target(xqa);
    const Tensor log_q_new = jumps->log_density(xq.view({B, C, D})).reshape({R});
    const Tensor log_q_old = jumps->log_density(at::index_copy(fixed_rows, 1, active, xa).view({B, C, D})).reshape({R});
    const Tensor accept = metropolis(lpq - lp + log_q_old - log_q_new, xqa, lpq, gq).first;
    return accept.view({B, C}).to(torch::kFloat64).mean(1);
  };
  const int64_t kept_n = o.iterations / o.thin;
  Tensor kept = torch::empty({kept_n, R, D}, kMalaF64);
  for (int64_t it = 0; it < o.warmup + kept_n * o.thin; ++it) {
    const Tensor h = log_h.exp().repeat_interleave(C).unsqueeze(1);  // [R, 1]
    const Tensor xi = at::randn({R, Da}, gen, kMalaF64);
    const Tensor mean_fwd = xa + 0.5 * h * metric_times(g);
    const Tensor xp = mean_fwd + h.sqrt() * metric_half(xi);
    auto [lpp, gp] = target(xp);
    const Tensor mean_bwd = xp + 0.5 * h * metric_times(gp);
    // log q(x' | x) = −‖Lᵀ(x' − mean_fwd)‖² / 2h = −‖ξ‖² / 2;  log q(x | x') likewise from x'
    const Tensor log_q_fwd = -0.5 * xi.square().sum(1);
    const Tensor log_q_bwd = -at::matmul(xa - mean_bwd, L).square().sum(1) / (2 * h.squeeze(1));
    const auto [accept, log_alpha] = metropolis(lpp - lp + log_q_bwd - log_q_fwd, xp, lpp, gp);
    if (jumps != nullptr && (it + 1) % o.jump_every == 0) {
      const Tensor rate = jump();
      if (it >= o.warmup) {
        jumped += rate;
        ++jump_tries;
      }
    }
    if (it < o.warmup) {
      // Robbins–Monro: log h += γ_t (mean acceptance probability − target), γ_t = (t + 4)^−0.6
      const Tensor alpha = log_alpha.clamp_max(0).exp().view({B, C}).mean(1);
      log_h = log_h + std::pow(static_cast<double>(it + 4), -0.6) * (alpha - o.target_accept);
      if (2 * it >= o.warmup) {
        log_h_sum += log_h;
        ++averaged;
      }
      if (it == o.warmup - 1) log_h = log_h_sum / static_cast<double>(averaged);
      continue;
    }
    const int64_t after = it - o.warmup;
    accepted += accept.view({B, C}).to(torch::kFloat64).mean(1);
    if ((after + 1) % o.thin == 0) kept[after / o.thin] = at::index_copy(fixed_rows, 1, active, xa);
  }
  MalaChains out;
  std::vector<int64_t> shape{B, C, kept_n};
  shape.insert(shape.end(), prior.item_shape.begin(), prior.item_shape.end());
  const Tensor draws = kept.permute({1, 0, 2}).reshape({B, C, kept_n, D});
  auto [rhat, ess] = chain_diagnostics(draws.index_select(3, active));
  out.rhat = rhat.amax(1);
  out.ess = ess.amin(1);
  out.accept = accepted / static_cast<double>(kept_n * o.thin);
  out.step = log_h.exp();
  out.jump_accept = jump_tries > 0 ? jumped / static_cast<double>(jump_tries) : jumped;
  out.draws = draws.view(shape);
  return out;
}

}  // namespace tweedie::diffusion
