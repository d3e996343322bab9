#include "tweedie/solve/red_diff.h"

#include <cmath>
#include <memory>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/solve/optim.h"
#include "tweedie/solve/spectral.h"

namespace tweedie::solve {

using diffusion::index_tensor;
using diffusion::Schedule;

namespace {

// RED-diff's fields, for RedDiffOptions and for structs derived from it.
template <class O>
std::vector<typename OptionTable<O>::Field> red_diff_fields() {
  using W = RedDiffOptions::Weighting;
  using I = RedDiffOptions::Init;
  using Out = RedDiffOptions::Output;
  return {{"steps", &O::steps, "outer steps S = NFE (t on the uniform grid T/S)", at_least(1)},
          {"lr", &O::lr, "Adam learning rate on μ", positive()},
          {"lambda", &O::lambda, "λ: weight of the denoising regulariser (0 = least squares)", non_negative()},
          {"obs_weight", &O::obs_weight, "v: weight of the data term", positive()},
          {"weighting", &O::weighting, "ω(σ_t) in w_t = λ ω(σ_t)",
           Choice<W>{{"linear", W::kLinear}, {"sqrt", W::kSqrt}, {"square", W::kSquare}, {"const", W::kConst}}},
          {"init", &O::init, "μ's start: A⁺y (needs an SVD view), Aᵀy or 0",
           Choice<I>{{"pinv", I::kPinv}, {"adjoint", I::kAdjoint}, {"zeros", I::kZeros}}},
          {"likelihood", &O::likelihood, "data term: ‖y − A μ‖²/(2σ²) or the channel's NLL", data_term_words()},
          sigma_field<O>("sigma", &O::sigma, "σ", "; used by likelihood=linear; the code's weight is σ = 1"),
          {"output", &O::output,
           "returned image: μ after the last Adam step, or the code's x0_pred (μ before that step)",
           Choice<Out>{{"mu", Out::kMu}, {"x0_pred", Out::kX0Pred}}}};
}

double weight(RedDiffOptions::Weighting w, double sigma) {
  using W = RedDiffOptions::Weighting;
  switch (w) {
    case W::kLinear: return sigma;
    case W::kSqrt: return std::sqrt(sigma);
    case W::kSquare: return sigma * sigma;
    case W::kConst: return 1.0;
  }
  throw InternalError("red-diff: unknown weighting");
}

// The RED-diff loop; `mo` (may be null) runs after each Adam step.
Result red_diff_loop(const SolveContext& ctx, const RedDiffOptions& o, const MoOptions* mo, const char* solver) {
  const auto& prior = ctx.prior;
  const op::Operator& A = *ctx.problem.op;
  // ℓ: ‖y − A μ‖²/(2σ²) = nll of a Gaussian of σ (linear; the code's σ = 1), or the channel's
  const Likelihood data(likelihood_problem(ctx, o, solver), ctx.y);
  // MO's f (its own option), only with MO
  std::unique_ptr<const Likelihood> mo_data;  // built in place: a Likelihood's atomic counter cannot move
  if (mo) {
    const std::string bad_floor = mo->floor_check(prior.sigma_max());  // RED-diff's largest level is the prior's
    require(bad_floor.empty(), std::string(solver) + ": " + bad_floor + ", the prior's largest noise level");
    mo_data.reset(new Likelihood(mo_likelihood(ctx, *mo, solver)));
  }
  const int64_t T = prior.base().size(), B = ctx.y.size(0);
  const Schedule s = diffusion::respace(prior.base(), uniform_skip_timesteps(T, o.steps));
  const auto device = ctx.y.device();
  const op::Shape shape = op::with_batch(B, A.in_shape());
  const double n = static_cast<double>(op::numel(A.in_shape()));
  const double m = static_cast<double>(ctx.y[0].numel());
  CostMeter meter(prior);
  Result result;

  // μ₀ = A⁺y | Aᵀy | 0
  torch::Tensor mu;
  using Init = RedDiffOptions::Init;
  if (o.init == Init::kPinv) {
    const Spectral sp = spectral_measurement(ctx, 0.0, std::string(solver) + " init=pinv (or use init=adjoint or zeros)");
    mu = sp.svd->V(sp.pinv_y).reshape(shape);
  } else if (o.init == Init::kAdjoint) {
    require(A.linear(), std::string(solver) + ": init=adjoint needs a linear operator, got " + A.name() +
                            " (use init=zeros)");
    torch::NoGradGuard no_grad;
    mu = A.adjoint(ctx.y).reshape(shape);
  } else {
    mu = torch::zeros(shape, torch::TensorOptions().device(device));
  }
  mu = mu.to(torch::kFloat32).contiguous();
  AdamOptions ao;
  ao.lr = o.lr;
  ao.beta2 = 0.99;  // the code's betas (0.9, 0.99)
  Adam adam(ao);

  const int64_t K = s.size();
  double eta = 0;  // MO's SGLD step, found at the first step
  for (int64_t k = K - 1; k >= 0; --k) {
    const double ab = s.alphas_cumprod[k];
    const double sigma_t = std::sqrt((1 - ab) / ab);
    torch::Tensor g;
    {
      torch::NoGradGuard no_grad;
      // x_t = √ᾱ_t μ + √(1−ᾱ_t) ε;  ε̂ = ε_θ(x_t, t)  (1 NFE)
      const torch::Tensor eps = randn(shape, ctx.gen, device);
      const torch::Tensor xt = std::sqrt(ab) * mu + std::sqrt(1 - ab) * eps;
      const torch::Tensor eps_hat = prior.eps(s, xt, index_tensor(k, B, device));
      // ∇_μ [w_t ⟨sg(ε̂ − ε), μ⟩/n] = (w_t/n)(ε̂ − ε)
      g = (o.lambda * weight(o.weighting, sigma_t) / n) * (eps_hat - eps);
    }
    // + ∇_μ v ℓ(μ)/m
    g = g + (o.obs_weight / m) * data.grad(mu);
    if (o.output == RedDiffOptions::Output::kX0Pred) result.estimate = mu.clone();  // the code's x0_pred = μ before the step
    adam.step(mu, g);
    if (mo && mo->mo) {
      if (eta == 0) eta = mo_step_size(*mo_data, *mo, mu, ctx.gen);
      mu = measurements_optimization(prior, *mo_data, mu, sigma_t, eta, *mo, ctx.gen).contiguous();
    }
    require_finite(mu, solver, K - k);
    if (!step_done(ctx, meter, result, K - k, K, "", mu, A)) break;
  }
  if (o.output == RedDiffOptions::Output::kMu) result.estimate = mu;
  result.cost = meter.finish(0, data.grads() + (mo_data ? mo_data->grads() : 0));
  return result;
}

}  // namespace

TWEEDIE_SOLVER_TABLE(RedDiffOptions,
    {"red-diff", {"red-diff:steps=3,init=zeros", "red-diff:steps=3,init=zeros,likelihood=channel,output=x0_pred"},
     "RED-diff (Mardani et al. 2024): Adam on μ of a variational posterior, denoising regulariser "
     "w_t (ε̂ − ε) with SNR weighting, t descending a uniform grid"},
    red_diff_fields<O>())

TWEEDIE_SOLVER_TABLE(RedDiffMoOptions,
    {"red-diff-mo", {"red-diff-mo:steps=3,init=zeros,mo_steps=2"},
     "RED-diff-MO (seed 002): RED-diff with Measurements Optimization (SGLD on the data term, "
     "then a denoiser projection) after each Adam step; mo=false is RED-diff"},
    OptionTable<O>::join(red_diff_fields<O>(), MoOptions::fields<O>()), [](const O& o) { return o.check(); })

Result red_diff(const SolveContext& ctx, const RedDiffOptions& o) { return red_diff_loop(ctx, o, nullptr, "red-diff"); }

Result red_diff_mo(const SolveContext& ctx, const RedDiffMoOptions& o) {
  return red_diff_loop(ctx, o, &o, "red-diff-mo");
}

}  // namespace tweedie::solve
