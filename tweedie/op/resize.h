#pragma once
// Super-resolution: y = Wh X Wwᵀ per channel, a separable downsampling by an integer factor k
// (H and W must be multiples of k). The SVD comes from the two small 1-D matrices.
#include <memory>

#include "tweedie/op/operator.h"

namespace tweedie::op {

enum class ResizeKernel {
  kAverage,  // k×k block mean (DDRM `sr4`, DDNM `sr_averagepooling`); Aᵀ replicates / k²
  kBicubic,  // antialiased Keys cubic (a = −0.5), 4k taps, mirrored borders (DPS util/resizer.py)
};

struct ResizeOptions {
  int64_t factor = 4;  // ×4 in DPS, DDRM, DDNM, DAPS
  ResizeKernel kernel = ResizeKernel::kBicubic;
};

std::shared_ptr<Operator> make_resize(Shape in, const ResizeOptions& o);

// The 1-D downsampling matrix [L / k, L] of either kernel (float64).
torch::Tensor resize_matrix(int64_t L, int64_t k, ResizeKernel kernel);

}  // namespace tweedie::op
