#pragma once
// Comparisons of vectors and of sets of vectors, per item [B, ...] -> [B] float64 (the sets'
// Fréchet distance is one number). Items are flattened, so these apply to images as the
// signal vectors the operators act on (the library's [-1, 1] values, not [0, 1]) and to
// feature vectors alike.
#include <torch/torch.h>

namespace tweedie::metric {

// cos ∠(x̂, x) = ⟨x̂, x⟩ / (‖x̂‖ ‖x‖); 0 when either vector is zero. In [-1, 1], higher is better.
torch::Tensor cosine_similarity(const torch::Tensor& estimate, const torch::Tensor& reference);

// ‖x̂‖ / ‖x‖ − 1 (signed: > 0 when the estimate is too large). Seed 001 (Diff-OneBit),
// appendix H reports its absolute value |‖x̂‖ − ‖x‖| / ‖x‖. NaN where ‖x‖ = 0.
torch::Tensor relative_norm_error(const torch::Tensor& estimate, const torch::Tensor& reference);

// ‖f̂/‖f̂‖ − f/‖f‖‖₂ between unit-normalised feature vectors [B, D] (zero vectors stay zero), in
// [0, 2]; 0 for features pointing the same way. Lower is better.
torch::Tensor unit_feature_distance(const torch::Tensor& estimate_features,
                                    const torch::Tensor& reference_features);

// Mean and covariance of a set of vectors [N, D] (N ≥ 2), float64; the covariance uses N − 1
// (numpy.cov's default, as pytorch-fid).
struct GaussianFit {
  torch::Tensor mean;        // [D]
  torch::Tensor covariance;  // [D, D]
};
GaussianFit fit_gaussian(const torch::Tensor& features);

// Fréchet (2-Wasserstein) distance² between Gaussians (Dowson & Landau 1982; the FID formula):
//   ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½,
// the matrix square roots from symmetric eigendecompositions in float64 (negative eigenvalues
// from round-off clamped to 0). tr (Σ₁^½ Σ₂ Σ₁^½)^½ = tr (Σ₁ Σ₂)^½, as in pytorch-fid.
double frechet_distance(const GaussianFit& a, const GaussianFit& b);

// Fréchet distance between the Gaussian fits of two feature sets [N₁, D], [N₂, D] (N ≥ 2 each).
// Estimated from samples it is biased upwards, by roughly O(D / N): two sets drawn from the same
// distribution do not score 0, and rank-deficient covariances (N ≤ D) make it worse. Compare
// values only at equal N.
double frechet_distance(const torch::Tensor& features_a, const torch::Tensor& features_b);

}  // namespace tweedie::metric
