#include "tweedie/solve/hqs.h"

#include <cmath>

#include "tweedie/core/runtime.h"

namespace tweedie::solve {

HqsLoop::Eps hqs_eps(const std::string& name) {
  if (name == "denoiser") return HqsLoop::Eps::kDenoiser;
  if (name == "rescaled") return HqsLoop::Eps::kRescaled;
  require(name == "corrected", "eps must be corrected, denoiser or rescaled, got '" + name + "'");
  return HqsLoop::Eps::kCorrected;
}

void hqs_loop(const SolveContext& ctx, const HqsLoop& loop, const CostMeter& meter, Result& result) {
  const diffusion::Schedule& s = loop.schedule;
  const int64_t K = s.size(), B = ctx.y.size(0);
  const auto device = ctx.y.device();
  const op::Shape shape = op::with_batch(B, loop.op.in_shape());
  torch::Tensor x = randn(shape, ctx.gen, device);  // x_{t_{K−1}} ~ N(0, I)
  if (loop.start) x = loop.start(x);                // or a start built from that draw
  torch::Tensor x0, x0_denoiser;
  for (int64_t k = K - 1; k >= 0; --k) {
    const double ab = s.alphas_cumprod[k], ab_prev = s.alphas_cumprod_prev[k];
    {
      torch::NoGradGuard no_grad;
      x0 = ctx.prior.pred_x0(s, x, diffusion::index_tensor(k, B, device), loop.clip_denoised);  // 1 NFE
    }
    if (loop.eps == HqsLoop::Eps::kDenoiser) x0_denoiser = x0;
    // x̂0' = argmin_x L(x; y) + (μ_k/2)‖x − x̂0‖²
    if (k > 0 || loop.data_step_at_last) x0 = loop.data_step(x0, loop.mu(ab));
    require_finite(x0, loop.solver, K - k);
    if (k > 0) {
      torch::NoGradGuard no_grad;
      // ε̂ = (x_t − √ᾱ x̂0')/√(1 − ᾱ), or with the denoiser's x̂0, or rescaled to unit RMS
      const bool from_denoiser = loop.eps == HqsLoop::Eps::kDenoiser;
      torch::Tensor eps = (x - std::sqrt(ab) * (from_denoiser ? x0_denoiser : x0)) / std::sqrt(1 - ab);
      if (loop.eps == HqsLoop::Eps::kRescaled)
        eps = eps / per_item(eps.flatten(1).square().mean(1).sqrt().clamp_min(1e-12), eps);
      // x_{t'} = √ᾱ' x̂0' + √(1 − ᾱ') (√(1 − ζ) ε̂ + √ζ z)
      if (loop.zeta > 0) eps = std::sqrt(1 - loop.zeta) * eps + std::sqrt(loop.zeta) * randn(shape, ctx.gen, device);
      x = std::sqrt(ab_prev) * x0 + std::sqrt(1 - ab_prev) * eps;
    }
    if (!step_done(ctx, meter, result, K - k, K, "", x0, loop.op, k > 0 ? &x : nullptr)) break;
  }
  result.estimate = loop.return_state ? x : x0;
}

}  // namespace tweedie::solve
