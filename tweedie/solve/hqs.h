#pragma once
// The re-noising half-quadratic-splitting (HQS) loop that Diff-OneBit (seed 001, Algorithms 1
// and 2) and DiffPIR (Zhu et al., CVPRW 2023, Algorithm 1) share; each solver file supplies only
// its penalty μ_k and its data-step solver. From x_{t_{K−1}} ~ N(0, I), for k = K−1, ..., 0:
//
//     x̂0  = clip(x̂0(x_t))                                     Tweedie, 1 NFE  (z-subproblem)
//     x̂0' = argmin_x L(x; y) + (μ_k/2)‖x − x̂0‖²                data step       (x-subproblem)
//     ε̂   = (x_t − √ᾱ_t x̂0')/√(1 − ᾱ_t)                        (eps = corrected: the papers')
//       or  (x_t − √ᾱ_t x̂0)/√(1 − ᾱ_t)                            (eps = denoiser: DDIM's own ε̂)
//       or  the first, scaled to unit RMS per item                 (eps = rescaled)
//     x_{t'} = √ᾱ_{t'} x̂0' + √(1 − ᾱ_{t'}) (√(1 − ζ) ε̂ + √ζ z),   z ~ N(0, I) drawn only when ζ > 0
//
// and returns x̂0' of the last step (k = 0, where ᾱ_{t'} = 1), or with return_state the state x_{t_0}
// that step denoised. The two methods differ in μ_k, the
// data-step solver and one detail: Diff-OneBit solves the data step at the last step too
// (Algorithm 1 line 4 at t_1), DiffPIR returns the plain Tweedie estimate there.
#include <functional>
#include <string>
#include <vector>

#include "tweedie/diffusion/schedule.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

struct HqsLoop {
  const char* solver;                // names the solver in errors
  const diffusion::Schedule& schedule;
  const op::Operator& op;            // estimates have its input shape; the monitor's misfit
  double zeta = 0;                   // ζ in [0, 1]: fresh-noise share of the re-noising
  bool clip_denoised = true;         // clamp the Tweedie estimate to [−1, 1]
  bool data_step_at_last = true;     // solve the data step at k = 0 as well
  // ε̂ of the re-noising (ablations for docs/results.md, issue 13; the papers use kCorrected).
  // kCorrected: from the data-corrected x̂0', so the correction x̂0' − x̂0 re-enters x_{t'}
  // through ε̂ with weight −√(1 − ᾱ_{t'}) √ᾱ_t/√(1 − ᾱ_t). kDenoiser: from the denoiser's x̂0,
  // so it enters only through √ᾱ_{t'} x̂0' (as DDS, Chung et al. 2024, does). kRescaled: the
  // corrected ε̂ scaled to the unit RMS a noise sample has, keeping x_{t'} at its noise level.
  enum class Eps { kCorrected, kDenoiser, kRescaled };
  Eps eps = Eps::kCorrected;
  std::function<double(double alpha_bar)> mu;  // μ_k from ᾱ_{t_k}
  // x̂0' for x̂0 and μ; the solver counts its own likelihood gradients
  std::function<torch::Tensor(const torch::Tensor& x0, double mu)> data_step;
  // x_{t_{K−1}} from the N(0, I) draw z (unset: z itself); DiffPIR's start=y
  std::function<torch::Tensor(const torch::Tensor& z)> start;
  // return the last state x_{t_0} (the input of the last denoising, as DiffPIR's code does)
  // instead of the last step's x̂0'
  bool return_state = false;
};

// "corrected" | "denoiser" | "rescaled" (the solvers' `eps` option)
HqsLoop::Eps hqs_eps(const std::string& name);
inline const std::vector<std::string>& hqs_eps_names() {
  static const std::vector<std::string> names{"corrected", "denoiser", "rescaled"};
  return names;
}

// Runs the loop on ctx (prior, monitor, generator) with estimates of loop.op's input shape;
// fills estimate, steps and stopped_early of `result`. The caller finishes the cost.
void hqs_loop(const SolveContext& ctx, const HqsLoop& loop, const CostMeter& meter, Result& result);

}  // namespace tweedie::solve
