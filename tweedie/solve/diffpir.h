#pragma once
// DiffPIR: plug-and-play restoration with a diffusion denoiser. Zhu, Zhang, Liang, Cao, Wen,
// Timofte, Van Gool, "Denoising Diffusion Models for Plug-and-Play Image Restoration" (CVPRW
// 2023), as in the official code (yuanzhi-zhu/DiffPIR, main_ddpir_deblur.py; methods.md §8.2):
//
//   x_T ~ N(0, I);  for the K timesteps t_0 = T−1 > ... > t_{K−1} = 0 ("quad" spacing):
//     x̂0  = clip(x̂0(x_t))                                    Tweedie, 1 NFE
//     x̂0' = argmin_x L(x; y) + (μ_t/2)‖x − x̂0‖²               data step (not at the last step)
//     ε̂   = (x_t − √ᾱ_t x̂0')/√(1 − ᾱ_t)
//     x_{t'} = √ᾱ_{t'} x̂0' + √(1−ᾱ_{t'}) (√(1−ζ) ε̂ + √ζ z)
//   return x̂0 at t = 0.
// Two options reproduce the official scripts where they differ from Algorithm 1: start=y (x_T
// from the noised measurement) and output=state (return x_{t=0}, not its x̂0); see the fields.
//
// μ_t: the code's data step argmin ‖y − H x‖² + ρ_t‖x − x̂0‖², ρ_t = λσ_n²/ρ̄_t², runs on
// [0, 1] images with σ_n on that scale. On our [−1, 1] images with L = −log p(y | x) (for a
// Gaussian channel ‖y − A x‖²/(2σ²), σ = 2σ_n) the same minimiser has μ_t = λ/(4 ρ̄_t²) =
// λ ᾱ_t/(4(1 − ᾱ_t)). The general form puts the problem's channel NLL in L; the linear form
// (seed 001's baseline) a Gaussian of std σ around A x.
//
// The data step is solved by Adam (seed 001 App. E: "50 optimisation steps, learning rate 0.1",
// the nonlinear/dense-A substitute for DiffPIR's FFT closed form), or, for the linear form, by
// conjugate gradients on (AᵀA/σ² + μ I) x = Aᵀy/σ² + μ x̂0 (DiffPIR's analytic solution).
//
// The report shows `timesteps` as "quad" when unset; timesteps=quad is the same run.
#include <string>
#include <vector>

#include "tweedie/core/options.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

// likelihood: channel (general form) | linear (seed 001's baseline), sigma
struct DiffPirOptions : LikelihoodOptions {
  int64_t steps = 100;          // NFE; seed 001 Table I (DiffPIR 100); DiffPIR iter_num 100 (deblur, SR)
  std::string timesteps;        // "" (or "quad") = DiffPIR's skip_type "quad"; else a respacing of the base schedule
  double lambda = 7.0;          // λ; seed 001 App. E: 7 (also the DiffPIR deblur script's sweep value)
  // ζ: noise weight of the re-noising step. Seed 001 App. E sets "the DDIM hyperparameter η = 1.0";
  // read as DiffPIR's ζ (the paper's η-like weight: 0 = DDIM, 1 = fresh noise). [INFERRED]
  // The code's separate `eta` (0 in every config) is not implemented.
  double zeta = 1.0;
  std::string eps = "corrected";  // corrected (DiffPIR) | denoiser | rescaled (ablations; hqs.h)
  enum class Prox { kAdam, kCg };  // Adam (seed 001 App. E) | CG (linear form only; DiffPIR's closed form)
  Prox prox = Prox::kAdam;
  int64_t inner_steps = 50;     // Adam or CG iterations per data step (seed 001 App. E: 50)
  double lr = 0.1;              // Adam learning rate (seed 001 App. E)
  bool clip_denoised = true;    // DiffPIR uses p_sample's clipped pred_xstart
  // x_T: noise = N(0, I) (the paper's Algorithm 1) | y = the code's start from the measurement
  // (main_ddpir_*.py): x_T = c ỹ + √(1 − ᾱ_T − c²(1 − ᾱ_{t_y})) z, c = √ᾱ_T/√ᾱ_{t_y}, t_y the base
  // step whose ρ̄ is nearest σ; ỹ = y when y has the image's shape, for a mask operator the kept
  // pixels with the missing ones black (Aᵀy − (1 − AᵀA1): the script's zero-filled [0, 1] image)
  enum class Start { kNoise, kY };
  Start start = Start::kNoise;
  // returned image: denoised = the last step's Tweedie x̂0 (ours; Algorithm 1's x_0) | state = the
  // last state x_{t_0} that step denoised (the code's output x_0 = x/2 + 0.5; its `x = x0` is
  // commented out), which keeps √(1 − ᾱ_0) = 0.01 of noise
  enum class Output { kDenoised, kState };
  Output output = Output::kDenoised;

  std::string spacing() const { return timesteps.empty() ? "quad" : timesteps; }
  static const SolverTable<DiffPirOptions>& table();
};

Result diffpir(const SolveContext& ctx, const DiffPirOptions& options);

// DiffPIR's "quad" timesteps, decreasing: t_j = T − 1 − seq_j with
// seq_j = int(√(j T²/(K − 1))), the last one lowered by 1 (so t_0 = T − 1 and t_{K−1} = 0).
std::vector<int64_t> diffpir_quad_timesteps(int64_t T, int64_t K);

}  // namespace tweedie::solve
