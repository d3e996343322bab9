#pragma once
// What the SVD-based baselines DDRM and DDNM+ share: the measurement y = A x + σ₀ n in the
// operator's spectral coordinates (op::SvdView, A = U diag(s) Vᵀ), and DDIM's uniform time grid.
//
// Every vector is padded to the N spectral coordinates of x: s_i = 0 for i ≥ r = min(M, N)
// (and for any zero singular value), which is how both papers' codes treat the directions
// that y does not see.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tweedie/core/options.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

// Where DDRM's and DDNM+'s noise comes from (the `draws` option): kTweedie = one z per spectral coordinate and step;
// kAuthors = the official code's draws (the same law), to replay noise recorded from it.
enum class NoiseDraws { kTweedie, kAuthors };
inline Choice<NoiseDraws> draws_words() {
  return {{"tweedie", NoiseDraws::kTweedie}, {"authors", NoiseDraws::kAuthors}};
}

struct Spectral {
  static constexpr double kRelativeCutoff = 1e-3;  // s_i ≤ cutoff · max s counts as 0
  std::shared_ptr<const op::SvdView> svd;
  torch::Tensor s;      // [N] singular values, zero-padded and cut off
  torch::Tensor s_inv;  // [N] 1/s_i, 0 where s_i = 0
  torch::Tensor Uty;    // [B, N] (Uᵀy)_i for i < r, 0 beyond
  torch::Tensor pinv_y; // [B, N] Vᵀ A⁺ y = (Uᵀy)_i / s_i, 0 where s_i = 0
  double sigma0 = 0;    // noise std of y around A x

  // Vᵀ A⁺(A x − y) for v = Vᵀx: v − Vᵀ A⁺ y on the observed coordinates, 0 elsewhere.
  torch::Tensor pinv_residual(const torch::Tensor& v) const {
    return torch::where(s > 0, v - pinv_y, torch::zeros_like(v));
  }
};

// The `sigma` option of DDRM and DDNM+ (`symbol` names it in the help: σ₀, σ_y): likelihood.h's
// sigma_field, default "channel"; here 0 means a noiseless y = A x.
template <class O>
typename OptionTable<O>::Field noise_sigma_option(double O::*sigma, const std::string& symbol) {
  return sigma_field<O>("sigma", sigma, symbol);
}

// InputError naming `solver` unless the problem's operator is linear with an SVD view. σ₀ is
// resolve_sigma(sigma), noiseless allowed (the link, if any, is ignored: y is read as A x + σ₀ n,
// as seed 001 runs its linear baselines).
Spectral spectral_measurement(const SolveContext& ctx, double sigma, const std::string& solver);

// DDIM's "uniform" skip (DDRM, DDNM; methods.md §1.4 item 2): range(0, T, T / K), increasing.
std::vector<int64_t> uniform_skip_timesteps(int64_t T, int64_t K);

// The loop DDRM and DDNM+ share: from x_T, for (t, t') on the uniform grid of `steps` (t' = −1,
// ᾱ = 1, last): ε̂ = ε_θ(x_t, t) (1 NFE), x̂0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t (no clip), then
// x_{t'} = step(x̂0, ε̂, ᾱ_{t'}). Returns x_{−1} (x̂0 if the monitor stops the run) and the cost
// measured by `meter` (started by the caller, so that the SVD and the start are counted).
using SpectralStep = std::function<torch::Tensor(const torch::Tensor& x0, const torch::Tensor& eps, double ab_next)>;
Result uniform_grid_sampling(const SolveContext& ctx, const CostMeter& meter, int64_t steps, torch::Tensor x_T,
                             const std::string& solver, const SpectralStep& step);

}  // namespace tweedie::solve
