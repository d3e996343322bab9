#include "tweedie/metric/ssim.h"

#include <string>

#include "tweedie/core/error.h"

namespace tweedie::metric {

int64_t ssim_radius(const SsimOptions& options) {
  return static_cast<int64_t>(options.truncate * options.sigma + 0.5);  // scipy _gaussian_kernel1d
}

torch::Tensor ssim_map(const torch::Tensor& estimate, const torch::Tensor& reference,
                       const SsimOptions& options) {
  require(estimate.sizes() == reference.sizes(), "ssim: estimate and reference shapes differ");
  require(estimate.dim() == 4, "ssim: expected images [B, C, H, W]");
  require(estimate.numel() > 0, "ssim: empty batch");
  require(options.sigma > 0 && options.truncate > 0, "ssim: sigma and truncate must be positive");
  require(options.k1 >= 0 && options.k2 >= 0, "ssim: K1 and K2 must not be negative");
  require(options.range.hi > options.range.lo, "ssim: value range must have hi > lo");
  const int64_t r = ssim_radius(options), win = 2 * r + 1;
  const int64_t b = estimate.size(0), c = estimate.size(1), h = estimate.size(2), w = estimate.size(3);
  require(h >= win && w >= win, "ssim: images of " + std::to_string(h) + "x" + std::to_string(w) +
                                    " are smaller than the " + std::to_string(win) + "x" +
                                    std::to_string(win) + " window");

  const double span = options.range.hi - options.range.lo;
  auto unit = [&](const torch::Tensor& t) {  // x01 = (x − lo) / (hi − lo)
    return ((t.to(torch::kFloat64) - options.range.lo) / span).reshape({b * c, 1, h, w});
  };
  torch::Tensor x = unit(estimate), y = unit(reference);

  // Normalised Gaussian g_k ∝ exp(−k² / 2σ²), k = −r..r (scipy's _gaussian_kernel1d).
  auto opts = torch::TensorOptions().dtype(torch::kFloat64).device(x.device());
  torch::Tensor k = torch::exp(-0.5 * (torch::arange(-r, r + 1, opts) / options.sigma).pow(2));
  k = k / k.sum();
  // μ = g ∗ x for the five images at once, separably and valid-only: exactly the region
  // skimage keeps after cropping `r` pixels from its reflect-padded filter output.
  torch::Tensor stack = torch::cat({x, y, x * x, y * y, x * y}, 1);  // [BC, 5, H, W]
  namespace F = torch::nn::functional;
  auto grouped = F::Conv2dFuncOptions().groups(5);
  torch::Tensor m = F::conv2d(stack, k.view({1, 1, win, 1}).repeat({5, 1, 1, 1}), grouped);
  m = F::conv2d(m, k.view({1, 1, 1, win}).repeat({5, 1, 1, 1}), grouped);
  torch::Tensor ux = m.select(1, 0), uy = m.select(1, 1);
  torch::Tensor vx = m.select(1, 2) - ux * ux;   // σx² = E[x²] − μx² (population)
  torch::Tensor vy = m.select(1, 3) - uy * uy;   // σy²
  torch::Tensor vxy = m.select(1, 4) - ux * uy;  // σxy

  const double c1 = options.k1 * options.k1, c2 = options.k2 * options.k2;  // (K L)², L = 1
  // SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))
  torch::Tensor s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
  return s.view({b, c, h - 2 * r, w - 2 * r});
}

torch::Tensor ssim(const torch::Tensor& estimate, const torch::Tensor& reference,
                   const SsimOptions& options) {
  // Mean over the valid region per channel, then over channels (skimage's channel_axis loop).
  return ssim_map(estimate, reference, options).mean({2, 3}).mean(1);
}

}  // namespace tweedie::metric
