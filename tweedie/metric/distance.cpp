#include "tweedie/metric/distance.h"

#include <algorithm>
#include <limits>
#include <string>

#include "tweedie/core/blas_threads.h"
#include "tweedie/core/error.h"

namespace tweedie::metric {
namespace {

// Both as float64 [B, D]; InputError on a shape mismatch or an empty batch.
std::pair<torch::Tensor, torch::Tensor> flat_pair(const torch::Tensor& a, const torch::Tensor& b,
                                                  const char* what) {
  require(a.sizes() == b.sizes(), std::string(what) + ": estimate and reference shapes differ");
  require(a.dim() >= 1 && a.size(0) > 0 && a.numel() > 0, std::string(what) + ": empty batch");
  return {a.to(torch::kFloat64).reshape({a.size(0), -1}), b.to(torch::kFloat64).reshape({b.size(0), -1})};
}

// Symmetric PSD square root V diag(√max(λ, 0)) Vᵀ.
torch::Tensor sqrtm_psd(const torch::Tensor& s) {
  auto [lambda, v] = torch::linalg::eigh(s, "L");
  return (v * lambda.clamp_min(0).sqrt().unsqueeze(0)).matmul(v.transpose(0, 1));
}

}  // namespace

torch::Tensor cosine_similarity(const torch::Tensor& estimate, const torch::Tensor& reference) {
  auto [a, b] = flat_pair(estimate, reference, "cosine similarity");
  torch::Tensor denom = a.norm(2, 1) * b.norm(2, 1);
  // ⟨x̂, x⟩ / (‖x̂‖ ‖x‖); the numerator is 0 whenever the denominator is.
  return (a * b).sum(1) / denom.clamp_min(std::numeric_limits<double>::min());
}

torch::Tensor relative_norm_error(const torch::Tensor& estimate, const torch::Tensor& reference) {
  auto [a, b] = flat_pair(estimate, reference, "relative norm error");
  torch::Tensor nb = b.norm(2, 1);
  torch::Tensor out = a.norm(2, 1) / nb - 1.0;  // ‖x̂‖ / ‖x‖ − 1
  return torch::where(nb > 0, out, torch::full_like(out, std::numeric_limits<double>::quiet_NaN()));
}

torch::Tensor unit_feature_distance(const torch::Tensor& estimate_features,
                                    const torch::Tensor& reference_features) {
  auto [a, b] = flat_pair(estimate_features, reference_features, "feature distance");
  auto unit = [](const torch::Tensor& f) {
    return f / f.norm(2, 1, true).clamp_min(std::numeric_limits<double>::min());
  };
  return (unit(a) - unit(b)).norm(2, 1);  // ‖f̂/‖f̂‖ − f/‖f‖‖
}

GaussianFit fit_gaussian(const torch::Tensor& features) {
  require(features.dim() == 2, "Gaussian fit: expected features [N, D]");
  const int64_t n = features.size(0);
  require(n >= 2, "Fréchet distance: needs at least 2 images per set, got " + std::to_string(n));
  torch::Tensor f = features.to(torch::kFloat64);
  torch::Tensor mean = f.mean(0);
  torch::Tensor d = f - mean;
  return {mean, d.transpose(0, 1).matmul(d) / static_cast<double>(n - 1)};  // Σ = DᵀD / (N − 1)
}

double frechet_distance(const GaussianFit& a, const GaussianFit& b) {
  require(a.mean.sizes() == b.mean.sizes(), "Fréchet distance: feature dimensions differ");
  const BlasThreads one(1);  // the same digits whatever --threads is (core/blas_threads.h)
  torch::Tensor s1 = sqrtm_psd(a.covariance);
  torch::Tensor m = s1.matmul(b.covariance).matmul(s1);
  m = 0.5 * (m + m.transpose(0, 1));  // symmetric up to round-off; make it exactly so for eigh
  // tr (Σ₁^½ Σ₂ Σ₁^½)^½ = Σ √λ_i of a PSD matrix
  torch::Tensor tr_cross = torch::linalg::eigvalsh(m, "L").clamp_min(0).sqrt().sum();
  torch::Tensor d2 = (a.mean - b.mean).pow(2).sum() + a.covariance.trace() + b.covariance.trace() - 2 * tr_cross;
  return std::max(0.0, d2.item<double>());  // ≥ 0; round-off can dip below for equal fits
}

double frechet_distance(const torch::Tensor& features_a, const torch::Tensor& features_b) {
  require(features_a.dim() == 2 && features_b.dim() == 2 && features_a.size(1) == features_b.size(1),
          "Fréchet distance: expected two feature sets [N, D] with the same D");
  const BlasThreads one(1);  // the covariances' products too
  return frechet_distance(fit_gaussian(features_a), fit_gaussian(features_b));
}

}  // namespace tweedie::metric
