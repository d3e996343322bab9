#include "tweedie/solve/daps.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/edm.h"

namespace tweedie::solve {

const OptionTable<DapsOptions>& DapsOptions::table() {
  using O = DapsOptions;
  static const OptionTable<O> t(
      OptionTable<O>::join(
          {{"annealing_steps", &O::annealing_steps, "annealing levels N (NFE = N · ode_steps)", at_least(1)},
           {"ode_steps", &O::ode_steps, "Euler PF-ODE steps per level", at_least(1)},
           {"langevin_steps", &O::langevin_steps, "Langevin iterations per level", at_least(0)},
           {"lr", &O::lr, "Langevin step η0", positive()},
           {"lr_min_ratio", &O::lr_min_ratio, "δ: the step decays linearly to δ η0", above_up_to(0, 1)},
           {"sigma_max", &O::sigma_max, "largest annealing σ (VE)", positive()},
           {"sigma_min", &O::sigma_min, "smallest nonzero annealing σ", positive()},
           {"ode_sigma_min", &O::ode_sigma_min, "σ where each PF-ODE stops", positive()},
           {"rho", &O::rho, "Karras grid exponent", positive()},
           {"clip_denoised", &O::clip_denoised, "clamp D(x; σ) to [-1, 1] in the PF-ODE (DAPS code: false)"},
           {"sigma_map", &O::sigma_map,
            "network timestep for σ: schedule (interpolated on the network's discrete schedule) | vp (DAPS code: "
            "EDM VPPrecond's continuous VP map)",
            {"schedule", "vp"}}},
          LikelihoodOptions::fields<O>(true, "; DAPS code: τ/√2 = 0.00707")),
      [](const O& o) -> std::string {
        if (!(o.sigma_min < o.sigma_max))
          return "need sigma_max > sigma_min, got " + show_number(o.sigma_max) + " and " + show_number(o.sigma_min);
        if (!(o.ode_sigma_min < o.sigma_min))
          return "ode_sigma_min must be below sigma_min (" + show_number(o.sigma_min) + "), got " +
                 show_number(o.ode_sigma_min);
        return "";
      });
  return t;
}

using diffusion::karras_sigmas;

Result daps(const SolveContext& ctx, const DapsOptions& o) {
  const auto& prior = ctx.prior;
  const Problem lik = likelihood_problem(ctx, o, "daps");
  const int64_t N = o.annealing_steps;
  const auto device = ctx.y.device();
  const op::Shape shape = op::with_batch(ctx.y.size(0), lik.op->in_shape());
  // σ_0..σ_{N−1} from an (N+1)-point grid, then σ_N = 0 (the DAPS scheduler's num_steps + 1)
  std::vector<double> sigma = karras_sigmas(o.sigma_max, o.sigma_min, N + 1, o.rho);
  sigma.back() = 0.0;
  CostMeter meter(prior);
  Result result;
  const Likelihood data(lik, ctx.y);

  torch::Tensor x = o.sigma_max * randn(shape, ctx.gen, device);  // x ~ N(0, σ_max² I)
  for (int64_t k = 0; k < N; ++k) {
    torch::Tensor x0hat;
    {
      // (1) x̂0: Euler on the PF-ODE dx/ds = (x − D(x; s))/s from σ_k to σ_ode
      torch::NoGradGuard no_grad;
      const auto grid = karras_sigmas(sigma[k], o.ode_sigma_min, o.ode_steps + 1, o.rho);
      x0hat = x;
      for (int64_t i = 0; i + 1 < static_cast<int64_t>(grid.size()); ++i) {
        auto den = o.sigma_map == "vp"
                       ? prior.denoise_at(x0hat, torch::tensor(grid[i], torch::kFloat64),
                                          torch::tensor(diffusion::vp_sigma_to_t(grid[i]), torch::kFloat64))
                       : prior.denoise(x0hat, grid[i]);
        if (o.clip_denoised) den = den.clamp(-1, 1);
        auto d = (x0hat - den) / grid[i];
        x0hat = x0hat + (grid[i + 1] - grid[i]) * d;
      }
    }
    // (2) Langevin on p(x0 | x̂0, y) ∝ exp(−L(x0; y) − ‖x0 − x̂0‖²/(2σ_k²)), step η_k
    const double lr = o.lr * (1 + (static_cast<double>(k) / static_cast<double>(N + 1)) * (o.lr_min_ratio - 1));
    const double inv_s2 = 1 / (sigma[k] * sigma[k]);
    torch::Tensor x0 = x0hat.clone();
    for (int64_t it = 0; it < o.langevin_steps; ++it) {
      const torch::Tensor g = data.grad(x0);  // ∇L
      torch::NoGradGuard no_grad;
      // x0 ← x0 + η (−∇L + (x̂0 − x0)/σ_k²) + √(2η) ξ
      auto score = (x0hat - x0) * inv_s2 - g;
      x0 = x0 + lr * score + std::sqrt(2 * lr) * randn(shape, ctx.gen, device);
    }
    require_finite(x0, "daps", k + 1);
    // (3) x ← x0 + σ_{k+1} ξ
    {
      torch::NoGradGuard no_grad;
      x = x0 + sigma[k + 1] * randn(shape, ctx.gen, device);
    }
    if (!step_done(ctx, meter, result, k + 1, N, "anneal", x0, *lik.op)) {
      x = x0;
      break;
    }
  }
  result.estimate = x;
  result.cost = meter.finish(0, data.grads());
  return result;
}

void enroll_daps(SolverRegistry& r) {
  enroll<DapsOptions>(r, "daps",
                      "DAPS (Zhang et al. 2024): annealed PF-ODE estimates + Langevin in x0 space; "
                      "likelihood=linear is seed 001's link-ignoring baseline",
                      daps,
                      {"daps:annealing_steps=3,ode_steps=2,langevin_steps=3",
                       "daps:annealing_steps=3,ode_steps=2,langevin_steps=3,likelihood=linear",
                       "daps:annealing_steps=3,ode_steps=2,langevin_steps=3,clip_denoised=false,sigma_map=vp"});
}

}  // namespace tweedie::solve
