#pragma once
// Diff-OneBit: 1-bit (and any known-likelihood) recovery by half-quadratic splitting with a
// diffusion prior. Chen & Liu, "Diffusion Model Based Signal Recovery Under 1-Bit
// Quantization" (seed 001): Algorithm 1 (deterministic) and Algorithm 2 (stochasticity ζ).
//
// Each outer step spends one NFE on the prior (z-subproblem = Tweedie denoising, eq. 27) and
// solves the x-subproblem (eq. 26)
//     x̂ = argmin_x L(x; y) + (μ_k/2) ‖x − z̃‖²,   μ_k = λ ᾱ_k/(1 − ᾱ_k),
// with Adam, where L(x; y) = −log p(y | A x) is the problem's channel NLL: the probit
// surrogate (eq. 24) for sign measurements, the logistic NLL (eq. 32), and with a random-mask
// operator the 1-bit inpainting of Appendix A. Defaults are seed 001's (Appendix E).
//
// The report shows `timesteps` as the respacing the run uses (ddim<steps> when unset).
#include <string>

#include "tweedie/core/options.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

// Defaults are seed 001's (Table I, App. E); each field's meaning and source is its help in the
// table (diff_onebit.cpp), which `tweedie solve --list` prints.
struct DiffOneBitOptions {
  int64_t steps = 20, inner_steps = 100;
  double lambda = 0.02, zeta = 0.0, lr = 0.25;
  bool clip_denoised = true;
  std::string timesteps, eps = "corrected";  // timesteps "": respacing() = "ddim<steps>"

  std::string respacing() const { return timesteps.empty() ? "ddim" + std::to_string(steps) : timesteps; }
  static const SolverTable<DiffOneBitOptions>& table();
};

Result diff_onebit(const SolveContext& ctx, const DiffOneBitOptions& options);

}  // namespace tweedie::solve
