#include "tweedie/solve/diff_onebit.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/solve/optim.h"

namespace tweedie::solve {

using diffusion::index_tensor;
using diffusion::Schedule;

DiffOneBitOptions DiffOneBitOptions::from_params(const Params& p) {
  DiffOneBitOptions o;
  o.steps = p.integer("steps");
  o.timesteps = p.has("timesteps") ? p.text("timesteps") : "";
  o.lambda = p.real("lambda");
  o.zeta = p.real("zeta");
  o.inner_steps = p.integer("inner_steps");
  o.lr = p.real("lr");
  o.clip_denoised = p.flag("clip_denoised");
  if (o.steps < 1) p.fail("steps must be at least 1, got " + std::to_string(o.steps));
  if (!(o.lambda > 0)) p.fail("lambda must be positive, got " + format_number(o.lambda));
  if (!(o.zeta >= 0 && o.zeta <= 1)) p.fail("zeta must be in [0, 1], got " + format_number(o.zeta));
  if (o.inner_steps < 0) p.fail("inner_steps must be >= 0");
  if (!(o.lr > 0)) p.fail("lr must be positive, got " + format_number(o.lr));
  return o;
}

nlohmann::json DiffOneBitOptions::to_json() const {
  return {{"steps", steps},
          {"timesteps", timesteps.empty() ? "ddim" + std::to_string(steps) : timesteps},
          {"lambda", lambda},
          {"zeta", zeta},
          {"inner_steps", inner_steps},
          {"lr", lr},
          {"clip_denoised", clip_denoised}};
}

Result diff_onebit(const SolveContext& ctx, const DiffOneBitOptions& o) {
  const auto& prior = ctx.prior;
  const Problem& problem = ctx.problem;
  const Schedule s =
      diffusion::respace(prior.base(), o.timesteps.empty() ? "ddim" + std::to_string(o.steps) : o.timesteps);
  const int64_t K = s.size(), B = ctx.y.size(0);
  const auto device = ctx.y.device();
  CostMeter meter(prior);
  Result result;
  require(problem.channel != nullptr, "diff-onebit: the x-subproblem needs the problem's channel (its likelihood)");
  const Likelihood data(problem, ctx.y);

  // Line 1: x̃_{t_K} ~ N(0, I)
  op::Shape shape = op::with_batch(B, problem.op->in_shape());
  torch::Tensor x = randn(shape, ctx.gen, device);
  torch::Tensor x0;
  for (int64_t k = K - 1; k >= 0; --k) {
    const double ab = s.alphas_cumprod[k], ab_prev = s.alphas_cumprod_prev[k];
    const double a = std::sqrt(ab), sig = std::sqrt(1 - ab);
    const double a_prev = std::sqrt(ab_prev), sig_prev = std::sqrt(1 - ab_prev);
    // Line 3: z̃ = (x̃_t − σ_t ε_θ(x̃_t, t))/α_t   (Tweedie; 1 NFE)
    torch::Tensor z;
    {
      torch::NoGradGuard no_grad;
      z = prior.pred_x0(s, x, index_tensor(k, B, device), o.clip_denoised);
    }
    // Line 4: x̂_{0|t} = argmin_x L(x; y) + (μ_k/2)‖x − z̃‖²,  μ_k = λ α_t²/σ_t²
    const double mu = o.lambda * ab / (1 - ab);
    x0 = prox_adam(data, z, torch::tensor(mu, torch::kFloat64), o.inner_steps, o.lr);
    require_finite(x0, "diff-onebit", K - k);
    torch::NoGradGuard no_grad;
    // Line 5: ε̃ = (x̃_t − α_t x̂_{0|t})/σ_t
    torch::Tensor eps = (x - a * x0) / sig;
    // Line 6 (Alg. 1) / line 7 (Alg. 2): x̃_{t−1} = α_{t−1} x̂ + σ_{t−1}(√(1−ζ) ε̃ + √ζ ε)
    if (o.zeta > 0 && k > 0) eps = std::sqrt(1 - o.zeta) * eps + std::sqrt(o.zeta) * randn(shape, ctx.gen, device);
    x = a_prev * x0 + sig_prev * eps;
    ++result.steps;
    const double misfit = ctx.monitor ? relative_misfit(*problem.op, x0, ctx.y) : std::nan("");
    if (!ctx.report({K - k, K, meter.nfe(), "", x0, misfit})) {
      result.stopped_early = k > 0;
      break;
    }
  }
  // Line 8: at t_0 (ᾱ = 1) the state is x̂_{0|t_1}.
  result.estimate = x0;
  result.cost = meter.finish(0, data.grads());
  return result;
}

void enroll_diff_onebit(SolverRegistry& r) {
  const DiffOneBitOptions d;
  r.add({"diff-onebit",
         "Diff-OneBit (seed 001, Alg. 1/2): HQS with Tweedie denoising and an Adam likelihood prox; needs the channel",
         {{"steps", std::to_string(d.steps), "outer steps = NFE"},
          {"timesteps", kUnset, "respacing of the base schedule (default ddim<steps>; e.g. 20, 10,10)"},
          {"lambda", format_number(d.lambda), "penalty λ: μ_k = λ ᾱ/(1−ᾱ) (1 for 1-bit inpainting)"},
          {"zeta", format_number(d.zeta), "stochasticity ζ in [0, 1] (Algorithm 2)"},
          {"inner_steps", std::to_string(d.inner_steps), "Adam iterations per x-subproblem"},
          {"lr", format_number(d.lr), "Adam learning rate"},
          {"clip_denoised", d.clip_denoised ? "true" : "false", "clamp the Tweedie estimate to [-1, 1]"}},
         {[](const Params& p, const SolveContext& ctx) { return diff_onebit(ctx, DiffOneBitOptions::from_params(p)); },
          [](const Params& p) { return DiffOneBitOptions::from_params(p).to_json(); }},
         {"diff-onebit:steps=2,inner_steps=3"}});
}

}  // namespace tweedie::solve
