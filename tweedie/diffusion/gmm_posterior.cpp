#include "tweedie/diffusion/gmm_posterior.h"

#include <cmath>
#include <sstream>

#include "tweedie/core/error.h"

namespace tweedie::diffusion {
namespace {

using torch::Tensor;
const auto kPosteriorF64 = torch::TensorOptions().dtype(torch::kFloat64);

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
  const int64_t M = A.size(0);
  const double s2 = sigma * sigma;
  const Tensor Aa = A.index_select(1, active_);                     // A_a [M, Da]
  const Tensor AtA = at::matmul(Aa.t(), Aa) / s2;                   // A_aᵀA_a/σ²
  const Tensor eye = torch::eye(da, kPosteriorF64);

  chol_ = torch::empty({K, da, da}, kPosteriorF64);
  h_ = torch::empty({K, da}, kPosteriorF64);
  const_ = torch::empty({K}, kPosteriorF64);
  Aa_ = Aa;
  AF_ = at::matmul(A, fixed_);
  s2_ = s2;
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
    h_[k] = at::matmul(Sinv, g.means[k]);                            // Σ_k⁻¹ μ_k
    const double logdet_lambda = 2 * L.diagonal().log().sum().item<double>();
    // log π_k − ½ (M log 2πσ² + log|Σ_k| + log|Λ_k| + μ_kᵀΣ_k⁻¹μ_k); the y-terms come in condition()
    const_[k] = g.log_weights[k].item<double>() -
                0.5 * (M * std::log(2 * M_PI * s2) + logdet_sigma + logdet_lambda + at::dot(g.means[k], h_[k]).item<double>());
  }
  condition(y);
}

GmmPosterior::Conditioned GmmPosterior::solve_components(const Tensor& y) const {
  // y' = y − A F;  b_k = h_k + A_aᵀy'/σ²;  v_k = L_k⁻¹ b_k, so b_kᵀm_k = ‖v_k‖² and m_k = L_k⁻ᵀ v_k
  const Tensor yp = y.to(torch::kCPU, torch::kFloat64) - AF_.unsqueeze(0);
  const Tensor Aty = at::matmul(yp, Aa_) / s2_;                       // [R, Da]
  const Tensor yy = yp.square().sum(1) / s2_;                          // [R]
  const int64_t K = chol_.size(0), R = y.size(0), da = Aa_.size(1);
  Conditioned c;
  c.v = torch::empty({K, da, R}, kPosteriorF64);
  Tensor logits = torch::empty({R, K}, kPosteriorF64);
  for (int64_t k = 0; k < K; ++k) {
    const Tensor b = (Aty + h_[k].unsqueeze(0)).t();                  // [Da, R]
    const Tensor v = at::linalg_solve_triangular(chol_[k], b, /*upper=*/false);
    c.v[k] = v;
    logits.select(1, k).copy_(const_[k] - 0.5 * (yy - v.square().sum(0)));
  }
  c.log_weights = logits - at::logsumexp(logits, 1, true);
  return c;
}

void GmmPosterior::condition(const Tensor& y) {
  require(y.dim() == 2 && y.size(1) == Aa_.size(0),
          "exact posterior: y must be [B, " + std::to_string(Aa_.size(0)) + "]");
  const Conditioned c = solve_components(y);
  const int64_t K = chol_.size(0);
  means_ = torch::empty({y.size(0), K, Aa_.size(1)}, kPosteriorF64);
  for (int64_t k = 0; k < K; ++k)
    means_.select(1, k).copy_(at::linalg_solve_triangular(chol_[k].t(), c.v[k], /*upper=*/true).t());
  log_weights_ = c.log_weights;
}

