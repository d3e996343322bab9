#include "tweedie/diffusion/gaussian_prior.h"

#include <utility>

#include "tweedie/core/error.h"

namespace tweedie::diffusion {
namespace {

torch::Tensor as_f64(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
}

// A [B, 1, ..., 1] float64 column of per-item values (`values` has 1 or B entries).
torch::Tensor f64_column(const torch::Tensor& values, const torch::Tensor& x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  auto v = as_f64(values).reshape({-1});
  require(v.numel() == 1 || v.numel() == x.size(0),
          "gaussian prior: expected 1 or " + std::to_string(x.size(0)) + " sigma values, got " +
              std::to_string(v.numel()));
  return v.expand({x.size(0)}).reshape(shape);
}

}  // namespace

GaussianDenoiser::GaussianDenoiser(torch::Tensor mean, torch::Tensor variance)
    : mean_(as_f64(mean)), variance_(as_f64(variance)) {
  require(variance_.numel() > 0 && variance_.min().item<double>() > 0.0,
          "GaussianDenoiser: prior variance must be positive");
}

torch::Tensor GaussianDenoiser::denoise(const torch::Tensor& x_tilde,
                                        const torch::Tensor& sigma) const {
  count_evaluation(x_tilde.size(0));
  const auto x = x_tilde.to(torch::kFloat64);  // differentiable (DPS-style guidance)
  const auto s2 = f64_column(sigma, x).square();
  const auto d = mean_ + variance_ / (variance_ + s2) * (x - mean_);  // μ + v/(v+σ²)(x̃−μ)
  return d.to(x_tilde.device(), x_tilde.scalar_type());
}

torch::Tensor GaussianDenoiser::posterior_variance(const torch::Tensor& x_tilde,
                                                   const torch::Tensor& sigma) const {
  const auto s2 = f64_column(sigma, x_tilde).square();
  return (variance_ * s2 / (variance_ + s2)).expand(x_tilde.sizes());  // v σ²/(v+σ²)
}

EpsModel gaussian_eps_model(const Schedule& base, torch::Tensor mean, torch::Tensor variance) {
  auto log_sigmas = log_ve_sigmas(base);
  auto mu = as_f64(mean), v = as_f64(variance);
  return [log_sigmas = std::move(log_sigmas), mu, v](const torch::Tensor& x_t,
                                                     const torch::Tensor& t_model) {
    const auto x = x_t.to(torch::kFloat64);
    const auto sigma = f64_column(t_to_sigma(log_sigmas, t_model), x);
    const auto x_tilde = x * torch::sqrt(1 + sigma.square());  // x̃ = x_t/√ᾱ = x_t √(1+σ²)
    const auto eps = sigma * (x_tilde - mu) / (v + sigma.square());  // E[ε|x_t] = σ(x̃−μ)/(v+σ²)
    return eps.to(x_t.device(), x_t.scalar_type());
  };
}

}  // namespace tweedie::diffusion
