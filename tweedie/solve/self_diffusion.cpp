#include "tweedie/solve/self_diffusion.h"

#include <cmath>

#include "tweedie/core/runtime.h"

namespace tweedie::solve {

TWEEDIE_SOLVER_TABLE(SelfDiffusionOptions,
    {"self-diffusion", {"self-diffusion:steps=3,iters=2,width=4,depth=2"},
     "self-diffusion (seed 004): an untrained U-Net fitted to y while its input is re-noised "
     "on a decreasing schedule; no prior",
     /*uses_prior=*/false},
    OptionTable<O>::join(
        {{"steps", &O::steps, "T noise levels (seed code default 40)", at_least(1)},
         {"iters", &O::iters, "K Adam steps per level (code default 100; paper's low-level tasks 150)", at_least(1)},
         {"beta_start", &O::beta_start, "first beta of the increasing linspace schedule"},
         {"beta_end", &O::beta_end, "last beta (sigma_max = sqrt(1 - prod(1 - beta)))"},
         {"resample", &O::resample, "fresh noise at every level (false: the seed's w/o-eps ablation)"}},
        UntrainedNetOptions::fields<O>()),
    [](const O& o) -> std::string {
      if (!(o.beta_start > 0 && o.beta_start <= o.beta_end && o.beta_end < 1))
        return "need 0 < beta_start <= beta_end < 1, got " + show_number(o.beta_start) + " and " +
               show_number(o.beta_end) + " (the code's increasing schedule; methods.md §7.6)";
      return "";
    })

std::vector<double> self_diffusion_sigmas(int64_t T, double beta_start, double beta_end) {
  // β_i = linspace(β_start, β_end, T);  ᾱ_t = ∏_{i≤t} (1 − β_i);  σ_t = √(1 − ᾱ_t);  run t = T−1 … 0
  std::vector<double> alpha_bar(T);
  double prod = 1;
  for (int64_t i = 0; i < T; ++i) {
    const double beta = T == 1 ? beta_start : beta_start + (beta_end - beta_start) * double(i) / double(T - 1);
    prod *= 1 - beta;
    alpha_bar[i] = prod;
  }
  std::vector<double> sigma(T);
  for (int64_t idx = 0; idx < T; ++idx) sigma[idx] = std::sqrt(1 - alpha_bar[T - 1 - idx]);
  return sigma;
}

Result self_diffusion(const SolveContext& ctx, const SelfDiffusionOptions& o) {
  const std::string name = "self-diffusion";
  const op::Operator& A = *ctx.problem.op;
  check_untrained_inputs(A, ctx.y, name);
  const NetShape shape = net_shape(A.in_shape(), o.depth, name);
  const auto sigmas = self_diffusion_sigmas(o.steps, o.beta_start, o.beta_end);
  UntrainedBatch batch(ctx, name, shape, o.steps);
  for (int64_t b = 0; b < ctx.y.size(0) && !batch.stopped(); ++b) {
    const torch::Tensor yb = ctx.y.slice(0, b, b + 1);
    UntrainedFit fit(o, shape, shape.channels, A, yb, ctx.gen);
    auto draw = [&] { return randn(op::with_batch(1, shape.signal), ctx.gen, yb.device()); };
    torch::Tensor x_hat = draw();  // x̂ ~ N(0, I)
    torch::Tensor eps = o.resample ? torch::Tensor() : draw();
    torch::Tensor x_star = x_hat;
    for (int64_t idx = 0; idx < o.steps; ++idx) {
      if (o.resample) eps = draw();
      const torch::Tensor x_t = shape.to_net(x_hat + sigmas[idx] * eps);  // x_t = x̂ + σ_t ε (VE-like, no √ᾱ)
      for (int64_t k = 0; k < o.iters; ++k) x_star = fit.step(x_t);       // x* = D_θ(x_t); θ ← Adam
      x_hat = x_star;                                                     // x̂ = x* of the last forward
      if (!batch.report(fit, x_hat, yb)) break;
    }
    batch.done(fit, x_hat);
  }
  return batch.finish();
}

}  // namespace tweedie::solve
