#pragma once
// A gold-standard sampler for any differentiable channel under the mixture prior (issue 28, item 3):
// Metropolis-within-Gibbs on the pair (x, k) of an image and its mixture component, whose joint
// posterior is
//   p(x, k | y) ∝ π_k N(x_a; μ_k, Σ_k) p(y | x)
// (marginal in x: the exact posterior p(x | y)). log p(y | x) is the caller's (e.g. −nll of a
// channel after an operator), differentiated by autograd; only the active pixels move.
//
// Each sweep, for every chain:
//  1. k ~ p(k | x), exact (the mixture's responsibilities; y depends on x alone);
//  2. one MALA step in x given k (Roberts & Tweedie, Bernoulli 1996) with the metric M_k = Λ̃_k⁻¹,
//     Λ̃_k = Σ_k⁻¹ + H̃ the k-th component precision of a surrogate posterior (below):
//       x' = x + (h/2) M_k g + √h M_k^{1/2} ξ,  g = ∇_x log[N(x; μ_k, Σ_k) p(y | x)],  ξ ~ N(0, I)
//     accepted with min(1, p(x', k | y) q_k(x | x') / (p(x, k | y) q_k(x' | x))); with Λ̃_k = L_k L_kᵀ,
//     M_k g = L_k⁻ᵀ L_k⁻¹ g and M_k^{1/2} ξ = L_k⁻ᵀ ξ. Within a component the target is a Gaussian
//     times the likelihood, and M_k is its curvature when the surrogate is good: well conditioned;
//  3. every `jump_every` sweeps, a mode jump: (k', x') drawn from the surrogate posterior q (an
//     independence proposal, Tierney, Ann. Stat. 1994), accepted with
//     min(1, p(x', k' | y) q(x, k) / (p(x, k | y) q(x', k'))). MALA does not cross between the
//     mixture's modes and step 1 rarely changes k in many dimensions; the jumps do both.
// Each step leaves p(x, k | y) invariant whatever the surrogate; its quality sets only the speed.
// The surrogate is the exact mixture posterior (gmm_posterior.h) of a Gaussian stand-in for the
// likelihood, y ≈ A x + σ̃ n: exact for a linear Gaussian problem, an approximation elsewhere
// (experiment/posterior_scores.h builds it).
//
// h is adapted per item during warm-up (Robbins–Monro on log h towards the acceptance rate
// `target_accept`, 0.574 optimal for MALA: Roberts & Rosenthal 1998), then fixed at the mean of
// log h over the second half of warm-up, so the kept states are a proper Markov chain. Chains start
// at prior draws (overdispersed); split-R̂ and ESS (gmm_gibbs.h's chain_diagnostics) say whether
// they met: the diagnostics, not this sampler, decide whether a reference is trusted.
#include <torch/torch.h>

#include <functional>
#include <utility>

#include "tweedie/diffusion/gmm_posterior.h"
#include "tweedie/diffusion/gmm_prior.h"

namespace tweedie::diffusion {

struct MalaOptions {
  int64_t chains = 4;           // per item
  int64_t warmup = 1000;        // sweeps discarded (step size adapted)
  int64_t iterations = 1000;    // sweeps after warm-up, per chain
  int64_t thin = 1;             // keep every thin-th of them
  double target_accept = 0.574;
  double initial_step = 0.5;    // h at the start of warm-up
  int64_t jump_every = 5;       // sweeps between mode jumps (0: none)
};

struct MalaChains {
  torch::Tensor draws;        // [B, chains, iterations / thin, item...] float64
  torch::Tensor rhat;         // [B]: the largest split-R̂ over the active pixels
  torch::Tensor ess;          // [B]: the smallest effective sample size over them (all chains)
  torch::Tensor accept;       // [B]: the MALA steps' acceptance rate after warm-up
  torch::Tensor step;         // [B]: the step size h used after warm-up
  torch::Tensor jump_accept;  // [B]: the mode jumps' acceptance rate after warm-up (0 without)
};

// log p(y | x) for x [B·chains, D] (rows item-major: row b·chains + c is a chain of item b),
// differentiable in x: [B·chains]. D = prior.item_numel().
using LogLikelihood = std::function<torch::Tensor(const torch::Tensor& x)>;

// B = surrogate.batch() items, each with its surrogate conditioning. All randomness from `gen`.
MalaChains gmm_mala(const GaussianMixture& prior, const LogLikelihood& log_likelihood,
                    const GmmPosterior& surrogate, const MalaOptions& options, torch::Generator& gen);

}  // namespace tweedie::diffusion
