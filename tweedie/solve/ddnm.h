#pragma once
// DDNM+: denoising diffusion null-space model for noisy measurements. Wang, Yu, Zhang,
// "Zero-Shot Image Restoration Using Denoising Diffusion Null-Space Model" (ICLR 2023), as in the
// official code (wyhuai/DDNM; methods.md §8.6), without time travel. Two paths, as in the code:
//
// path=simplified (default; guided_diffusion/diffusion.py `simplified_ddnm_plus`, the README's
// "DDNM+ for any linear degradation"), with scalar weights and the code's quirks kept:
//   x_T ~ N(0, I);  for (t, t') on the uniform grid, t' = −1 (ᾱ = 1) last:
//     ε̂ = ε_θ(x_t, t),  x̂0 = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t                         Eq. (12), no clip
//     σ_t = √(1 − ᾱ_{t'}²)                               the code squares ᾱ (the paper: √(1 − ᾱ))
//     σ_t ≥ ᾱ_{t'} σ_y: λ = 1, γ = √(σ_t² − (ᾱ_{t'} σ_y)²);  else λ = σ_t/(ᾱ_{t'} σ_y), γ = 0   Eq. (19)
//     x̂0' = x̂0 − λ A⁺(A x̂0 − y)                                                Eq. (17)
//     x_{t'} = √ᾱ_{t'} x̂0' + γ √(1−ᾱ_{t'}) (η z + √(1−η²) ε̂)      γ scales an already scaled term
//
// path=svd (functions/svd_ddnm.py `ddnm_plus_diffusion`, svd_operators.py `Lambda`/`Lambda_noise`),
// per spectral coordinate i of A = U diag(s) Vᵀ, with a = √ᾱ_{t'} and σ_t = √(1 − ᾱ_{t'}):
//     x̂0' = x̂0 − V Λ Vᵀ A⁺(A x̂0 − y),  λ_i = 1 if σ_t ≥ a σ_y/s_i, else s_i σ_t √(1−η²)/(a σ_y)
//     x_{t'} = a x̂0' + V(d1 ⊙ z + d2 ⊙ Vᵀε̂)                                    Eq. (51)
//         σ_t < a σ_y/s_i: d1 = η σ_t, d2 = 0;  σ_t > a σ_y/s_i: d1 = √(σ_t² − a²σ_y²/s_i²), d2 = 0;
//         s_i = 0, σ_y = 0 or equality: d1 = η σ_t, d2 = √(1−η²) σ_t (plain DDNM)
//   With σ_y > 0 every step of this path is DDRM's step with η_B = 1 (test: Ddnm.SvdPathIsDdrm);
//   only the start differs (x_T ~ N(0, I) here, DDRM's y-informed draw there). The code applies
//   its operator's V to ε̂ without Vᵀ for some operators (SR, Walsh–Hadamard); we use
//   V(d2 ⊙ Vᵀε̂), which is ε̂ itself wherever d2 is constant, as for its inpainting operator.
//
// Random numbers (`draws`, path=svd only): tweedie draws z in spectral coordinates; the code draws
// z over the image and uses Vᵀz (the same law). draws=authors does what the code does, so that
// noise recorded from it replays (tests/parity/ddnm_parity_test.cpp).
//
// Both return x_{−1} (= x̂0' of the last step) and cost one NFE per step. A⁺ comes from the
// operator's SVD view: A⁺v = V(Uᵀv / s) on the observed coordinates.
#include <string>

#include "tweedie/core/options.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/solver.h"
#include "tweedie/solve/spectral.h"

namespace tweedie::solve {

struct DdnmOptions {
  int64_t steps = 100;   // T_sampling = NFE (DDNM configs: 100; seed 001 Table IV: 20)
  double eta = 0.85;     // η; DDNM README, seed 001 App. E
  double sigma = kChannelSigma;  // σ_y of y = A x + σ_y n (likelihood.h resolve_sigma; 0 = noiseless)
  enum class Path { kSimplified, kSvd };  // the README's DDNM+ | per singular value
  Path path = Path::kSimplified;
  NoiseDraws draws = NoiseDraws::kTweedie;  // path=svd noise: z in spectral coordinates | authors (Vᵀz)

  static const SolverTable<DdnmOptions>& table();
};

Result ddnm(const SolveContext& ctx, const DdnmOptions& options);

}  // namespace tweedie::solve
