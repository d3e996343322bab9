#pragma once
// A Gaussian data prior x0 ~ N(μ, diag(v)), for which every quantity a diffusion sampler needs is
// in closed form. Used by the statistical tests (and handy for debugging solvers):
//  * GaussianDenoiser: D(x̃, σ) = E[x0 | x̃ = x0 + σ ε] = μ + v/(v+σ²)·(x̃ − μ);
//  * gaussian_eps_model: the exact ε-network ε*(x_t, t) = E[ε | x_t] on a discrete schedule,
//    i.e. (x_t − √ᾱ E[x0|x_t])/√(1−ᾱ) = σ (x̃ − μ)/(v + σ²) with x̃ = x_t √(1+σ²), evaluated in
//    float64 (no cancellation at small σ) and returned in x_t's dtype.
// μ and v are broadcastable to one item (no batch dimension), e.g. [C, H, W] or a scalar.
#include <torch/torch.h>

#include "tweedie/diffusion/denoiser.h"
#include "tweedie/diffusion/schedule.h"

namespace tweedie::diffusion {

class GaussianDenoiser final : public Denoiser {
 public:
  GaussianDenoiser(torch::Tensor mean, torch::Tensor variance);

  // μ + v/(v+σ²)·(x̃ − μ), computed in float64, returned in x̃'s dtype; differentiable in x̃.
  // Counts one NFE per call.
  torch::Tensor denoise(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const override;
  using Denoiser::denoise;
  // Var[x0 | x̃] = v σ²/(v + σ²), shaped [B, ...] like x̃ (float64).
  torch::Tensor posterior_variance(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const;

  const torch::Tensor& mean() const { return mean_; }
  const torch::Tensor& variance() const { return variance_; }

 private:
  torch::Tensor mean_;      // float64, CPU
  torch::Tensor variance_;  // float64, CPU
};

// The exact ε-predictor for the prior on `base`: the model timestep t (int64 or fractional) is
// mapped to σ(t) by t_to_sigma over the base schedule (so that it inverts EpsDenoiser's
// sigma_to_t), ᾱ = 1/(1+σ²). Output has C channels.
EpsModel gaussian_eps_model(const Schedule& base, torch::Tensor mean, torch::Tensor variance);

}  // namespace tweedie::diffusion
