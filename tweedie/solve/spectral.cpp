#include "tweedie/solve/spectral.h"

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/schedule.h"

namespace tweedie::solve {

Spectral spectral_measurement(const SolveContext& ctx, double sigma, const std::string& solver) {
  const op::Operator& A = *ctx.problem.op;
  Spectral sp;
  sp.svd = A.linear() ? A.svd() : nullptr;
  require(sp.svd != nullptr, solver + ": operator " + A.name() +
                                 " has no SVD view (available for gaussian with N <= 4096, masks, separable blur, "
                                 "resizing and subsampled Hadamard)");
  sp.sigma0 = resolve_sigma(ctx, sigma, solver, true);
  const int64_t N = op::numel(A.in_shape());
  auto s = sp.svd->singular_values().to(ctx.y.device(), torch::kFloat32);
  const int64_t r = s.size(0);
  sp.s = torch::zeros({N}, s.options());
  // singular values below 1e-3 of the largest count as zero (DDNM's and DDRM's GeneralA cut-off):
  // a blur's tiny ones would make A⁺ amplify noise without bound
  sp.s.narrow(0, 0, r).copy_(torch::where(s > Spectral::kRelativeCutoff * s.max(), s, torch::zeros_like(s)));
  sp.s_inv = torch::where(sp.s > 0, 1 / sp.s.clamp_min(1e-30), torch::zeros_like(sp.s));
  // Uᵀy: M coordinates, the first r of which pair with s (the rest, for M > N, are pure noise)
  auto uty = sp.svd->Ut(ctx.y.to(torch::kFloat32));
  sp.Uty = torch::zeros({ctx.y.size(0), N}, s.options());
  sp.Uty.narrow(1, 0, r).copy_(uty.narrow(1, 0, r));
  sp.pinv_y = sp.Uty * sp.s_inv;
  return sp;
}

std::vector<int64_t> uniform_skip_timesteps(int64_t T, int64_t K) {
  require(K >= 1 && K <= T, "steps must be in [1, " + std::to_string(T) + "], got " + std::to_string(K));
  std::vector<int64_t> seq;
  for (int64_t t = 0; t < T; t += T / K) seq.push_back(t);
  return seq;
}

Result uniform_grid_sampling(const SolveContext& ctx, const CostMeter& meter, int64_t steps, torch::Tensor x,
                             const std::string& solver, const SpectralStep& step) {
  const auto& prior = ctx.prior;
  const auto s = diffusion::respace(prior.base(), uniform_skip_timesteps(prior.base().size(), steps));
  const int64_t K = s.size(), B = x.size(0);
  Result result;
  torch::Tensor x0;
  for (int64_t k = K - 1; k >= 0; --k) {
    const double ab = s.alphas_cumprod[k];
    auto eps = prior.eps(s, x, diffusion::index_tensor(k, B, x.device()));  // ε̂, 1 NFE
    x0 = (x - std::sqrt(1 - ab) * eps) / std::sqrt(ab);                      // x̂0, no clip
    require_finite(x0, solver, K - k);
    x = step(x0, eps, s.alphas_cumprod_prev[k]);                             // x_{t'}
    if (!step_done(ctx, meter, result, K - k, K, "", x0, *ctx.problem.op)) break;
  }
  result.estimate = result.stopped_early ? x0 : x;
  result.cost = meter.finish();
  return result;
}

}  // namespace tweedie::solve
