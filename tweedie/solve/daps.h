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

// likelihood: channel (general form) | linear (seed 001's baseline), sigma
struct DapsOptions : LikelihoodOptions {
  int64_t annealing_steps = 200;  // N (DAPS-1K: edm_daps.yaml num_steps; seed 001 App. E)
  int64_t ode_steps = 5;          // Euler PF-ODE steps per level (edm_daps.yaml; seed 001 App. E)
  int64_t langevin_steps = 100;   // Langevin iterations per level (DAPS pixel configs; seed 001 App. E)
  double lr = 1e-4;               // η0 (seed 001 App. E; DAPS SR / blur / random-inpainting configs)
  double lr_min_ratio = 0.01;     // δ: the step decays linearly to δ η0 (seed 001 App. E; DAPS lr_min_ratio)
  double sigma_max = 100;         // annealing σ range (edm_daps.yaml)
  double sigma_min = 0.1;
  double ode_sigma_min = 0.01;    // where each PF-ODE stops (edm_daps.yaml diffusion_scheduler sigma_min)
  double rho = 7;                 // Karras grid exponent ("poly-7")
  // Clamp D(x; σ) to [−1, 1] in the PF-ODE [INFERRED; DAPS does not]: as for QCS-SGM
  // (qcs_sgm.h), an ε-network's D at σ up to 100 carries offsets of σ × its ε bias.
  bool clip_denoised = true;
  // How D(x; σ) picks the network's timestep: "schedule" = the fractional t whose log σ the
  // network's own discrete schedule interpolates (EpsDenoiser::denoise, k-diffusion's
  // sigma_to_t); "vp" = the DAPS code's model wrapper (EDM VPPrecond: (M − 1)·t_VP(σ) of the
  // continuous VP limit, diffusion::vp_sigma_to_t), which is off the network's schedule by up
  // to about 3 steps. Ours is the default: it is exact for the schedule the network was trained on.
  std::string sigma_map = "schedule";

  static const OptionTable<DapsOptions>& table();
};

Result daps(const SolveContext& ctx, const DapsOptions& options);

}  // namespace tweedie::solve
