#pragma once
// Single-coil MRI: y = S F_c x, with F_c the centred orthonormal 2-D FFT
//   F_c(x) = fftshift(fft2(ifftshift(x), norm = ortho))
// and S keeping the sampled phase-encode lines (columns). y is complex [B, C, H, L] with L the
// number of kept columns; Aᵀy = Re(F_cᴴ Sᵀ y) (zero-filled reconstruction). AAᴴ = I.
//
// Line masks follow fastMRI's subsample.py (the "4×/8× with centre fraction" convention):
// num_low = round(W·cf) fully sampled central columns starting at (W − num_low + 1) // 2, then
//   random      every other column kept with probability (W/R − num_low)/(W − num_low);
//   equispaced  columns round(offset + j·a), a = R(num_low − W)/(num_low·R − W),
//               offset ~ randint(0, round(a)).
#include <memory>
#include <optional>

#include "tweedie/op/operator.h"

namespace tweedie::op {

struct MriOptions {
  int64_t acceleration = 4;             // R; fastMRI reports 4× and 8×
  std::optional<double> center_fraction;  // default 0.32/R: fastMRI's pairs (0.08, 4×), (0.04, 8×)
  bool equispaced = false;              // default: random lines
  uint64_t seed = 0;
};

// The kept columns (sorted int64 indices) of a W-column k-space.
torch::Tensor mri_columns(int64_t W, const MriOptions& o);
std::shared_ptr<Operator> make_mri(Shape in, const MriOptions& o);

// Centred orthonormal 2-D FFT over the last two dimensions and its inverse (= adjoint).
torch::Tensor fft2c(const torch::Tensor& x);
torch::Tensor ifft2c(const torch::Tensor& k);

}  // namespace tweedie::op
