#include "tweedie/solve/dps.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/samplers.h"
#include "tweedie/diffusion/schedule.h"

namespace tweedie::solve {

using diffusion::Schedule;

// ---- DPS ---------------------------------------------------------------------------------------

TWEEDIE_SOLVER_TABLE(DpsOptions,
    {"dps", {"dps:steps=3", "dps:steps=3,likelihood=linear"},
     "DPS (Chung et al. 2023): DDPM steps with the gradient of the data misfit through the network; "
     "likelihood=linear is seed 001's link-ignoring baseline"},
    OptionTable<O>::join(
        {{"steps", &O::steps, "DDPM steps = NFE (each also one backward pass)", at_least(1)},
         {"timesteps", &O::timesteps, "respacing of the base schedule (default: <steps>, guided-diffusion space_timesteps)",
          Unset<O>{&O::respacing}},
         {"zeta", &O::step_size, "step ζ on ∇‖y − A x̂0‖ (seed 001: 0.1; DPS configs 0.3–1)", non_negative()},
         {"clip_denoised", &O::clip_denoised, "clamp x̂0 to [-1, 1]"}},
        LikelihoodOptions::fields<O>(false)))

namespace {

// u = ∇_z nll(z, y)/‖∇_z nll(z, y)‖ per item (0 where the gradient vanishes). For a Gaussian
// channel ∇_z nll = (z − y)/σ², so u = r̂, the unit residual of DPS's ‖y − A x̂0‖.
torch::Tensor unit_nll_gradient(const channel::Channel& ch, const torch::Tensor& z, const torch::Tensor& y) {
  ActivityScope likelihood(Activity::kLikelihood);
  torch::AutoGradMode grad_on(true);
  auto zl = z.detach().requires_grad_(true);
  auto gz = torch::autograd::grad({ch.nll(zl, y).sum()}, {zl})[0].detach();
  auto flat = gz.is_complex() ? torch::view_as_real(gz).flatten(1) : gz.flatten(1);
  return gz / per_item(flat.norm(2, 1).clamp_min(1e-30), gz);
}

}  // namespace

Result dps(const SolveContext& ctx, const DpsOptions& o) {
  const auto& prior = ctx.prior;
  LikelihoodOptions form = o;
  form.sigma = 1;  // the step is scale-free: the linear form's σ drops out (and no channel is read)
  const Problem lik = likelihood_problem(ctx, form, "dps");
  const Schedule s = diffusion::respace(prior.base(), o.respacing());
  const int64_t K = s.size();
  const auto device = ctx.y.device();
  const op::Shape shape = op::with_batch(ctx.y.size(0), lik.op->in_shape());
  const diffusion::PredictOptions predict{o.clip_denoised};
  CostMeter meter(prior);
  Result result;
  int64_t grads = 0;

  torch::Tensor x = randn(shape, ctx.gen, device);  // x_T ~ N(0, I)
  torch::Tensor x0;
  for (int64_t k = K - 1; k >= 0; --k) {
    const torch::Tensor noise = randn(shape, ctx.gen, device);
    torch::Tensor x_next, g;
    {
      torch::AutoGradMode grad_on(true);
      auto xt = x.detach().requires_grad_(true);
      // x' = μ(x_t) + [k > 0] σ_t z, and x̂0(x_t) clipped, both differentiable in x_t (1 NFE)
      auto step = diffusion::ddpm_step(prior, s, xt, k, noise, predict);
      auto z = lik.op->apply(step.pred_x0);
      // g = ∇_{x_t} ⟨u, A(x̂0(x_t))⟩ = J_{x_t}(A ∘ x̂0)ᵀ u  (= ∇_{x_t} ‖y − A x̂0‖ for Gaussian noise)
      auto u = unit_nll_gradient(*lik.channel, z, ctx.y);
      auto inner = torch::real(u.conj() * z).sum();
      torch::Tensor grad;
      {
        // backward through A and the network: the network's share dominates
        ActivityScope backward(Activity::kNetworkGrad);
        grad = torch::autograd::grad({inner}, {xt}, {}, c10::nullopt, false, true)[0];
      }
      g = grad.defined() ? grad.detach() : torch::zeros_like(x);
      x_next = step.x.detach();
      x0 = step.pred_x0.detach();
    }
    ++grads;
    // x_{t−1} = x' − ζ g
    x = x_next - o.step_size * g;
    require_finite(x, "dps", K - k);
    if (!step_done(ctx, meter, result, K - k, K, "", x0, *lik.op)) break;
  }
  result.estimate = x;
  result.cost = meter.finish(grads, grads);
  return result;
}

}  // namespace tweedie::solve
