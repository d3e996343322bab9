#include "tweedie/solve/ddrm.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/solve/spectral.h"

namespace tweedie::solve {

TWEEDIE_SOLVER_TABLE(DdrmOptions,
    {"ddrm", {"ddrm:steps=5", "ddrm:steps=4,eta=0,eta_b=0.5,sigma=0.1"},
     "DDRM (Kawar et al. 2022): spectral-domain posterior sampling for y = A x + noise; needs an "
     "operator with an SVD view; the link, if any, is ignored"},
    {{"steps", &O::steps, "sampling steps = NFE (uniform skip T/steps)", at_least(1)},
     {"eta", &O::eta, "η (η_A = η_C): fresh-noise weight, 0 = deterministic", in_range(0, 1)},
     {"eta_b", &O::eta_b, "η_B: weight of the measurement where it is cleaner than x_t", in_range(0, 1)},
     noise_sigma_option(&O::sigma, "σ₀"),
     {"draws", &O::draws,
      "random numbers: tweedie (one z per coordinate and step) or authors (the code's three draws per step, "
      "the same law; replays noise recorded from the official code)",
      draws_words()}})

Result ddrm(const SolveContext& ctx, const DdrmOptions& o) {
  torch::NoGradGuard no_grad;
  const CostMeter meter(ctx.prior);  // from here: the SVD (on first use) counts as the solve's
  const Spectral sp = spectral_measurement(ctx, o.sigma, "ddrm");
  const int64_t B = ctx.y.size(0), N = sp.s.size(0);
  const auto device = ctx.y.device();
  const double s0 = sp.sigma0, root = std::sqrt(1 - o.eta * o.eta);
  auto ve = [](double ab) { return ab < 1 ? std::sqrt((1 - ab) / ab) : 0.0; };  // σ_t = √((1 − ᾱ)/ᾱ)
  auto noise = [&] { return randn({B, N}, ctx.gen, device); };

  // init: x̄_i = (Uᵀy)_i/s_i + √(σ_K² − σ₀²/s_i²) z_i where s_i σ_K > σ₀, else σ_K z_i
  const auto grid = uniform_skip_timesteps(ctx.prior.base().size(), o.steps);
  const double sK = ve(ctx.prior.base().alphas_cumprod[grid.back()]);
  auto z = noise();
  auto xbar = torch::where(sp.s * sK > s0, sp.pinv_y + (sK * sK - (s0 * sp.s_inv).pow(2)).clamp_min(0).sqrt() * z,
                           sK * z);
  torch::Tensor x_T = sp.svd->V(xbar / sK);  // x_{t_K} = V(x̄/σ_K) (the code's VE draw over σ_K)

  return uniform_grid_sampling(ctx, meter, o.steps, x_T, "ddrm", [&](const torch::Tensor& x0, const torch::Tensor& eps,
                                                             double ab_next) {
    const double sn = ve(ab_next);  // σ' (0 at t' = −1)
    auto v0 = sp.svd->Vt(x0);       // v̄ = Vᵀx̂0
    auto zk = noise();
    if (o.draws == NoiseDraws::kAuthors) {
      // the code's draws: z_missing [B, N] (drawn above), z_after [B, #after] in coordinate order,
      // z_before [B, M] read at the "before" coordinates
      auto after_idx = torch::nonzero((sp.s > 0) & (sp.s * sn < s0)).flatten();
      auto before_idx = torch::nonzero(sp.s * sn > s0).flatten();
      auto z_after = randn({B, after_idx.size(0)}, ctx.gen, device);
      auto z_before = randn({B, op::numel(ctx.problem.op->out_shape())}, ctx.gen, device);
      zk.index_copy_(1, after_idx, z_after);
      zk.index_copy_(1, before_idx, z_before.index_select(1, before_idx));
    }
    // missing: v̄ + √(1−η²) σ' Vᵀε̂ + η σ' z
    auto next = v0 + root * sn * sp.svd->Vt(eps) + o.eta * sn * zk;
    if (s0 > 0) {
      // s_i σ' < σ₀ (y noisier than x_t'): v̄ + √(1−η²) σ' (Uᵀy − s v̄)/σ₀ + η σ' z
      auto after = (sp.s > 0) & (sp.s * sn < s0);
      next = torch::where(after, v0 + root * sn * (sp.Uty - sp.s * v0) / s0 + o.eta * sn * zk, next);
    }
    // s_i σ' > σ₀ (y cleaner than x_t'): η_B Uᵀy/s + (1 − η_B) v̄ + √(σ'² − η_B² σ₀²/s²) z
    auto before_std = (sn * sn - (o.eta_b * s0 * sp.s_inv).pow(2)).clamp_min(0).sqrt();
    next = torch::where(sp.s * sn > s0, o.eta_b * sp.pinv_y + (1 - o.eta_b) * v0 + before_std * zk, next);
    return std::sqrt(ab_next) * sp.svd->V(next);  // x_{t'} = √ᾱ' V(x̄')
  });
}

}  // namespace tweedie::solve
