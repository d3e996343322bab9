#pragma once
// A gold-standard sampler for 1-bit measurements under the mixture prior (issue 28): the exact
// data-augmentation Gibbs sampler of Albert & Chib (JASA 1993) for the probit link, with the
// mixture's closed-form linear-Gaussian posterior (gmm_posterior.h) as its x-step.
//
// y_i = sign(w_i), w = A x + σ e (the `sign` channel without dither). The pair (x, w) has the
// joint posterior p(x) N(w; A x, σ² I) 1[y ⊙ w > 0], and both conditionals are exact draws:
//   w | x, y   w_i ~ N((A x)_i, σ²) truncated to y_i w_i > 0     (inverse CDF, tail-safe)
//   x | w      the mixture posterior of the linear measurement w  (GmmPosterior::draw_given)
// so the chain leaves p(x | y) invariant; no step size, no rejection. Several chains per item,
// started at prior draws (overdispersed), give the split-R̂ and the effective sample size of
// each pixel (Gelman et al., BDA3 §11.4–11.5; ESS by Geyer's initial positive sequence).
#include <torch/torch.h>

#include "tweedie/diffusion/gmm_posterior.h"

namespace tweedie::diffusion {

struct ProbitGibbsOptions {
  int64_t chains = 4;        // per item
  int64_t iterations = 400;  // kept after warm-up, per chain
  int64_t warmup = 200;      // discarded
};

struct ProbitGibbs {
  torch::Tensor draws;  // [B, chains, iterations, item...]
  torch::Tensor rhat;   // [B]: the largest split-R̂ over the pixels that vary
  torch::Tensor ess;    // [B]: the smallest effective sample size over those pixels (all chains)
};

// A [M, D] dense, y [B, M] with entries ±1, σ > 0. All randomness from `gen`.
ProbitGibbs probit_gibbs(const GaussianMixture& prior, const torch::Tensor& A, const torch::Tensor& y, double sigma,
                         const ProbitGibbsOptions& options, torch::Generator& gen);

// One Gibbs sweep's w-step alone, for the solver: w ~ N(m, σ²) truncated to y w > 0, elementwise.
torch::Tensor truncated_normal(const torch::Tensor& m, const torch::Tensor& y, double sigma, torch::Generator& gen);

// split-R̂ and ESS of chains [B, C, N, P] per (item, coordinate): [B, P] each.
std::pair<torch::Tensor, torch::Tensor> chain_diagnostics(const torch::Tensor& chains);

}  // namespace tweedie::diffusion
