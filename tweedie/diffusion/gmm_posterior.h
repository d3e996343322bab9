#pragma once
// The exact posterior of the Gaussian-mixture prior (gmm_prior.h) under a linear Gaussian
// channel: the reference every posterior sampler is scored against (issue 28).
//
// Prior on the active pixels x_a (the inactive ones are fixed at F): x_a ~ Σ_k π_k N(μ_k, Σ_k),
//   Σ_k = U C_k Uᵀ + s_k² (I − U Uᵀ),  C_k = V_k diag(λ_k) V_kᵀ,  W_k = U V_k,
//   Σ_k⁻¹ = W_k diag(1/λ_k − 1/s_k²) W_kᵀ + I/s_k²       (d < Da; W_k diag(1/λ_k) W_kᵀ when d = Da)
// Measurements y = A x + σ n, A dense [M, D]; with A_a = A[:, active] and y' = y − A F:
//   component k's posterior   N(m_k, Λ_k⁻¹),  Λ_k = Σ_k⁻¹ + A_aᵀA_a/σ²,  b_k = Σ_k⁻¹μ_k + A_aᵀy'/σ²,  m_k = Λ_k⁻¹ b_k
//   its evidence   log p(y | k) = −(M/2) log 2πσ² − ½ log|Σ_k| − ½ log|Λ_k| − ½ (‖y'‖²/σ² + μ_kᵀΣ_k⁻¹μ_k − b_kᵀ m_k)
//   the posterior weights  w_k(y) ∝ π_k p(y | k)
// (Bishop, PRML §2.3.3, per component; a mixture prior gives a mixture posterior.) Λ_k does not
// depend on y: one Cholesky factor per component serves every item. Everything is float64 on the
// CPU, dense in Da (≤ 1024 for Fashion-MNIST: 20 factors of 8 MB).
#include <torch/torch.h>

#include "tweedie/diffusion/gmm_prior.h"

namespace tweedie::diffusion {

class GmmPosterior {
 public:
  // `A` [M, D] (D = the item's pixels, flattened), `y` [B, M], σ > 0. InputError (naming `where`)
  // on a shape mismatch or σ ≤ 0; a precision that is not positive definite is an InternalError.
  GmmPosterior(const GaussianMixture& prior, const torch::Tensor& A, const torch::Tensor& y, double sigma,
               const std::string& where = "exact posterior");

  // Conditions on other measurements y [B', M] of the same operator and σ (the factors are
  // reused: Λ_k does not depend on y).
  void condition(const torch::Tensor& y);
  // One exact draw of p(x | z) for each row of z [R, M] (any R; the conditioning of this object is
  // unchanged): [R, D]; `components` (if not null) the components drawn [R]. The x-step of the
  // Gibbs sampler for 1-bit measurements (gmm_gibbs.h).
  torch::Tensor draw_given(const torch::Tensor& z, torch::Generator& gen, torch::Tensor* components = nullptr) const;

  int64_t batch() const { return log_weights_.size(0); }
  int64_t components() const { return log_weights_.size(1); }
  // log w_k(y) [B, K], normalised over k.
  const torch::Tensor& log_weights() const { return log_weights_; }
  // m_k(y) [B, K, D] over the whole item (inactive pixels at their fixed value).
  torch::Tensor component_means() const;
  // E[x | y] [B, item...].
  torch::Tensor mean() const;
  // Var[x_i | y] per pixel [B, item...] (0 on inactive pixels).
  torch::Tensor variance() const;
  // diag Λ_k⁻¹, each component's posterior marginal variances [K, D] (0 on inactive pixels); the
  // same for every item (Λ_k does not depend on y).
  torch::Tensor component_variances() const;
  // log p(x | y) of x [B, n, item...] under this posterior, at the active pixels (the inactive ones
  // are fixed): [B, n]. Σ_k w_k(y) N(x_a; m_k, Λ_k⁻¹) by log-sum-exp over the components with
  // weight above e^-40 of the heaviest for some item (the others are drawn with probability under
  // K e^-40); the density an independence proposal built from this posterior needs (gmm_mala.h's
  // mode jumps).
  torch::Tensor log_density(const torch::Tensor& x) const;
  // log w_k(y) + log N(x_a; m_k, Λ_k⁻¹) for x [B, n, item...] and one component per draw k [B, n]:
  // [B, n] (the joint density of a draw and its component, as sample() draws them).
  torch::Tensor component_log_density(const torch::Tensor& x, const torch::Tensor& k) const;
  // L_k with Λ_k = L_k L_kᵀ (lower) [Da, Da]: component k's posterior precision Σ_k⁻¹ + A_aᵀA_a/σ²,
  // the same for every item.
  const torch::Tensor precision_factor(int64_t k) const { return chol_[k]; }
  // n exact draws per item [B, n, item...]; `components` (if not null) receives each draw's
  // mixture component [B, n] (int64). All randomness from `gen`.
  torch::Tensor sample(int64_t n, torch::Generator& gen, torch::Tensor* components = nullptr) const;

 private:
  torch::Tensor full(const torch::Tensor& xa) const;  // [..., Da] → [..., D] with the fixed pixels
  // offset + log N(xa; m, Λ_j⁻¹) for rows xa [..., Da] and their means m (component j's precision)
  torch::Tensor log_normal(const torch::Tensor& xa, const torch::Tensor& m, int64_t j, const torch::Tensor& offset) const;

  struct Conditioned {
    torch::Tensor v;            // [K, Da, R]: L_k⁻¹ b_k(y) per row
    torch::Tensor log_weights;  // [R, K]
  };
  Conditioned solve_components(const torch::Tensor& y) const;

  std::vector<int64_t> item_shape_;
  torch::Tensor fixed_, active_;  // [D], [Da]
  torch::Tensor Aa_, AF_;         // A_a [M, Da], A F [M]
  double s2_ = 1;                 // σ²
  torch::Tensor h_, const_;       // Σ_k⁻¹ μ_k [K, Da]; the y-free part of log π_k p(y | k) [K]
  torch::Tensor log_weights_;     // [B, K]
  torch::Tensor means_;           // [B, K, Da]
  torch::Tensor chol_;            // [K, Da, Da]: Λ_k = L_k L_kᵀ
};

}  // namespace tweedie::diffusion
