#include "tweedie/metric/psnr.h"

#include <cmath>

#include "tweedie/core/error.h"

namespace tweedie::metric {

torch::Tensor mse(const torch::Tensor& estimate, const torch::Tensor& reference) {
  require(estimate.sizes() == reference.sizes(), "metric: estimate and reference shapes differ");
  require(estimate.dim() >= 1 && estimate.size(0) > 0, "metric: empty batch");
  auto d = (estimate.to(torch::kFloat64) - reference.to(torch::kFloat64)).flatten(1);
  return d.pow(2).mean(1);
}

torch::Tensor psnr(const torch::Tensor& estimate, const torch::Tensor& reference, double data_range) {
  // PSNR = 10 log10(R² / MSE)
  return 10.0 * torch::log10(data_range * data_range / mse(estimate, reference));
}

torch::Tensor gaussian_filter(const torch::Tensor& images, double std) {
  require(images.dim() == 4, "gaussian_filter: expected [B, C, H, W]");
  if (std <= 0) return images;
  int64_t radius = static_cast<int64_t>(std::ceil(3.0 * std));
  auto x = torch::arange(-radius, radius + 1, images.options().dtype(torch::kFloat64));
  auto k = torch::exp(-0.5 * (x / std).pow(2));
  k = (k / k.sum()).to(images.dtype());
  int64_t c = images.size(1);
  auto kh = k.view({1, 1, -1, 1}).repeat({c, 1, 1, 1});
  auto kw = k.view({1, 1, 1, -1}).repeat({c, 1, 1, 1});
  namespace F = torch::nn::functional;
  auto pad = F::pad(images, F::PadFuncOptions({radius, radius, radius, radius}).mode(torch::kReflect));
  auto y = F::conv2d(pad, kh, F::Conv2dFuncOptions().groups(c));
  return F::conv2d(y, kw, F::Conv2dFuncOptions().groups(c));
}

}  // namespace tweedie::metric
