#include "tweedie/diffusion/gmm_posterior.h"

#include <cmath>
#include <sstream>

#include "tweedie/core/error.h"

namespace tweedie::diffusion {
namespace {

using torch::Tensor;
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

std::string sizes_text(const Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

}  // namespace

GmmPosterior::GmmPosterior(const GaussianMixture& g, const Tensor& A_in, const Tensor& y_in, double sigma,
                           const std::string& where)
    : item_shape_(g.item_shape), fixed_(g.fixed), active_(g.active) {
  const int64_t D = g.item_numel(), da = g.active_pixels(), d = g.dims(), K = g.components();
  require(A_in.dim() == 2 && A_in.size(1) == D,
          where + ": the operator must be a matrix [M, " + std::to_string(D) + "], got " + sizes_text(A_in));
  require(y_in.dim() == 2 && y_in.size(1) == A_in.size(0),
          where + ": y must be [B, " + std::to_string(A_in.size(0)) + "], got " + sizes_text(y_in));
  require(std::isfinite(sigma) && sigma > 0,
          where + ": needs a noise level sigma > 0 (the posterior of noiseless measurements is singular)");
  const Tensor A = A_in.detach().to(torch::kCPU, torch::kFloat64);
  const Tensor y = y_in.detach().to(torch::kCPU, torch::kFloat64);
  const int64_t M = A.size(0), B = y.size(0);
  const double s2 = sigma * sigma;
  const Tensor Aa = A.index_select(1, active_);                     // A_a [M, Da]
  const Tensor yp = y - at::matmul(A, fixed_).unsqueeze(0);         // y' = y − A F [B, M]
  const Tensor AtA = at::matmul(Aa.t(), Aa) / s2;                   // A_aᵀA_a/σ²
  const Tensor Aty = at::matmul(yp, Aa) / s2;                       // (A_aᵀy'/σ²)ᵀ [B, Da]
  const Tensor yy = yp.square().sum(1) / s2;                        // ‖y'‖²/σ² [B]
  const Tensor eye = torch::eye(da, kF64);

  chol_ = torch::empty({K, da, da}, kF64);
  means_ = torch::empty({B, K, da}, kF64);
  Tensor log_ev = torch::empty({B, K}, kF64);
  for (int64_t k = 0; k < K; ++k) {
    const Tensor W = at::matmul(g.basis, g.eigvecs[k]);             // U V_k [Da, d]
    const Tensor lam = g.eigvals[k];
    Tensor Sinv;                                                     // Σ_k⁻¹
    double logdet_sigma = lam.log().sum().item<double>();
    if (d < da) {
      const double r = g.residual[k].item<double>();
      Sinv = at::matmul(W * (1.0 / lam - 1.0 / r), W.t()) + eye / r;
      logdet_sigma += static_cast<double>(da - d) * std::log(r);
    } else {
      Sinv = at::matmul(W / lam, W.t());
    }
    Sinv = 0.5 * (Sinv + Sinv.t());
    const Tensor Lambda = Sinv + AtA;                                // Λ_k
    auto [L, info] = at::linalg_cholesky_ex(Lambda);
    if (info.item<int64_t>() != 0)
      throw InternalError(where + ": the posterior precision of component " + std::to_string(k) +
                          " is not positive definite");
    chol_[k] = L;
    const Tensor h = at::matmul(Sinv, g.means[k]);                   // Σ_k⁻¹ μ_k [Da]
    const Tensor b = Aty + h.unsqueeze(0);                           // b_k [B, Da]
    const Tensor m = at::cholesky_solve(b.t(), L).t();               // m_k = Λ_k⁻¹ b_k
    means_.select(1, k).copy_(m);
    const double logdet_lambda = 2 * L.diagonal().log().sum().item<double>();
    const Tensor quad = yy + at::dot(g.means[k], h) - (b * m).sum(1);
    log_ev.select(1, k).copy_(-0.5 * (M * std::log(2 * M_PI * s2) + logdet_sigma + logdet_lambda + quad));
  }
  const Tensor logits = log_ev + g.log_weights.unsqueeze(0);
  log_weights_ = logits - at::logsumexp(logits, 1, true);
}

Tensor GmmPosterior::full(const Tensor& xa) const {
  std::vector<int64_t> lead(xa.sizes().begin(), xa.sizes().end() - 1);
  std::vector<int64_t> shape = lead;
  shape.push_back(fixed_.size(0));
  const int64_t rows = xa.numel() / xa.size(-1);
  return fixed_.expand({rows, fixed_.size(0)}).index_copy(1, active_, xa.reshape({rows, -1})).view(shape);
}

Tensor GmmPosterior::component_means() const { return full(means_); }

Tensor GmmPosterior::mean() const {
  const Tensor w = log_weights_.exp().unsqueeze(2);
  std::vector<int64_t> shape{batch()};
  shape.insert(shape.end(), item_shape_.begin(), item_shape_.end());
  return full((w * means_).sum(1)).view(shape);
}

Tensor GmmPosterior::component_variances() const {
  const int64_t K = components();
  Tensor diag = torch::empty({K, active_.size(0)}, kF64);
  for (int64_t k = 0; k < K; ++k) diag[k] = at::cholesky_inverse(chol_[k]).diagonal();
  return torch::zeros({K, fixed_.size(0)}, kF64).index_copy(1, active_, diag);
}

Tensor GmmPosterior::variance() const {
  // Var = Σ_k w_k (diag Λ_k⁻¹ + m_k²) − (Σ_k w_k m_k)²
  const Tensor diag = component_variances().index_select(1, active_);
  const Tensor w = log_weights_.exp();                                // [B, K]
  const Tensor mu = (w.unsqueeze(2) * means_).sum(1);
  const Tensor second = at::matmul(w, diag) + (w.unsqueeze(2) * means_.square()).sum(1);
  const Tensor var = (second - mu.square()).clamp_min(0);
  std::vector<int64_t> shape{batch()};
  shape.insert(shape.end(), item_shape_.begin(), item_shape_.end());
  return torch::zeros({batch(), fixed_.size(0)}, kF64).index_copy(1, active_, var).view(shape);
}

Tensor GmmPosterior::component_log_joint(const Tensor& x) const {
  const int64_t B = batch(), K = components();
  require(x.dim() >= 2 && x.size(0) == B, "exact posterior: draws must be [B, n, ...] with B = " + std::to_string(B));
  const int64_t n = x.size(1);
  const Tensor xa = x.to(torch::kCPU, torch::kFloat64).reshape({B, n, -1}).index_select(2, active_);  // [B, n, Da]
  Tensor out = torch::empty({B, n, K}, kF64);
  const double da = static_cast<double>(active_.size(0));
  for (int64_t k = 0; k < K; ++k) {
    const Tensor L = chol_[k];
    // ‖Lᵀ(x − m_k)‖² is the Mahalanobis distance under Λ_k = L Lᵀ; log|Λ_k|^½ = Σ log diag L
    const Tensor r = xa - means_.select(1, k).unsqueeze(1);                 // [B, n, Da]
    const Tensor q = at::matmul(r, L).square().sum(2);                      // [B, n]
    const double half_logdet = L.diagonal().log().sum().item<double>();
    out.select(2, k).copy_(-0.5 * q + half_logdet - 0.5 * da * std::log(2 * M_PI) +
                           log_weights_.select(1, k).unsqueeze(1));
  }
  return out;
}

Tensor GmmPosterior::sample(int64_t n, torch::Generator& gen, Tensor* components) const {
  require(n >= 1, "exact posterior: the number of draws must be at least 1");
  const int64_t B = batch(), da = active_.size(0);
  const Tensor k = at::multinomial(log_weights_.exp(), n, /*replacement=*/true, gen);  // [B, n]
  const Tensor z = at::randn({B, n, da}, gen, kF64);
  Tensor xa = torch::empty({B, n, da}, kF64);
  // x = m_k + L_k⁻ᵀ z (cov Λ_k⁻¹ = L_k⁻ᵀ L_k⁻¹): one triangular solve per (item, draw)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < n; ++j) {
      const int64_t c = k[b][j].item<int64_t>();
      const Tensor v = at::linalg_solve_triangular(chol_[c].t(), z[b][j].unsqueeze(1), /*upper=*/true);
      xa[b][j] = means_[b][c] + v.squeeze(1);
    }
  if (components) *components = k;
  std::vector<int64_t> shape{B, n};
  shape.insert(shape.end(), item_shape_.begin(), item_shape_.end());
  return full(xa).view(shape);
}

}  // namespace tweedie::diffusion
