#include "tweedie/solve/likelihood.h"

#include <cmath>

#include "tweedie/channel/gaussian.h"
#include "tweedie/core/runtime.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

Problem gaussian_problem(const Problem& problem, double sigma) {
  channel::GaussianOptions g;
  g.sigma = sigma;
  return Problem{problem.op, channel::make_gaussian(g), problem.seed, problem.noise_seed};
}

double resolve_sigma(const SolveContext& ctx, double sigma, const std::string& solver, bool allow_noiseless,
                     const std::string& option) {
  if (sigma < 0) {
    require(ctx.problem.channel != nullptr,
            solver + ": " + option + "=channel needs the problem's channel: give the noise level as " + option + "=VALUE");
    sigma = ctx.problem.channel->noise_std();
    require(sigma > 0 || allow_noiseless,
            solver + ": " + option + "=channel reads σ = 0 from the noiseless channel, and this data term divides by σ²: give " +
                option + "=VALUE > 0");
  }
  require(sigma > 0 || allow_noiseless,
          solver + ": " + option + "=0 (noiseless) is not possible here, the data term divides by σ²: give " + option + " > 0");
  return sigma;
}

Problem likelihood_problem(const SolveContext& ctx, const LikelihoodOptions& o, const std::string& solver) {
  const Problem& pr = ctx.problem;
  if (o.likelihood == DataTerm::kChannel) {
    require(pr.channel != nullptr, solver + ": likelihood=channel needs the problem's channel (or use likelihood=linear)");
    return pr;
  }
  // y ≈ A x + σ n: the Gaussian channel −log p(y | z) = ‖y − z‖²/(2σ²) + const
  return gaussian_problem(pr, resolve_sigma(ctx, o.sigma, solver, false));
}

Likelihood::Likelihood(Problem problem, torch::Tensor y) : problem_(std::move(problem)), y_(std::move(y)) {
  if (!problem_.channel) throw InternalError("Likelihood: the problem has no channel");
}

torch::Tensor Likelihood::nll(const torch::Tensor& x) const {
  return problem_.channel->nll(problem_.op->apply(x), y_);
}

std::pair<torch::Tensor, torch::Tensor> Likelihood::value_and_grad(const torch::Tensor& x) const {
  ActivityScope likelihood(Activity::kLikelihood);
  torch::AutoGradMode grad_on(true);
  auto xg = x.detach().requires_grad_(true);
  // g = ∇ₓ L(x; y) = (∂A/∂x)ᵀ ∇_z nll(z = A x, y), by autograd through the channel and A
  auto value = nll(xg);
  auto g = torch::autograd::grad({value.sum()}, {xg})[0].detach();
  ++grads_;
  return {value.detach(), g};
}

torch::Tensor Likelihood::grad(const torch::Tensor& x) const { return value_and_grad(x).second; }

NormEstimate gauss_newton_norm(const op::Operator& A, const torch::Tensor& at, int64_t iterations,
                               torch::Generator& gen) {
  torch::NoGradGuard no_grad;
  const torch::Tensor x = at.detach().to(torch::kFloat32);
  auto item_norm = [&](const torch::Tensor& t) { return per_item(t.flatten(1).norm(2, 1).clamp_min(1e-30), t); };
  torch::Tensor v = randn(x.sizes(), gen, x.device());
  v = v / item_norm(v);
  const torch::Tensor Ax = A.linear() ? torch::Tensor() : A.apply(x);
  NormEstimate e;
  torch::Tensor lam;
  for (int64_t i = 0; i < iterations; ++i) {
    torch::Tensor Jv;
    if (A.linear()) {
      Jv = A.apply(v);
    } else {
      // J v ≈ (A(x + h v) − A(x))/h, h = 1e-3 (‖x‖ + 1) per item (v has unit norm)
      const torch::Tensor h = 1e-3 * (item_norm(x) + 1);
      Jv = (A.apply(x + h * v) - Ax) / per_item(h.flatten(), Ax);
    }
    torch::Tensor w = A.vjp(x, Jv).detach();  // JᵀJ v
    ++e.products;
    lam = item_norm(w);  // ‖JᵀJ v‖ with ‖v‖ = 1 → λ_max
    v = w / lam;
  }
  e.lambda_max = lam.defined() ? lam.max().item<double>() : 0.0;
  return e;
}

}  // namespace tweedie::solve
