#pragma once
// The discrete VP arithmetic of guided-diffusion's GaussianDiffusion, as free functions over a
// Schedule and tensors (no network). Every table entry is looked up with `extract` (float64 →
// cast per element to x's dtype) and the rest is tensor math in that dtype, in the reference's
// order of operations, so float32 results match guided-diffusion's to rounding.
//
// `index` is always a [B] int64 tensor of *respaced* step indices k (the `t` of guided-diffusion's
// loops); the network itself sees schedule.timestep_map[k].
#include <torch/torch.h>

#include <string>

#include "tweedie/diffusion/schedule.h"

namespace tweedie::diffusion {

// How p(x_{t−1} | x_t) gets its variance (guided-diffusion ModelVarType).
enum class VarianceType {
  kFixedSmall,  // β̃_t, the posterior variance (log clipped at t = 0)
  kFixedLarge,  // β_t (with β̃_1 at t = 0)
  kLearnedRange,  // log σ² = frac·log β + (1−frac)·log β̃, frac = (v+1)/2 (Nichol & Dhariwal §3.1)
};
std::string to_string(VarianceType type);  // "fixed_small", "fixed_large", "learned_range"
VarianceType parse_variance_type(const std::string& name);  // InputError on anything else

// q(x_t | x0) sample: x_t = √ᾱ x0 + √(1−ᾱ) ε   (guided-diffusion q_sample, DDPM eq. 4)
torch::Tensor q_sample(const Schedule& s, const torch::Tensor& x0, const torch::Tensor& index,
                       const torch::Tensor& noise);

// Tweedie under VP: x̂0 = √(1/ᾱ) x_t − √(1/ᾱ − 1) ε   (_predict_xstart_from_eps)
torch::Tensor predict_x0_from_eps(const Schedule& s, const torch::Tensor& x_t,
                                  const torch::Tensor& index, const torch::Tensor& eps);

// ε = (√(1/ᾱ) x_t − x̂0) / √(1/ᾱ − 1)   (_predict_eps_from_xstart)
torch::Tensor predict_eps_from_x0(const Schedule& s, const torch::Tensor& x_t,
                                  const torch::Tensor& index, const torch::Tensor& x0);

// μ̃(x_t, x0) = coef1 x0 + coef2 x_t   (q_posterior_mean_variance, DDPM eq. 7)
torch::Tensor q_posterior_mean(const Schedule& s, const torch::Tensor& x0, const torch::Tensor& x_t,
                               const torch::Tensor& index);

// log σ² of p(x_{t−1} | x_t) shaped like x_t. `var_values` is the network's v half (only for
// kLearnedRange; ignored otherwise).
torch::Tensor model_log_variance(const Schedule& s, VarianceType type, const torch::Tensor& x_t,
                                 const torch::Tensor& index, const torch::Tensor& var_values);

}  // namespace tweedie::diffusion
