#pragma once
// DAPS: decoupled annealing posterior sampling. Zhang, Chu, Berner, Sun, Sun, Bouman, Yue,
// "Improving Diffusion Inverse Problem Solving with Decoupled Noise Annealing" (2024), as in the
// official code (DAPS@a9bed9f `sampler.py` DAPS.sample, `cores/mcmc.py`, `cores/scheduler.py`;
// methods.md §8.3), on the VE view x̃ = x_t/√ᾱ of the prior (methods.md §1.6):
//
//   σ_0 > ... > σ_{N−1}: the first N points of a Karras (ρ = 7) grid of N + 1 points from
//   σ_max to σ_min, and σ_N = 0;   x ~ N(0, σ_max² I)
//   for k = 0 .. N−1:
//     x̂0 = PF-ODE from σ_k to σ_ode: Euler on a Karras grid of ode_steps + 1 points,
//           x ← x + (s' − s)(x − D(x; s))/s                   (ode_steps NFE)
//     Langevin from x0 = x̂0, η_k = η0 (1 + k/(N+1) (δ − 1)):
//           x0 ← x0 + η_k (−∇L(x0; y) + (x̂0 − x0)/σ_k²) + √(2η_k) ξ     (langevin_steps times)
//     x ← x0 + σ_{k+1} ξ
//   return x  (= the last Langevin state, σ_N = 0)
//
// L(x; y) = −log p(y | A x): the problem's channel NLL (general form), or ‖y − A x‖²/(2σ²)
// (linear form, seed 001's baseline). The DAPS code uses ‖A x − y‖²/τ² with τ = 0.01 for pixel
// tasks, i.e. σ = τ/√2 ≈ 0.0071; that weight makes the Langevin step unstable for
// compressed-sensing matrices (η0 · 2‖A‖²/τ² ≫ 2 for A ~ N(0, 1/M), M/N = 1/2), so the linear
// form defaults to the channel's noise scale instead; sigma=0.00707 reproduces the code's weight.
// The prior term is DAPS's default "gaussian" prior solver: (x̂0 − x0)/σ_k².
#include <vector>

#include "tweedie/core/options.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

// Defaults: seed 001 App. E and the DAPS code's edm_daps.yaml; each field's help (the table in
// daps.cpp) and docs/solvers.md give its source. Two are ours, each with an option for the
// authors' form: clip_denoised (an ε-network's D at σ up to 100 carries offsets of σ × its ε
// bias) and sigma_map=schedule (σ → the fractional timestep on the network's own schedule; "vp"
// is the code's EDM VPPrecond map, off that schedule by up to 3 steps).
struct DapsOptions : LikelihoodOptions {
  int64_t annealing_steps = 200, ode_steps = 5, langevin_steps = 100;
  double lr = 1e-4, lr_min_ratio = 0.01;
  double sigma_max = 100, sigma_min = 0.1, ode_sigma_min = 0.01, rho = 7;
  bool clip_denoised = true;
  enum class SigmaMap { kSchedule, kVp };
  SigmaMap sigma_map = SigmaMap::kSchedule;

  static const SolverTable<DapsOptions>& table();
};

Result daps(const SolveContext& ctx, const DapsOptions& options);

}  // namespace tweedie::solve
