#include "tweedie/solve/diff_onebit.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/solve/hqs.h"
#include "tweedie/solve/optim.h"

namespace tweedie::solve {

using diffusion::Schedule;

TWEEDIE_SOLVER_TABLE(DiffOneBitOptions,
    {"diff-onebit", {"diff-onebit:steps=2,inner_steps=3"},
     "Diff-OneBit (seed 001, Alg. 1/2): HQS with Tweedie denoising and an Adam likelihood prox; needs the channel"},
    {{"steps", &O::steps, "K outer steps = NFE (Table I: 20)", at_least(1)},
     {"timesteps", &O::timesteps, "respacing of the base schedule (default ddim<steps>, evenly spaced: not stated in "
      "the paper, methods.md §4.3; e.g. 20, 10,10)", Unset<O>{&O::respacing}},
     {"lambda", &O::lambda, "penalty λ: μ_k = λ ᾱ/(1−ᾱ) (App. E: 0.02 CS and logistic, 1 inpainting)", positive()},
     {"zeta", &O::zeta, "stochasticity ζ in [0, 1] (Alg. 2 line 7; App. B, Table V: 0 is best)", in_range(0, 1)},
     {"inner_steps", &O::inner_steps, "Adam iterations per x-subproblem (App. E: 100)", at_least(0)},
     {"lr", &O::lr, "Adam learning rate (App. E: 0.25; β = (0.9, 0.999), ε = 1e-8)", positive()},
     {"clip_denoised", &O::clip_denoised, "clamp z̃ to [-1, 1] as guided-diffusion's samplers do (Alg. 1 does not; "
      "13.4 dB against 9.4 on 1-bit Fashion-MNIST, M/N = 1/2, σ = 0.3)"},
     {"eps", &O::eps, "ε̃ of the re-noising: (x_t − α x̂_{0|t})/σ from the data-corrected estimate (Alg. 2 line 5), "
      "the denoiser's own z̃, or the first at unit RMS (hqs.h; ablations)", hqs_eps_names()}})

Result diff_onebit(const SolveContext& ctx, const DiffOneBitOptions& o) {
  require(ctx.problem.channel != nullptr, "diff-onebit: the x-subproblem needs the problem's channel (its likelihood)");
  const Likelihood data(ctx.problem, ctx.y);
  const Schedule s = diffusion::respace(ctx.prior.base(), o.respacing());
  CostMeter meter(ctx.prior);
  Result result;
  // Lines 1–8 are the shared HQS loop (hqs.h): line 3 its Tweedie step, line 5 its ε̃, line 6
  // (Alg. 1) / line 7 (Alg. 2) its re-noising with ζ; line 4, the x-subproblem, is:
  //   x̂_{0|t} = argmin_x L(x; y) + (μ_k/2)‖x − z̃‖²,  μ_k = λ α_t²/σ_t² = λ ᾱ/(1 − ᾱ), by Adam,
  // at every step including the last (line 8: at t_0 the state is x̂_{0|t_1}).
  hqs_loop(ctx,
           {"diff-onebit", s, *ctx.problem.op, o.zeta, o.clip_denoised, /*data_step_at_last=*/true,
            hqs_eps(o.eps),
            [&](double ab) { return o.lambda * ab / (1 - ab); },
            [&](const torch::Tensor& z, double mu) {
              return prox_adam(data, z, torch::tensor(mu, torch::kFloat64), o.inner_steps, o.lr);
            },
            /*start=*/{}},
           meter, result);
  result.cost = meter.finish(0, data.grads());
  return result;
}

}  // namespace tweedie::solve
