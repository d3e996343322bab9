#pragma once
// DPS: diffusion posterior sampling. Chung, Kim, Mccann, Klasky, Ye, "Diffusion Posterior
// Sampling for General Noisy Inverse Problems" (ICLR 2023), as in the official code
// (DPS2022@effbde7, `conditioning_method.py` PosteriorSampling and `gaussian_diffusion.py`
// p_sample_loop; methods.md §8.1):
//
//   x_T ~ N(0, I);  for t = T−1 .. 0:
//     (μ, log σ², x̂0) = p_mean_variance(x_t, t)            x̂0 clipped, with autograd on
//     x'   = μ + [t > 0] exp(½ log σ²) z                     one DDPM ancestral step
//     x_{t−1} = x' − ζ ∇_{x_t} ‖y − A(x̂0)‖                  norm, not squared (the code's ζ_t = ζ/‖r‖)
//
// The gradient goes through the network (one backward pass per step, counted as a network
// gradient, methods.md §1.7).
//
// General form (likelihood=channel): ‖y − A(x̂0)‖ is the Gaussian case of
// ∇_{x_t} ℓ with ∇_z ℓ = r̂, the unit residual. For any channel we take the unit vector of the
// NLL's gradient in measurement space, u = ∇_z nll(z, y)/‖∇_z nll(z, y)‖ at z = A(x̂0), and step
// x_{t−1} = x' − ζ J_{x_t}(A ∘ x̂0)ᵀ u. For a Gaussian channel ∇_z nll = (z − y)/σ², so u is the
// unit residual and this is exactly the DPS code's step (whatever σ); for a sign channel u is the
// normalised probit score. [INFERRED generalisation; the paper's Poisson case weights the norm.]
// Linear form (likelihood=linear, the seed-001 baseline): the channel is ignored and y is taken
// as A x + Gaussian noise, i.e. u = (A(x̂0) − y)/‖A(x̂0) − y‖, DPS's own step.
//
// The norm is per item (the DPS code takes it over the whole batch; equal at batch 1, theirs).
//
// The `likelihood` option (channel | linear) is shared with the other baselines (solve/likelihood.h);
// DPS has no `sigma`: the step is scale-free, so the linear form runs at σ = 1. The report shows
// `timesteps` as the respacing the run uses (<steps> when unset).
#include <string>

#include "tweedie/core/options.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

// likelihood: channel (general form) | linear (seed 001's baseline)
struct DpsOptions : LikelihoodOptions {
  int64_t steps = 1000;         // DDPM steps = NFE; DPS configs: timestep_respacing 1000
  std::string timesteps;        // respacing of the base schedule; "" = space_timesteps(T, "<steps>")
  // The guidance step, option `zeta` (the DPS paper's ζ_i); in code `step_size`, because ζ is the
  // fresh-noise share everywhere else (hqs.h: Diff-OneBit, DiffPIR). Seed 001 App. E: 0.1 (DPS
  // configs 0.3–1.0 are "too large for CS").
  double step_size = 0.1;
  bool clip_denoised = true;    // DPS configs: clip_denoised True (x̂0 clamped before μ and the norm)

  std::string respacing() const { return timesteps.empty() ? std::to_string(steps) : timesteps; }
  static const SolverTable<DpsOptions>& table();
};

Result dps(const SolveContext& ctx, const DpsOptions& options);

}  // namespace tweedie::solve
