#include "tweedie/solve/mo.h"

#include <algorithm>
#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/solve/optim.h"

namespace tweedie::solve {

std::string MoOptions::check() const {
  if (mo && mo_steps == 0) return "mo_steps must be at least 1 with mo=true (or set mo=false)";
  return "";
}

std::string MoOptions::floor_check(double sigma_max) const {
  if (mo_sigma_min < sigma_max) return "";
  return "mo_sigma_min (" + show_number(mo_sigma_min) + ") must be below sigma_max (" + show_number(sigma_max) + ")";
}

Likelihood mo_likelihood(const SolveContext& ctx, const MoOptions& o, const std::string& solver) {
  if (o.mo_likelihood == DataTerm::kChannel) {
    require(ctx.problem.channel != nullptr, solver + ": mo_likelihood=channel needs the problem's channel");
    return Likelihood(ctx.problem, ctx.y);
  }
  // ‖y − z‖²/(2σ²); at σ² = ½ it is ‖y − z‖², the paper's data term (up to a constant)
  return Likelihood(gaussian_problem(ctx.problem, resolve_sigma(ctx, o.mo_sigma, solver, false, "mo_sigma")), ctx.y);
}

double mo_step_size(const Likelihood& data, const MoOptions& o, const torch::Tensor& at, torch::Generator& gen) {
  constexpr int64_t kPowerIterations = 20;
  const op::Operator& A = data.op();
  // linear operators: J = A anywhere; nonlinear: the Jacobian at the first estimate
  const auto e = gauss_newton_norm(A, A.linear() ? torch::zeros_like(at) : at, kPowerIterations, gen);
  data.count(e.products);
  // L = λ_max/s² for a channel NLL of scale s (the linear form: s = σ, L = 2 λ_max at σ² = ½)
  const double s = data.problem().channel->scale();
  const double L = e.lambda_max / (s * s);
  require(L > 0 && std::isfinite(L), "MO: the data term has no curvature (λ_max(JᵀJ) = " + format_number(e.lambda_max) +
                                         "): the measurements do not depend on x");
  return o.mo_lr / L;
}

torch::Tensor measurements_optimization(const diffusion::Denoiser& base, const Likelihood& data,
                                        const torch::Tensor& x0, double sigma, double eta, const MoOptions& o,
                                        torch::Generator& gen) {
  if (!o.mo) return x0;
  // x ← x − η ∇f(x) + √(2η) γ z, N times, from x̂0
  torch::Tensor x = sgld(data, x0, {o.mo_steps, eta, o.mo_noise}, gen);
  if (!o.mo_project) return x;
  torch::NoGradGuard no_grad;
  // x' = x + σ_p z',  σ_p = max(σ_i, σ_min);  return D(x'; σ_p)
  const double sp = std::max(sigma, o.mo_sigma_min);
  if (sp <= 0) return x;
  return base.denoise(x + sp * randn(x.sizes(), gen, x.device()), sp);
}

torch::Tensor MoDenoiser::denoise(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const {
  require(sigma.numel() == 1, "MO denoiser: one noise level per call, got " + std::to_string(sigma.numel()));
  const double s = sigma.item<double>();
  torch::Tensor x0;
  {
    torch::NoGradGuard no_grad;
    x0 = base_.denoise(x_tilde, sigma);
  }
  if (o_.mo && eta_ == 0) eta_ = mo_step_size(data_, o_, x0, gen_);
  return measurements_optimization(base_, data_, x0, s, eta_, o_, gen_);
}

// ---- DPS-MO ------------------------------------------------------------------------------------

TWEEDIE_SOLVER_TABLE(DpsMoOptions,
    {"dps-mo", {"dps-mo:steps=3,mo_steps=2", "dps-mo:steps=3,mo=false"},
     "DPS-MO (seed 002): EDM Euler sampling with Measurements Optimization (SGLD on the data term, "
     "then a denoiser projection) at every step; mo=false is the plain EDM sampler"},
    OptionTable<O>::join(
        {{"steps", &O::steps, "Euler steps S (NFE = S, or 2S with the projection)", at_least(1)},
         {"sigma_max", &O::sigma_max, "σ of the first Karras point (EDM: 80)", positive()},
         {"sigma_min", &O::sigma_min, "σ of the last Karras point (EDM: 0.002)", positive()},
         {"rho", &O::rho, "Karras grid exponent ρ", positive()},
         {"clip_denoised", &O::clip_denoised, "clamp the step's denoised estimate D_MO(x; σ) to [-1, 1], after MO (the Euler step uses it)"},
         {"eta", &O::eta, "fresh-noise share of the Euler step: 0 re-uses the implied noise (x − D_MO)/σ (EDM's "
                          "deterministic step), 1 the ancestral step with fresh noise", in_range(0, 1)}},
        MoOptions::fields<O>()),
    [](const O& o) -> std::string {
      if (!(o.sigma_min < o.sigma_max))
        return "sigma_min (" + show_number(o.sigma_min) + ") must be below sigma_max (" +
               show_number(o.sigma_max) + ")";
      if (auto bad_floor = o.floor_check(o.sigma_max); !bad_floor.empty()) return bad_floor;
      return o.check();
    })

Result dps_mo(const SolveContext& ctx, const DpsMoOptions& o) {
  const Likelihood data = mo_likelihood(ctx, o, "dps-mo");
  const MoDenoiser denoiser(ctx.prior, data, o, ctx.gen);
  const auto device = ctx.y.device();
  const op::Shape shape = op::with_batch(ctx.y.size(0), ctx.problem.op->in_shape());
  CostMeter meter(ctx.prior);
  Result result;
  torch::Tensor x = o.sigma_max * randn(shape, ctx.gen, device);  // x_0 ~ N(0, σ_max² I)
  diffusion::EdmOptions edm = o;
  auto r = diffusion::edm_sample(denoiser, x, edm, [&](const diffusion::EdmStep& s) {
    require_finite(s.x, "dps-mo", s.step + 1);
    return step_done(ctx, meter, result, s.step + 1, s.num_steps, "", s.denoised, data.op());
  }, &ctx.gen);
  result.estimate = r.x;
  result.cost = meter.finish(0, data.grads());
  return result;
}

}  // namespace tweedie::solve
