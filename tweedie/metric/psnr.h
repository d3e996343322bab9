#pragma once
// Image-quality metrics, per item: tensors [B, ...] -> [B] float64.
#include <torch/torch.h>

namespace tweedie::metric {

// Peak signal-to-noise ratio 10 log10(range² / MSE); images in [-1, 1] have range 2.
torch::Tensor psnr(const torch::Tensor& estimate, const torch::Tensor& reference, double data_range = 2.0);

// Mean squared error per item.
torch::Tensor mse(const torch::Tensor& estimate, const torch::Tensor& reference);

// Gaussian blur with standard deviation `std` pixels (kernel radius ceil(3 std)), reflect
// padding, per channel; [B, C, H, W].
torch::Tensor gaussian_filter(const torch::Tensor& images, double std);

}  // namespace tweedie::metric
