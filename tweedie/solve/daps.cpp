#include "tweedie/solve/daps.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/edm.h"

namespace tweedie::solve {

DapsOptions DapsOptions::from_params(const Params& p) {
  DapsOptions o;
  o.annealing_steps = p.integer("annealing_steps");
  o.ode_steps = p.integer("ode_steps");
  o.langevin_steps = p.integer("langevin_steps");
  o.lr = p.real("lr");
  o.lr_min_ratio = p.real("lr_min_ratio");
  o.sigma_max = p.real("sigma_max");
  o.sigma_min = p.real("sigma_min");
  o.ode_sigma_min = p.real("ode_sigma_min");
  o.rho = p.real("rho");
  o.clip_denoised = p.flag("clip_denoised");
  o.likelihood = LikelihoodOptions::from_params(p);
  if (o.annealing_steps < 1 || o.ode_steps < 1) p.fail("annealing_steps and ode_steps must be >= 1");
  if (o.langevin_steps < 0) p.fail("langevin_steps must be >= 0");
  if (!(o.lr > 0)) p.fail("lr must be positive, got " + format_number(o.lr));
  if (!(o.lr_min_ratio > 0 && o.lr_min_ratio <= 1)) p.fail("lr_min_ratio must be in (0, 1]");
  if (!(o.sigma_max > o.sigma_min && o.sigma_min > 0))
    p.fail("need sigma_max > sigma_min > 0, got " + format_number(o.sigma_max) + " and " + format_number(o.sigma_min));
  if (!(o.ode_sigma_min > 0 && o.ode_sigma_min < o.sigma_min)) p.fail("ode_sigma_min must be in (0, sigma_min)");
  if (!(o.rho > 0)) p.fail("rho must be positive");
  return o;
}

nlohmann::json DapsOptions::to_json() const {
  nlohmann::json j = {{"annealing_steps", annealing_steps}, {"ode_steps", ode_steps},
                      {"langevin_steps", langevin_steps},   {"lr", lr},
                      {"lr_min_ratio", lr_min_ratio},       {"sigma_max", sigma_max},
                      {"sigma_min", sigma_min},             {"ode_sigma_min", ode_sigma_min},
                      {"rho", rho},                         {"clip_denoised", clip_denoised}};
  likelihood.add_json(j, true);
  return j;
}

using diffusion::karras_sigmas;

Result daps(const SolveContext& ctx, const DapsOptions& o) {
  const auto& prior = ctx.prior;
  const Problem lik = likelihood_problem(ctx, o.likelihood, "daps");
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
        auto den = prior.denoise(x0hat, grid[i]);
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
  const DapsOptions d;
  r.add({"daps",
         "DAPS (Zhang et al. 2024): annealed PF-ODE estimates + Langevin in x0 space; "
         "likelihood=linear is seed 001's link-ignoring baseline",
         {{"annealing_steps", std::to_string(d.annealing_steps), "annealing levels N (NFE = N · ode_steps)"},
          {"ode_steps", std::to_string(d.ode_steps), "Euler PF-ODE steps per level"},
          {"langevin_steps", std::to_string(d.langevin_steps), "Langevin iterations per level"},
          {"lr", format_number(d.lr), "Langevin step η0"},
          {"lr_min_ratio", format_number(d.lr_min_ratio), "δ: the step decays linearly to δ η0"},
          {"sigma_max", format_number(d.sigma_max), "largest annealing σ (VE)"},
          {"sigma_min", format_number(d.sigma_min), "smallest nonzero annealing σ"},
          {"ode_sigma_min", format_number(d.ode_sigma_min), "σ where each PF-ODE stops"},
          {"rho", format_number(d.rho), "Karras grid exponent"},
          {"clip_denoised", d.clip_denoised ? "true" : "false", "clamp D(x; σ) to [-1, 1] in the PF-ODE"},
          {"likelihood", "channel", "channel: the problem's NLL (general form) | linear: y = A x + noise, link ignored"},
          {"sigma", "0", "σ of the linear form's Gaussian (0 = the channel's noise scale; DAPS code: τ/√2 = 0.00707)"}},
         {[](const Params& p, const SolveContext& ctx) { return daps(ctx, DapsOptions::from_params(p)); },
          [](const Params& p) { return DapsOptions::from_params(p).to_json(); }},
         {"daps:annealing_steps=3,ode_steps=2,langevin_steps=3",
          "daps:annealing_steps=3,ode_steps=2,langevin_steps=3,likelihood=linear"}});
}

}  // namespace tweedie::solve
