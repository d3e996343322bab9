#include "tweedie/solve/diff_onebit.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/solve/optim.h"

namespace tweedie::solve {

using diffusion::index_tensor;
using diffusion::Schedule;

const OptionTable<DiffOneBitOptions>& DiffOneBitOptions::table() {
  using O = DiffOneBitOptions;
  static const OptionTable<O> t(
      {{"steps", &O::steps, "outer steps = NFE", at_least(1)},
       {"timesteps", &O::timesteps, "respacing of the base schedule (default ddim<steps>; e.g. 20, 10,10)",
        Unset<O>{&O::respacing}},
       {"lambda", &O::lambda, "penalty λ: μ_k = λ ᾱ/(1−ᾱ) (1 for 1-bit inpainting)", positive()},
       {"zeta", &O::zeta, "stochasticity ζ in [0, 1] (Algorithm 2)", in_range(0, 1)},
       {"inner_steps", &O::inner_steps, "Adam iterations per x-subproblem", at_least(0)},
       {"lr", &O::lr, "Adam learning rate", positive()},
       {"clip_denoised", &O::clip_denoised, "clamp the Tweedie estimate to [-1, 1]"}});
  return t;
}

Result diff_onebit(const SolveContext& ctx, const DiffOneBitOptions& o) {
  const auto& prior = ctx.prior;
  const Problem& problem = ctx.problem;
  const Schedule s = diffusion::respace(prior.base(), o.respacing());
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
  const auto& t = DiffOneBitOptions::table();
  r.add({"diff-onebit",
         "Diff-OneBit (seed 001, Alg. 1/2): HQS with Tweedie denoising and an Adam likelihood prox; needs the channel",
         t.params(),
         {[&t](const Params& p, const SolveContext& ctx) { return diff_onebit(ctx, t.parse(p)); },
          [&t](const Params& p) { return t.to_json(t.parse(p)); }},
         {"diff-onebit:steps=2,inner_steps=3"}});
}

}  // namespace tweedie::solve
