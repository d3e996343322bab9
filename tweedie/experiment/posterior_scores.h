#pragma once
// Does a solver sample the posterior? K draws per measurement scored against the exact posterior
// of the mixture prior (diffusion/gmm_posterior.h), issue 28. Per item:
//   mmse_gap    ‖mean of the draws − E[x | y]‖² / tr Cov[x | y]: 0 for the exact mean; K exact
//               draws give 1/K in expectation
//   coverage50, coverage90
//               the exact posterior probability that x_i falls inside the draws' central 50 % / 90 %
//               interval (their empirical quantiles), averaged over the pixels the prior lets vary;
//               computed in closed form from the mixture's marginals (Σ_k w_k [Φ(hi) − Φ(lo)])
//   energy      the energy distance 2E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ (unbiased U-statistics)
//               between the draws X and R exact draws Y; 0 when they share a law
//   mode_tv     ½ Σ_k |f_k − w_k(y)|: f_k the share of draws whose most likely component is k
// and each of these for K exact draws in place of the solver's (`floor_*`): what a perfect sampler
// scores at this K. A mode-seeker has coverage below the floor and a small spread; an
// over-dispersed sampler coverage above it.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "tweedie/diffusion/gmm_posterior.h"

namespace tweedie::experiment {

struct PosteriorScores {
  torch::Tensor mmse_gap, coverage50, coverage90, energy, mode_tv;  // [B] float64
  torch::Tensor floor_mmse_gap, floor_coverage50, floor_coverage90, floor_energy, floor_mode_tv;
  nlohmann::json to_json() const;  // {name: [per item]}
};

// draws [B, K, item...] (K ≥ 2); `reference` exact draws per item for the energy distance; the
// floor's draws and the reference come from `gen`.
PosteriorScores score_draws(const diffusion::GmmPosterior& post, const torch::Tensor& draws, int64_t reference,
                            torch::Generator& gen);

}  // namespace tweedie::experiment
