#pragma once
// DDRM: denoising diffusion restoration models. Kawar, Elad, Ermon, Song, "Denoising Diffusion
// Restoration Models" (NeurIPS 2022), Eqs. (7)–(8) as in the official code's
// `efficient_generalized_steps` (bahjat-kawar/ddrm, functions/denoising.py; methods.md §8.5).
//
// For y = A x + σ₀ n with A = U diag(s) Vᵀ, in spectral coordinates x̄ = Vᵀ(x_t/√ᾱ_t) and VE
// noise levels σ_t = √((1 − ᾱ_t)/ᾱ_t), over the uniform grid t_K > ... > t_1 (t_0 = −1, ᾱ = 1):
//
//   init  x̄_i = (Uᵀy)_i/s_i + √(σ_K² − σ₀²/s_i²) z_i   where s_i σ_K > σ₀
//         x̄_i = σ_K z_i                                 elsewhere;   x_{t_K} = V(x̄/σ_K)
//   step  ε̂ = ε_θ(x_t, t), x̂0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t (no clip), v̄ = Vᵀx̂0, σ' = σ_{t'}:
//     s_i = 0 (missing)   v̄_i + √(1 − η²) σ' (Vᵀε̂)_i + η σ' z_i
//     s_i σ' < σ₀         v̄_i + √(1 − η²) σ' ((Uᵀy)_i − s_i v̄_i)/σ₀ + η σ' z_i
//     s_i σ' > σ₀         η_B (Uᵀy)_i/s_i + (1 − η_B) v̄_i + √(σ'² − η_B² σ₀²/s_i²) z_i
//     x_{t'} = √ᾱ_{t'} V(x̄')
//   return x_{t_0} (= x̂0 of the last step).
//
// One NFE per step. The code's η_A and η_C are one η here (its CLI sets both from --eta).
//
// Random numbers (`draws`): tweedie draws one z [B, N] per step for every coordinate; the code
// draws three per step, z_missing [B, N], then [B, #after] for the s_i σ' < σ₀ coordinates, then
// [B, M] read at the s_i σ' > σ₀ ones (the same law). draws=authors consumes them in the code's
// order, so that noise recorded from the code replays (tests/parity/ddrm_parity_test.cpp).
#include <string>

#include "tweedie/core/options.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/solver.h"
#include "tweedie/solve/spectral.h"

namespace tweedie::solve {

struct DdrmOptions {
  int64_t steps = 20;    // K = NFE; DDRM README and seed 001 Table IV (--timesteps 20)
  double eta = 0.85;     // η (= η_A = η_C); DDRM README, seed 001 App. E
  double eta_b = 1.0;    // η_B; DDRM README, seed 001 App. E
  double sigma = kChannelSigma;  // σ₀ of y = A x + σ₀ n (likelihood.h resolve_sigma; 0 = noiseless)
  NoiseDraws draws = NoiseDraws::kTweedie;  // tweedie: one z per coordinate | authors: the code's three draws

  static const SolverTable<DdrmOptions>& table();
};

Result ddrm(const SolveContext& ctx, const DdrmOptions& options);

}  // namespace tweedie::solve
