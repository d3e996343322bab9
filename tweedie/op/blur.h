#pragma once
// Blur: y = k ⋆ x per channel (cross-correlation with a 2-D kernel k, as DPS's depthwise
// Conv2d; identical to convolution for the symmetric Gaussian kernel), "same" size output.
// Boundaries:
//   circular  x is periodic: y = F⁻¹(F x · F k̃) with k̃ the kernel wrapped onto H×W; Aᵀ uses conj(F k̃).
//   zero      x is zero outside the image: conv2d with zero padding; Aᵀ is conv_transpose2d.
// (DPS itself pads by reflection, which is not a linear map with a simple adjoint.)
// Separable kernels (Gaussian) get an SVD from the two 1-D blur matrices, either boundary.
#include <memory>
#include <optional>

#include "tweedie/op/operator.h"

namespace tweedie::op {

enum class Boundary { kCircular, kZero };

// DPS util/img_utils.py Blurkernel: a centred impulse filtered by scipy gaussian_filter
// (truncate 4.0), so only the central 2⌊4·std + 0.5⌋ + 1 taps of the `size` are non-zero.
struct GaussianBlurOptions {
  int64_t size = 61;   // DPS/DAPS/DiffPIR kernel_size
  double std = 3.0;    // DPS/DAPS intensity 3.0
  Boundary boundary = Boundary::kCircular;
};

// A seeded random camera-shake trajectory, after LeviBorodenko/motionblur (used by DPS, DAPS,
// RED-diff): path length, step lengths Beta(1, 30), angles with Beta(2, 20) jitter and a
// triangular distribution, all scaled by `intensity`; drawn on a 2× canvas, blurred by a
// Gaussian of std 0.01·diagonal, box-downsampled and normalised to sum 1. The rasteriser is
// ours (no PIL), so kernels follow the same distribution but not the same pixels.
struct MotionBlurOptions {
  int64_t size = 61;        // DPS/DAPS kernel_size
  double intensity = 0.5;   // DPS/DAPS intensity 0.5
  Boundary boundary = Boundary::kCircular;
  uint64_t seed = 0;
};

// 1-D Gaussian taps [size] (normalised), its outer product is the 2-D kernel.
torch::Tensor gaussian_taps(int64_t size, double std);
torch::Tensor motion_kernel(int64_t size, double intensity, uint64_t seed);  // [size, size], sum 1

std::shared_ptr<Operator> make_gaussian_blur(Shape in, const GaussianBlurOptions& o);
std::shared_ptr<Operator> make_motion_blur(Shape in, const MotionBlurOptions& o);
// Any kernel [kh, kw] (odd sizes); `taps` (1-D, kernel = outer(taps, taps)) enables the SVD.
std::shared_ptr<Operator> make_blur(Shape in, const torch::Tensor& kernel, Boundary boundary, std::string spec,
                                    std::optional<torch::Tensor> taps = std::nullopt);

}  // namespace tweedie::op
