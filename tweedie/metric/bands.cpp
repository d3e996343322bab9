#include "tweedie/metric/bands.h"

#include <cmath>

#include "tweedie/core/error.h"

namespace tweedie::metric {

std::vector<double> band_errors(const torch::Tensor& estimate, const torch::Tensor& truth, int64_t bands) {
  require(bands >= 1, "band errors: need at least one band");
  require(estimate.sizes() == truth.sizes(), "band errors: estimate and truth differ in shape");
  require(truth.dim() == 2 || truth.dim() == 4, "band errors: expected signals [B, L] or images [B, C, H, W]");
  auto x = truth.detach().to(torch::kFloat64).cpu(), d = estimate.detach().to(torch::kFloat64).cpu() - x;
  torch::Tensor radius;  // normalised |ω| per frequency, shaped like the last (two) dimensions
  torch::Tensor Fx, Fd;
  if (truth.dim() == 2) {
    Fx = torch::fft::fft(x, c10::nullopt, -1, "ortho"), Fd = torch::fft::fft(d, c10::nullopt, -1, "ortho");
    radius = torch::fft::fftfreq(x.size(-1), torch::kFloat64).abs();
  } else {
    Fx = torch::fft::fft2(x, c10::nullopt, {-2, -1}, "ortho"), Fd = torch::fft::fft2(d, c10::nullopt, {-2, -1}, "ortho");
    auto fy = torch::fft::fftfreq(x.size(-2), torch::kFloat64).unsqueeze(1);
    auto fx = torch::fft::fftfreq(x.size(-1), torch::kFloat64).unsqueeze(0);
    radius = (fy.pow(2) + fx.pow(2)).sqrt();
  }
  radius = radius / radius.max().clamp_min(1e-300);
  auto band = (radius * double(bands)).floor().clamp_max(double(bands - 1)).to(torch::kLong);
  // energy per frequency summed over the batch (and channels)
  auto ex = Fx.abs().pow(2).flatten(0, Fx.dim() - radius.dim() - 1).sum(0);
  auto ed = Fd.abs().pow(2).flatten(0, Fd.dim() - radius.dim() - 1).sum(0);
  const double total = ex.sum().item<double>();
  require(total > 0, "band errors: the truth is zero");
  std::vector<double> out(bands);
  for (int64_t b = 0; b < bands; ++b) out[b] = std::sqrt(ed.masked_select(band == b).sum().item<double>() / total);
  return out;
}

}  // namespace tweedie::metric
