#pragma once
// Error by frequency band: how much of each spatial-frequency range an estimate has recovered.
// Seed 004 (self-diffusion, Fig. 3) shows the coarse-to-fine progression this way: low bands
// converge at the first (noisiest) levels, high bands last.
//
//   e_b = ‖F(x̂ − x)‖_{band b} / ‖F x‖      (so Σ_b e_b² = ‖x̂ − x‖² / ‖x‖²)
//
// The denominator is the truth's whole norm, not its energy in the band: a band where the truth
// is empty (a sparse spectrum) still shows how much spurious content the estimate puts there.
// F is the orthonormal DFT over the last dimension (1-D signals [B, L]) or the last two (images
// [B, C, H, W]); band b holds the frequencies with normalised radius |ω|/|ω|_max in
// [b/n, (b+1)/n) (the last band closed), |ω| = √(f_x² + f_y²) with f in cycles per sample.
#include <torch/torch.h>

#include <vector>

namespace tweedie::metric {

// [bands] errors e_b over the whole batch.
std::vector<double> band_errors(const torch::Tensor& estimate, const torch::Tensor& truth, int64_t bands);

}  // namespace tweedie::metric
