#include "tweedie/diffusion/edm.h"

#include <algorithm>
#include <cmath>

#include "tweedie/core/error.h"
#include "tweedie/core/registry.h"
#include "tweedie/core/runtime.h"

namespace tweedie::diffusion {

std::vector<double> karras_sigmas(double sigma_max, double sigma_min, int64_t n, double rho) {
  std::vector<double> s;
  const double a = std::pow(sigma_max, 1 / rho), b = std::pow(sigma_min, 1 / rho);
  for (int64_t i = 0; i < n; ++i) {
    const double r = n == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(n - 1);
    s.push_back(std::pow(a + r * (b - a), rho));
  }
  return s;
}

nlohmann::json EdmOptions::to_json() const {
  return {{"steps", steps}, {"sigma_max", sigma_max}, {"sigma_min", sigma_min}, {"rho", rho},
          {"clip_denoised", clip_denoised}, {"eta", eta}};
}

void EdmOptions::validate(const std::string& what) const {
  require(steps >= 1, what + ": steps must be at least 1, got " + std::to_string(steps));
  require(sigma_min > 0, what + ": sigma_min must be positive, got " + format_number(sigma_min));
  require(sigma_max > sigma_min, what + ": sigma_min (" + show_number(sigma_min) + ") must be below sigma_max (" +
                                     show_number(sigma_max) + ")");
  require(rho > 0, what + ": rho must be positive, got " + format_number(rho));
  require(eta >= 0 && eta <= 1, what + ": eta must be in [0, 1], got " + format_number(eta));
}

std::vector<double> edm_sigmas(const EdmOptions& o) {
  auto s = karras_sigmas(o.sigma_max, o.sigma_min, o.steps, o.rho);
  s.push_back(0.0);
  return s;
}

EdmResult edm_sample(const Denoiser& denoiser, torch::Tensor x, const std::vector<double>& sigma,
                     const EdmStepRule& rule, const EdmMonitor& monitor, torch::Generator* gen) {
  require(sigma.size() >= 2, "edm sampler: the σ grid needs two or more points, got " + std::to_string(sigma.size()));
  for (size_t i = 0; i + 1 < sigma.size(); ++i)
    require(std::isfinite(sigma[i]) && sigma[i] > sigma[i + 1],
            "edm sampler: the σ grid must decrease strictly, got " + show_number(sigma[i]) + " then " +
                show_number(sigma[i + 1]));
  require(sigma.back() >= 0, "edm sampler: the σ grid must end at 0 or above, got " + show_number(sigma.back()));
  if (rule.eta > 0 && !gen) throw InternalError("edm_sample: eta > 0 needs a generator");
  const auto n = static_cast<int64_t>(sigma.size()) - 1;
  EdmResult r;
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor den = denoiser.denoise(x, sigma[i]);
    if (rule.clip_denoised) den = den.clamp(-1, 1);
    // d_i = (x_i − D(x_i; σ_i))/σ_i;  x_{i+1} = x_i + (σ_{i+1} − σ_i) d_i
    const torch::Tensor d = (x - den) / sigma[i];
    if (rule.eta > 0) {
      // σ_up = min(σ_{i+1}, η √(σ_{i+1}²(σ_i² − σ_{i+1}²)/σ_i²)), σ_down = √(σ_{i+1}² − σ_up²);
      // x_{i+1} = x_i + (σ_down − σ_i) d_i + σ_up z
      const double s0 = sigma[i], s1 = sigma[i + 1];
      const double up = std::min(s1, rule.eta * std::sqrt(s1 * s1 * (s0 * s0 - s1 * s1) / (s0 * s0)));
      const double down = std::sqrt(s1 * s1 - up * up);
      x = x + (down - s0) * d;
      if (up > 0) x = x + up * randn(x.sizes(), *gen, x.device());
    } else {
      x = x + (sigma[i + 1] - sigma[i]) * d;
    }
    ++r.steps;
    if (monitor && !monitor({i, n, sigma[i], x, den})) {
      r.stopped_early = i + 1 < n;
      break;
    }
  }
  r.x = x;
  return r;
}

EdmResult edm_sample(const Denoiser& denoiser, torch::Tensor x, const EdmOptions& o, const EdmMonitor& monitor,
                     torch::Generator* gen) {
  o.validate("edm sampler");
  return edm_sample(denoiser, std::move(x), edm_sigmas(o), {o.clip_denoised, o.eta}, monitor, gen);
}

}  // namespace tweedie::diffusion
