#pragma once
// Self-diffusion: Luo, Huang, Yang, "Self-diffusion for Solving Inverse Problems" (NeurIPS 2025,
// arXiv 2510.21417; seed 004), as coded in the official `sdi.py:SDI_Base.train` (methods.md §7.1):
//
//   x̂ ~ N(0, I);  θ ~ init (N(0, 0.02²));  one Adam(θ, lr) for the whole run
//   β_i = linspace(β_start, β_end, T);  σ_t = √(1 − ∏_{i≤t} (1 − β_i))
//   for idx = 0 … T−1 (t = T−1−idx, noise decreasing):
//       x_t = x̂ + σ_t ε,  ε ~ N(0, I) drawn once per level (resample=false: one ε for all levels)
//       K times:  x* = D_θ(x_t);  θ ← Adam(θ, ∇_θ L(A x*, y))
//       x̂ = x*  (the last forward, i.e. θ before the final update)
//   return x̂
//
// No pretrained prior: an untrained U-Net (untrained_unet.h) is fitted to the measurements while
// its input is re-noised on a decreasing schedule, which lets the network's spectral bias act
// coarse to fine. The loss is the data misfit (mse, or the MRI code's unsquared norm) plus
// optional TV and Fourier-L1 terms; complex measurements (MRI k-space) are fitted through their
// real and imaginary parts. Each item of the batch gets its own network.
#include <vector>

#include "tweedie/core/options.h"
#include "tweedie/solve/solver.h"
#include "tweedie/solve/untrained_unet.h"

namespace tweedie::solve {

// The base: U-Net, Adam lr 1e-3, scale normalisation, loss.
struct SelfDiffusionOptions : UntrainedNetOptions {
  int64_t steps = 40;         // T (methods.md §7.5: code default 40)
  int64_t iters = 100;        // K optimiser steps per level (code default 100; low-level tasks 150)
  double beta_start = 1e-4;   // β schedule, increasing (code default 1e-4 → 2e-2)
  double beta_end = 2e-2;
  bool resample = true;       // fresh ε at every level (false: the seed's "w/o ε_t" ablation)

  static const SolverTable<SelfDiffusionOptions>& table();
};

// σ of each level in the order they run (idx = 0 … T−1, decreasing).
std::vector<double> self_diffusion_sigmas(int64_t steps, double beta_start, double beta_end);

Result self_diffusion(const SolveContext& ctx, const SelfDiffusionOptions& options);

}  // namespace tweedie::solve
