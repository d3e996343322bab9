#pragma once
// A gold-standard sampler for any differentiable channel under the mixture prior (issue 28, item 3):
// preconditioned Metropolis-adjusted Langevin (MALA; Roberts & Tweedie, Bernoulli 1996; the
// preconditioned form of Girolami & Calderhead, JRSS-B 2011, with a fixed metric) on the exact
// log-posterior
//   log p(x | y) = log p(x) + log p(y | x) + const,
// where log p(x) and ∇ log p(x) are the mixture's closed form (gmm_prior.h, σ = 0) and
// log p(y | x) is the caller's (e.g. −nll of a channel after an operator), differentiated by
// autograd. Only the active pixels move; the inactive ones stay at their fixed value.
//
// One step from x, with gradient g = ∇ log p(x | y), step size h and metric M:
//   x' = x + (h/2) M g + √h M^{1/2} ξ,   ξ ~ N(0, I)
//   accept with probability min(1, p(x' | y) q(x | x') / (p(x | y) q(x' | x))),
//   q(x' | x) ∝ exp(−‖x' − x − (h/2) M g(x)‖²_{M⁻¹} / 2h)
// so the chain leaves p(x | y) invariant for any h > 0 and any symmetric positive-definite M.
// M⁻¹ = P⁻¹ + H: P the prior's pooled covariance (the mixture's total covariance, restricted to
// the structure U C Uᵀ + s² (I − U Uᵀ)), H the caller's curvature of −log p(y | x) (Jᵀ diag(c) J
// at a reference point; may be undefined). M⁻¹ = L Lᵀ (Cholesky, dense in Da): M g = L⁻ᵀ L⁻¹ g,
// M^{1/2} ξ = L⁻ᵀ ξ.
//
// Mode jumps (optional): MALA's local steps do not cross between the mixture's modes, so every
// `jump_every` steps each chain may also propose x' ~ q from an independence proposal q (a
// JumpProposal) and accept it with probability min(1, p(x' | y) q(x) / (p(x | y) q(x'))); this
// leaves p(x | y) invariant for any q (Tierney, Ann. Stat. 1994) and moves chains between modes
// when q is near the posterior, e.g. the exact mixture posterior (gmm_posterior.h) of a Gaussian
// surrogate of the likelihood (experiment/posterior_scores.h builds one).
//
// h is adapted per item during warm-up (Robbins–Monro on log h towards the acceptance rate
// `target_accept`, 0.574 optimal for MALA: Roberts & Rosenthal 1998), then fixed at the mean of
// log h over the second half of warm-up, so the kept states are a proper Markov chain. Chains start
// at prior draws (overdispersed); split-R̂ and ESS (gmm_gibbs.h's chain_diagnostics) say whether
// they met. A multimodal posterior that MALA does not cross shows as R̂ ≫ 1: the diagnostics, not
// this sampler, decide whether a reference is trusted.
#include <torch/torch.h>

#include <functional>
#include <utility>

#include "tweedie/diffusion/gmm_prior.h"

namespace tweedie::diffusion {

struct MalaOptions {
  int64_t chains = 4;           // per item
  int64_t warmup = 1000;        // steps discarded (step size adapted)
  int64_t iterations = 1000;    // steps after warm-up, per chain
  int64_t thin = 1;             // keep every thin-th of them
  double target_accept = 0.574;
  double initial_step = 0.25;   // h at the start of warm-up
  int64_t jump_every = 5;       // steps between mode-jump proposals (with a JumpProposal)
};

// q for the mode jumps: `draw(n, gen)` gives n draws per item [B, n, D]; `log_density(x)` log q(x)
// for x [B, n, D] → [B, n] (up to a constant shared by all x of an item).
struct JumpProposal {
  std::function<torch::Tensor(int64_t n, torch::Generator& gen)> draw;
  std::function<torch::Tensor(const torch::Tensor& x)> log_density;
};

struct MalaChains {
  torch::Tensor draws;   // [B, chains, iterations / thin, item...] float64
  torch::Tensor rhat;    // [B]: the largest split-R̂ over the active pixels
  torch::Tensor ess;     // [B]: the smallest effective sample size over them (all chains)
  torch::Tensor accept;  // [B]: acceptance rate after warm-up
  torch::Tensor step;    // [B]: the step size h used after warm-up
  torch::Tensor jump_accept;  // [B]: the mode jumps' acceptance rate after warm-up (0 without jumps)
};

// log p(y | x) for x [B·chains, D] (rows item-major: row b·chains + c is a chain of item b),
// differentiable in x: [B·chains]. D = prior.item_numel().
using LogLikelihood = std::function<torch::Tensor(const torch::Tensor& x)>;

// B items; `curvature` [D, D] (or undefined) as above; `jumps` null for MALA alone. All randomness
// from `gen`.
MalaChains gmm_mala(const GaussianMixture& prior, const LogLikelihood& log_likelihood, int64_t B,
                    const torch::Tensor& curvature, const MalaOptions& options, torch::Generator& gen,
                    const JumpProposal* jumps = nullptr);

}  // namespace tweedie::diffusion