Tensor GmmPosterior::draw_given(const Tensor& z, torch::Generator& gen, Tensor* components) const {
  const Conditioned c = solve_components(z);
  const int64_t R = z.size(0), da = Aa_.size(1);
  const Tensor k = at::multinomial(c.log_weights.exp(), 1, /*replacement=*/true, gen).squeeze(1);  // [R]
  const Tensor e = at::randn({da, R}, gen, kPosteriorF64);
  Tensor xa = torch::empty({R, da}, kPosteriorF64);
  // x = m_k + L_k⁻ᵀ e = L_k⁻ᵀ (v_k + e), one solve per component over the rows that chose it
  for (int64_t j = 0; j < chol_.size(0); ++j) {
    const Tensor rows = (k == j).nonzero().squeeze(1);
    if (rows.numel() == 0) continue;
    const Tensor rhs = c.v[j].index_select(1, rows) + e.index_select(1, rows);
    xa.index_copy_(0, rows, at::linalg_solve_triangular(chol_[j].t(), rhs, /*upper=*/true).t());
  }
  if (components) *components = k;
  return full(xa);
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
  Tensor diag = torch::empty({K, active_.size(0)}, kPosteriorF64);
  for (int64_t k = 0; k < K; ++k) diag[k] = at::cholesky_inverse(chol_[k]).diagonal();
  return torch::zeros({K, fixed_.size(0)}, kPosteriorF64).index_copy(1, active_, diag);
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
  return torch::zeros({batch(), fixed_.size(0)}, kPosteriorF64).index_copy(1, active_, var).view(shape);
}

Tensor GmmPosterior::log_normal(const Tensor& xa, const Tensor& m, int64_t j, const Tensor& offset) const {
  // offset − ½ ‖L_jᵀ (x − m)‖² + Σ log diag L_j − (Da/2) log 2π, with Λ_j = L_j L_jᵀ
  const Tensor r = at::matmul(xa - m, chol_[j]);  // rows of (L_jᵀ rᵀ)ᵀ
  const double log_det = chol_[j].diagonal().log().sum().item<double>();
  return offset - 0.5 * r.square().sum(-1) + log_det - 0.5 * static_cast<double>(xa.size(-1)) * std::log(2 * M_PI);
}

Tensor GmmPosterior::log_density(const Tensor& x) const {
  const int64_t B = batch(), K = components(), n = x.size(1);
  require(x.dim() >= 2 && x.size(0) == B && x[0][0].numel() == fixed_.size(0),
          "exact posterior: log_density needs x [" + std::to_string(B) + ", n, item...]");
  const Tensor xa = x.to(torch::kCPU, torch::kFloat64).reshape({B, n, -1}).index_select(2, active_);
  // Components whose weight is below e^-40 of the heaviest for every item are left out (usually all
  // but a few): sample() draws them with probability under K e^-40, so this is the density of
  // what sample() draws, to that accuracy, and an independence proposal stays consistent.
  Tensor log_n = torch::full({B, n, K}, -INFINITY, kPosteriorF64);
  const Tensor heavy = log_weights_.amax(0) > log_weights_.amax() - 40.0;
  for (int64_t k = 0; k < K; ++k)
    if (heavy[k].item<bool>())
      log_n.select(2, k).copy_(log_normal(xa, means_.select(1, k).unsqueeze(1), k, torch::zeros({}, kPosteriorF64)));
  return at::logsumexp(log_n + log_weights_.unsqueeze(1), 2);
}

Tensor GmmPosterior::component_log_density(const Tensor& x, const Tensor& k) const {
  const int64_t B = batch();
  require(x.dim() >= 2 && x.size(0) == B && x[0][0].numel() == fixed_.size(0) && k.sizes() == x.sizes().slice(0, 2),
          "exact posterior: component_log_density needs x [" + std::to_string(B) + ", n, item...] and k [B, n]");
  const int64_t n = x.size(1);
  const Tensor xa = x.to(torch::kCPU, torch::kFloat64).reshape({B * n, -1}).index_select(1, active_);
  const Tensor kc = k.to(torch::kCPU, torch::kLong).reshape({B * n});
  const Tensor item = torch::arange(B).repeat_interleave(n);
  Tensor out = torch::empty({B * n}, kPosteriorF64);
  for (const int64_t j : distinct_components(kc)) {
    const Tensor rows = (kc == j).nonzero().squeeze(1);
    const Tensor it = item.index_select(0, rows);
    out.index_copy_(0, rows, log_normal(xa.index_select(0, rows), means_.select(1, j).index_select(0, it), j,
                                        log_weights_.select(1, j).index_select(0, it)));
  }
  return out.view({B, n});
}

Tensor GmmPosterior::sample(int64_t n, torch::Generator& gen, Tensor* components) const {
  require(n >= 1, "exact posterior: the number of draws must be at least 1");
  const int64_t B = batch(), da = active_.size(0);
  const Tensor k = at::multinomial(log_weights_.exp(), n, /*replacement=*/true, gen);  // [B, n]
  const Tensor z = at::randn({B, n, da}, gen, kPosteriorF64);
  Tensor xa = torch::empty({B, n, da}, kPosteriorF64);
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
