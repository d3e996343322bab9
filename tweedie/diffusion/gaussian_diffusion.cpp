#include "tweedie/diffusion/gaussian_diffusion.h"

#include "tweedie/core/error.h"

namespace tweedie::diffusion {
namespace {

// table[index] as a [B, 1, ..., 1] tensor in x's dtype and device.
torch::Tensor at(const std::vector<double>& table, const torch::Tensor& index,
                 const torch::Tensor& x) {
  return extract(table, index, x.dim(), x.scalar_type(), x.device());
}

}  // namespace

std::string to_string(VarianceType type) {
  switch (type) {
    case VarianceType::kFixedSmall:
      return "fixed_small";
    case VarianceType::kFixedLarge:
      return "fixed_large";
    case VarianceType::kLearnedRange:
      return "learned_range";
  }
  throw InternalError("unknown VarianceType");
}

VarianceType parse_variance_type(const std::string& name) {
  for (auto t :
       {VarianceType::kFixedSmall, VarianceType::kFixedLarge, VarianceType::kLearnedRange}) {
    if (to_string(t) == name) return t;
  }
  throw InputError("unknown variance type '" + name +
                   "' (expected fixed_small, fixed_large or learned_range)");
}

torch::Tensor q_sample(const Schedule& s, const torch::Tensor& x0, const torch::Tensor& index,
                       const torch::Tensor& noise) {
  // x_t = √ᾱ x0 + √(1−ᾱ) ε
  return at(s.sqrt_alphas_cumprod, index, x0) * x0 +
         at(s.sqrt_one_minus_alphas_cumprod, index, x0) * noise;
}

torch::Tensor predict_x0_from_eps(const Schedule& s, const torch::Tensor& x_t,
                                  const torch::Tensor& index, const torch::Tensor& eps) {
  // x̂0 = √(1/ᾱ) x_t − √(1/ᾱ − 1) ε
  return at(s.sqrt_recip_alphas_cumprod, index, x_t) * x_t -
         at(s.sqrt_recipm1_alphas_cumprod, index, x_t) * eps;
}

torch::Tensor predict_eps_from_x0(const Schedule& s, const torch::Tensor& x_t,
                                  const torch::Tensor& index, const torch::Tensor& x0) {
  // ε = (√(1/ᾱ) x_t − x̂0) / √(1/ᾱ − 1)
  return (at(s.sqrt_recip_alphas_cumprod, index, x_t) * x_t - x0) /
         at(s.sqrt_recipm1_alphas_cumprod, index, x_t);
}

torch::Tensor q_posterior_mean(const Schedule& s, const torch::Tensor& x0, const torch::Tensor& x_t,
                               const torch::Tensor& index) {
  // μ̃ = β√ᾱ_{t−1}/(1−ᾱ) · x0 + (1−ᾱ_{t−1})√α/(1−ᾱ) · x_t
  return at(s.posterior_mean_coef1, index, x_t) * x0 + at(s.posterior_mean_coef2, index, x_t) * x_t;
}

torch::Tensor model_log_variance(const Schedule& s, VarianceType type, const torch::Tensor& x_t,
                                 const torch::Tensor& index, const torch::Tensor& var_values) {
  switch (type) {
    case VarianceType::kFixedSmall:
      return at(s.posterior_log_variance_clipped, index, x_t).expand_as(x_t);
    case VarianceType::kFixedLarge:
      return at(s.fixed_large_log_variance, index, x_t).expand_as(x_t);
    case VarianceType::kLearnedRange: {
      require(var_values.defined() && var_values.sizes() == x_t.sizes(),
              "learned-range variance needs the network's v half shaped like x_t");
      const auto min_log = at(s.posterior_log_variance_clipped, index, x_t);  // log β̃
      const auto max_log = at(s.log_betas, index, x_t);                       // log β
      const auto frac = (var_values + 1) / 2;  // v ∈ [−1, 1] ↦ [min, max]
      return frac * max_log + (1 - frac) * min_log;
    }
  }
  throw InternalError("unknown VarianceType");
}

}  // namespace tweedie::diffusion
