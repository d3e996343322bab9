#include "tweedie/experiment/posterior_scores.h"

#include <cmath>

#include "tweedie/core/error.h"

namespace tweedie::experiment {
namespace {

using torch::Tensor;
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

std::vector<double> as_list(const Tensor& t) {
  const Tensor c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Φ(x) of the standard normal, elementwise
Tensor normal_cdf(const Tensor& x) { return 0.5 * torch::erfc(-x / std::sqrt(2.0)); }

struct Scores {
  Tensor mmse_gap, coverage50, coverage90, energy, mode_tv;
};

// The scores of `x` [B, K, D] (float64) given the posterior's pieces.
Scores score(const diffusion::GmmPosterior& post, const Tensor& x, const Tensor& yref, const Tensor& comp_means,
             const Tensor& comp_sd, const Tensor& varying, const Tensor& mean, double tr_cov_floor) {
  const int64_t B = x.size(0), K = x.size(1), D = x.size(2);
  Scores s;
  const Tensor var_total = post.variance().reshape({B, D}).sum(1).clamp_min(tr_cov_floor);
  s.mmse_gap = (x.mean(1) - mean).square().sum(1) / var_total;
  const Tensor w = post.log_weights().exp();  // [B, Kc]
  auto coverage = [&](double p) {
    const Tensor q = torch::tensor({(1 - p) / 2, (1 + p) / 2}, kF64);
    const Tensor lohi = torch::quantile(x, q, 1);  // [2, B, D]
    // P(lo ≤ x_i ≤ hi) = Σ_k w_k [Φ((hi − m_ki)/s_ki) − Φ((lo − m_ki)/s_ki)]
    const Tensor sd = comp_sd.unsqueeze(0).clamp_min(1e-12);                    // [1, Kc, D]
    const Tensor hi = normal_cdf((lohi[1].unsqueeze(1) - comp_means) / sd);      // [B, Kc, D]
    const Tensor lo = normal_cdf((lohi[0].unsqueeze(1) - comp_means) / sd);
    const Tensor p_in = (w.unsqueeze(2) * (hi - lo)).sum(1);                     // [B, D]
    return (p_in * varying).sum(1) / varying.sum();
  };
  s.coverage50 = coverage(0.5);
  s.coverage90 = coverage(0.9);
  // energy distance, U-statistics within each set
  const Tensor dxy = torch::cdist(x, yref).mean({1, 2});
  auto within = [](const Tensor& a) {
    const int64_t n = a.size(1);
    return torch::cdist(a, a).sum({1, 2}) / static_cast<double>(n * (n - 1));
  };
  s.energy = 2 * dxy - within(x) - within(yref);
  // mode coverage
  const Tensor comp = post.component_log_joint(x).argmax(2);  // [B, K]
  const int64_t Kc = w.size(1);
  const Tensor freq = torch::zeros({B, Kc}, kF64).scatter_add_(1, comp, torch::ones({B, K}, kF64)) / K;
  s.mode_tv = 0.5 * (freq - w).abs().sum(1);
  return s;
}

}  // namespace

nlohmann::json PosteriorScores::to_json() const {
  return {{"mmse_gap", as_list(mmse_gap)},           {"coverage50", as_list(coverage50)},
          {"coverage90", as_list(coverage90)},       {"energy", as_list(energy)},
          {"mode_tv", as_list(mode_tv)},             {"floor_mmse_gap", as_list(floor_mmse_gap)},
          {"floor_coverage50", as_list(floor_coverage50)}, {"floor_coverage90", as_list(floor_coverage90)},
          {"floor_energy", as_list(floor_energy)},   {"floor_mode_tv", as_list(floor_mode_tv)}};
}

PosteriorScores score_draws(const diffusion::GmmPosterior& post, const Tensor& draws, int64_t reference,
                            torch::Generator& gen) {
  const int64_t B = post.batch();
  require(draws.dim() >= 3 && draws.size(0) == B && draws.size(1) >= 2,
          "posterior scores: need draws [B, K >= 2, ...] for B = " + std::to_string(B));
  require(reference >= 2, "posterior scores: need at least 2 reference draws");
  const int64_t K = draws.size(1);
  const Tensor x = draws.to(torch::kCPU, torch::kFloat64).reshape({B, K, -1});
  const int64_t D = x.size(2);
  const Tensor yref = post.sample(reference, gen).reshape({B, reference, D});
  const Tensor exact_k = post.sample(K, gen).reshape({B, K, D});
  const Tensor comp_means = post.component_means();                        // [B, Kc, D]
  const Tensor comp_sd = post.component_variances().sqrt();                // [Kc, D]
  const Tensor varying = (comp_sd.amax(0) > 0).to(torch::kFloat64);        // pixels the prior lets vary
  const Tensor mean = post.mean().reshape({B, D});
  const Scores a = score(post, x, yref, comp_means, comp_sd, varying, mean, 1e-30);
  const Scores f = score(post, exact_k, yref, comp_means, comp_sd, varying, mean, 1e-30);
  return {a.mmse_gap, a.coverage50, a.coverage90, a.energy, a.mode_tv,
          f.mmse_gap, f.coverage50, f.coverage90, f.energy, f.mode_tv};
}

}  // namespace tweedie::experiment
