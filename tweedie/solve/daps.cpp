#include "tweedie/solve/daps.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/edm.h"

namespace tweedie::solve {

TWEEDIE_SOLVER_TABLE(DapsOptions,
    {"daps",
     {"daps:annealing_steps=3,ode_steps=2,langevin_steps=3",
      "daps:annealing_steps=3,ode_steps=2,langevin_steps=3,likelihood=linear",
      "daps:annealing_steps=3,ode_steps=2,langevin_steps=3,clip_denoised=false,sigma_map=vp"},
     "DAPS (Zhang et al. 2024): annealed PF-ODE estimates + Langevin in x0 space; "
     "likelihood=linear is seed 001's link-ignoring baseline"},
    OptionTable<O>::join(
        {{"annealing_steps", &O::annealing_steps, "annealing levels N (NFE = N · ode_steps; DAPS-1K: 200)",
          at_least(1)},
         {"ode_steps", &O::ode_steps, "Euler PF-ODE steps per level (edm_daps.yaml: 5)", at_least(1)},
         {"langevin_steps", &O::langevin_steps, "Langevin iterations per level (DAPS pixel configs: 100)", at_least(0)},
         {"lr", &O::lr, "Langevin step η0 (seed 001 App. E; DAPS SR, blur, inpainting configs)", positive()},
         {"lr_min_ratio", &O::lr_min_ratio, "δ: the step decays linearly to δ η0", above_up_to(0, 1)},
         {"sigma_max", &O::sigma_max, "largest annealing σ (VE; edm_daps.yaml)", positive()},
         {"sigma_min", &O::sigma_min, "smallest nonzero annealing σ", positive()},
         {"ode_sigma_min", &O::ode_sigma_min, "σ where each PF-ODE stops (edm_daps.yaml's scheduler sigma_min)",
          positive()},
         {"rho", &O::rho, "Karras grid exponent (\"poly-7\")", positive()},
         {"clip_denoised", &O::clip_denoised, "clamp D(x; σ) to [-1, 1] in the PF-ODE (DAPS code: false)"},
         {"sigma_map", &O::sigma_map,
          "network timestep for σ: schedule (interpolated on the network's discrete schedule) | vp (DAPS code: "
          "EDM VPPrecond's continuous VP map)",
          Choice<O::SigmaMap>{{"schedule", O::SigmaMap::kSchedule}, {"vp", O::SigmaMap::kVp}}}},
        LikelihoodOptions::fields<O>(true, "; DAPS code: τ/√2 = 0.00707")),
    [](const O& o) -> std::string {
      if (!(o.sigma_min < o.sigma_max))
        return "need sigma_max > sigma_min, got " + show_number(o.sigma_max) + " and " + show_number(o.sigma_min);
      if (!(o.ode_sigma_min < o.sigma_min))
        return "ode_sigma_min must be below sigma_min (" + show_number(o.sigma_min) + "), got " +
               show_number(o.ode_sigma_min);
      return "";
    })

using diffusion::karras_sigmas;

namespace {

// D(x; σ) with the network's timestep from the DAPS code's map (sigma_map=vp: EDM VPPrecond's
// continuous t_VP(σ)) instead of the network's own schedule; NFE count on the wrapped prior.
class VpMapDenoiser final : public diffusion::Denoiser {
 public:
  explicit VpMapDenoiser(const diffusion::EpsDenoiser& prior) : prior_(prior) {}
  torch::Tensor denoise(const torch::Tensor& x, const torch::Tensor& sigma) const override {
    const double s = sigma.item<double>();
    return prior_.denoise_at(x, torch::tensor(s, torch::kFloat64),
                             torch::tensor(diffusion::vp_sigma_to_t(s), torch::kFloat64));
  }

 private:
  const diffusion::EpsDenoiser& prior_;
};

}  // namespace

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
  const VpMapDenoiser vp_map(prior);
  const diffusion::Denoiser& denoiser = o.sigma_map == DapsOptions::SigmaMap::kVp
                                            ? static_cast<const diffusion::Denoiser&>(vp_map)
                                            : prior;

  torch::Tensor x = o.sigma_max * randn(shape, ctx.gen, device);  // x ~ N(0, σ_max² I)
  for (int64_t k = 0; k < N; ++k) {
    torch::Tensor x0hat;
    {
      // (1) x̂0: Euler on the PF-ODE dx/ds = (x − D(x; s))/s from σ_k to σ_ode (the EDM loop)
      torch::NoGradGuard no_grad;
      const auto grid = karras_sigmas(sigma[k], o.ode_sigma_min, o.ode_steps + 1, o.rho);
      x0hat = diffusion::edm_sample(denoiser, x, grid, {o.clip_denoised, /*eta=*/0}).x;
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

}  // namespace tweedie::solve
