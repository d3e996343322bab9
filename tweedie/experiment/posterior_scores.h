#pragma once
// Does a solver sample the posterior? K draws per measurement scored against the posterior of the
// mixture prior (issue 28): the exact one (diffusion/gmm_posterior.h) under a linear Gaussian
// channel, the gold-standard Gibbs sampler's (diffusion/gmm_gibbs.h) under 1-bit measurements,
// MALA's (diffusion/gmm_mala.h) under any other noisy channel.
// Per item:
//   mmse_gap    ‖mean of the draws − E[x | y]‖² / tr Cov[x | y]: 0 for the exact mean; K exact
//               draws give 1/K in expectation
//   coverage50, coverage90
//               the posterior probability that x_i falls inside the draws' central 50 % / 90 %
//               interval (their empirical quantiles), averaged over the pixels the prior lets vary:
//               in closed form from the mixture's marginals (Σ_k w_k [Φ(hi) − Φ(lo)]) where the
//               posterior is exact, else the share of the reference draws inside
//   energy      the energy distance 2E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ (unbiased U-statistics)
//               between the draws X and the reference draws Y; 0 when they share a law
//   mode_tv     ½ Σ_k |f_k − w_k(y)|: f_k the share of draws whose most likely component p(k | x)
//               is k; w_k the posterior's weights (exact, or the reference draws' mean p(k | x))
// and each of these for K reference-quality draws in place of the solver's (`floor_*`): what a
// perfect sampler scores at this K. A mode-seeker has coverage below the floor and a small spread;
// an over-dispersed sampler coverage above it.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "tweedie/diffusion/gmm_gibbs.h"
#include "tweedie/diffusion/gmm_mala.h"
#include "tweedie/diffusion/gmm_posterior.h"
#include "tweedie/problem.h"

namespace tweedie::experiment {

// What draws are scored against, per item.
struct PosteriorReference {
  torch::Tensor draws;       // [B, R, D] posterior draws (the energy distance's Y)
  torch::Tensor floor;       // [B, K, D] K more, independent of `draws`: the perfect sampler
  torch::Tensor mean;        // [B, D] E[x | y]
  torch::Tensor total_var;   // [B] tr Cov[x | y]
  torch::Tensor weights;     // [B, Kc] the posterior's component weights
  torch::Tensor comp_means;  // [B, Kc, D] and comp_sd [Kc, D]: the exact marginals (undefined for
  torch::Tensor comp_sd;     // a sampled reference: coverage then counts reference draws)
  std::string kind = "exact";        // exact | gibbs | mala
  double rhat_max = 1, ess_min = 0;  // a sampled reference's diagnostics (1, 0 when exact)
  double accept = 1, jump_accept = 0;  // MALA's acceptance rates after warm-up (means over items)
  torch::Tensor rhat, ess;             // a sampled reference's per-item diagnostics [B] (undefined when exact)
  nlohmann::json describe() const;
};

// The exact posterior's reference: R and K exact draws, its moments and marginals.
// A sampled reference (Gibbs, MALA) kept on disk, so a resumed run does not sample it again (the
// 1-bit one takes most of an hour): `key` names what it was sampled from; a file made for another
// key, or unreadable, is ignored (nullopt) and the caller samples anew. Written atomically.
void save_reference(const std::string& path, const PosteriorReference& ref, const std::string& key);
std::optional<PosteriorReference> load_reference(const std::string& path, const std::string& key);

PosteriorReference exact_reference(const diffusion::GmmPosterior& post, int64_t R, int64_t K, torch::Generator& gen);
// The Gibbs sampler's for 1-bit y [B, M] (±1): of its pooled kept states, R + K evenly spaced ones
// per item, K of them (every (R + K)/K-th) the floor and the other R the reference; the moments and
// weights from all kept states.
PosteriorReference gibbs_reference(const diffusion::GaussianMixture& prior, const torch::Tensor& A,
                                   const torch::Tensor& y, double sigma, int64_t R, int64_t K,
                                   const diffusion::ProbitGibbsOptions& options, torch::Generator& gen);

// MALA's (diffusion/gmm_mala.h) for any other real problem with a noisy channel (solve/exact.h's
// kMala: logistic, phase, quantized, dithered sign, nonlinear operators): y [B, ...] as the problem
// measures it, log p(y | x) = −nll(A x, y). The sampler's surrogate: a Gaussian stand-in for the
// likelihood around each item's centre (from a pilot run), the operator linearised at the prior
// mean (its matrix when linear); see the .cpp. Draws are pooled as for the Gibbs reference.
PosteriorReference mala_reference(const diffusion::GaussianMixture& prior, const Problem& problem, const torch::Tensor& y,
                                  int64_t R, int64_t K, const diffusion::MalaOptions& options, torch::Generator& gen);

struct PosteriorScores {
  torch::Tensor mmse_gap, coverage50, coverage90, energy, mode_tv;  // [B] float64
  torch::Tensor floor_mmse_gap, floor_coverage50, floor_coverage90, floor_energy, floor_mode_tv;
  nlohmann::json to_json() const;  // {name: [per item]}
};

// draws [B, K, item...] (K ≥ 2) against `ref` (whose floor has the same K).
PosteriorScores score_draws(const diffusion::GaussianMixture& prior, const PosteriorReference& ref,
                            const torch::Tensor& draws);

}  // namespace tweedie::experiment
