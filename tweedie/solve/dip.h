#pragma once
// Deep Image Prior: Ulyanov, Vedaldi, Lempitsky, "Deep Image Prior" (CVPR 2018), the baseline of
// seed 004. An untrained U-Net D_θ maps one fixed random input z to the estimate and is fitted to
// the measurements:
//
//   z ~ U(0, 1)·input_scale  [1, input_channels, H, W], fixed;  θ ~ init (N(0, 0.02²))
//   repeat iters times:  z' = z + input_noise·ε (ε ~ N(0, I), DIP's reg_noise_std; 0: z' = z)
//                        x* = D_θ(z');  θ ← Adam(θ, ∇_θ L(A x*, y))
//   return x*   (early stopping: stop when L has not improved by a relative `tol` in `patience` steps)
//
// It uses the same network family, loss and scale normalisation as self-diffusion
// (untrained_unet.h), so the two differ only in the input: fixed for DIP, re-noised on a
// decreasing schedule for self-diffusion.
#include "tweedie/core/options.h"
#include "tweedie/solve/solver.h"
#include "tweedie/solve/untrained_unet.h"

namespace tweedie::solve {

// The base: the U-Net, Adam, scale normalisation and loss of self-diffusion.
struct DipOptions : UntrainedNetOptions {
  int64_t iters = 4000;        // self-diffusion's T·K at its defaults (40 × 100): equal budgets [INFERRED]
  int64_t input_channels = 32; // DIP paper: 32-channel noise input
  double input_scale = 0.1;    // DIP paper: U(0, 1/10)
  double input_noise = 0;      // DIP's reg_noise_std (1/30 in its inpainting runs); 0 = off
  int64_t patience = 0;        // early stopping: steps without a relative improvement of `tol` (0 = off)
  double tol = 1e-3;
  int64_t report_every = 100;  // steps per progress report

  static const SolverTable<DipOptions>& table();
};

Result dip(const SolveContext& ctx, const DipOptions& options);

}  // namespace tweedie::solve
