#include "tweedie/diffusion/denoiser.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "tweedie/core/activity.h"
#include "tweedie/core/error.h"
#include "tweedie/core/interrupt.h"

namespace tweedie::diffusion {
namespace {

// σ as B float64 values on the CPU (one value is repeated B times).
std::vector<double> sigma_values(const torch::Tensor& sigma, int64_t batch) {
  const auto s = sigma.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
  require(s.numel() == 1 || s.numel() == batch, "denoiser: sigma must hold 1 or " +
                                                    std::to_string(batch) + " values, got " +
                                                    std::to_string(s.numel()));
  std::vector<double> out(static_cast<size_t>(batch));
  const double* p = s.data_ptr<double>();
  for (int64_t b = 0; b < batch; ++b) out[b] = p[s.numel() == 1 ? 0 : b];
  return out;
}

// A [B, 1, ..., 1] column of `values` in x's dtype and device.
torch::Tensor column(const std::vector<double>& values, const torch::Tensor& x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = static_cast<int64_t>(values.size());
  return torch::tensor(values, torch::kFloat64).reshape(shape).to(x.device(), x.scalar_type());
}

// Fractional t for one log σ: low = last i with log σ_i ≤ log σ (clamped to [0, N−2]),
// w = (log σ_low − log σ)/(log σ_low − log σ_high) ∈ [0, 1], t = (1−w)·low + w·(low+1).
double one_sigma_to_t(const std::vector<double>& ls, double log_sigma, bool quantize) {
  const auto n = static_cast<int64_t>(ls.size());
  if (n == 1) return 0.0;
  if (quantize) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i) {
      if (std::abs(log_sigma - ls[i]) < std::abs(log_sigma - ls[best])) best = i;
    }
    return static_cast<double>(best);
  }
  const auto count = std::upper_bound(ls.begin(), ls.end(), log_sigma) - ls.begin();
  const int64_t low = std::clamp<int64_t>(count - 1, 0, n - 2);
  double w = (ls[low] - log_sigma) / (ls[low] - ls[low + 1]);
  w = std::clamp(w, 0.0, 1.0);
  return (1.0 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
}

}  // namespace

// ---- Denoiser -------------------------------------------------------------------------------

torch::Tensor Denoiser::denoise(const torch::Tensor& x_tilde, double sigma) const {
  return denoise(x_tilde, torch::tensor({sigma}, torch::kFloat64));
}

void Denoiser::reset_counters() const {
  nfe_.store(0);
  images_.store(0);
}

void Denoiser::count_evaluation(int64_t batch) const {
  check_interrupt();  // every network evaluation is a point where a run may stop (core/interrupt.h)
  nfe_.fetch_add(1);
  images_.fetch_add(batch);
}

torch::Tensor sigma_like(const torch::Tensor& sigma, const torch::Tensor& x) {
  require(x.dim() >= 1, "denoiser: x must have a batch dimension");
  return column(sigma_values(sigma, x.size(0)), x);
}

// ---- σ ↔ t ----------------------------------------------------------------------------------

std::vector<double> log_ve_sigmas(const Schedule& base) {
  auto sigmas = ve_sigmas(base);
  for (double& s : sigmas) s = std::log(s);  // log σ_i, σ_i = √((1−ᾱ_i)/ᾱ_i)
  return sigmas;
}

torch::Tensor sigma_to_t(const std::vector<double>& log_sigmas, const torch::Tensor& sigma,
                         bool quantize) {
  require(!log_sigmas.empty(), "sigma_to_t: empty schedule");
  auto s = sigma.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  auto t = torch::empty_like(s);
  const double* sp = s.data_ptr<double>();
  double* tp = t.data_ptr<double>();
  for (int64_t i = 0; i < s.numel(); ++i) {
    require(sp[i] >= 0.0, "denoiser: sigma must be >= 0, got " + std::to_string(sp[i]));
    tp[i] = one_sigma_to_t(log_sigmas, std::log(sp[i]), quantize);
  }
  return t;
}

torch::Tensor t_to_sigma(const std::vector<double>& log_sigmas, const torch::Tensor& t) {
  require(!log_sigmas.empty(), "t_to_sigma: empty schedule");
  auto tt = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  auto out = torch::empty_like(tt);
  const double* tp = tt.data_ptr<double>();
  double* op = out.data_ptr<double>();
  const double t_max = static_cast<double>(log_sigmas.size() - 1);
  for (int64_t i = 0; i < tt.numel(); ++i) {
    const double ti = std::clamp(tp[i], 0.0, t_max);
    const auto low = static_cast<size_t>(std::floor(ti));
    const auto high = static_cast<size_t>(std::ceil(ti));
    const double w = ti - std::floor(ti);
    op[i] = std::exp((1.0 - w) * log_sigmas[low] + w * log_sigmas[high]);  // log-linear in t
  }
  return out;
}

// ---- EpsDenoiser ----------------------------------------------------------------------------

nlohmann::json EpsDenoiserOptions::to_json() const {
  return {{"variance", to_string(variance)}, {"quantize_t", quantize_t}};
}

EpsDenoiser::EpsDenoiser(EpsModel model, Schedule base, EpsDenoiserOptions options)
    : model_(std::move(model)), base_(std::move(base)), options_(options) {
  require(static_cast<bool>(model_), "EpsDenoiser: no model");
  require(base_.size() > 0 && base_.size() == base_.original_num_steps,
          "EpsDenoiser: the base schedule must be an unrespaced one (got " +
              std::to_string(base_.size()) + " of " + std::to_string(base_.original_num_steps) +
              " steps)");
  sigmas_ = ve_sigmas(base_);
  log_sigmas_ = log_ve_sigmas(base_);
}

void EpsDenoiser::check_schedule(const Schedule& s) const {
  require(s.original_num_steps == base_.size(),
          "EpsDenoiser: schedule respaces " + std::to_string(s.original_num_steps) +
              " steps but the network's base schedule has " + std::to_string(base_.size()));
}

ModelOutput EpsDenoiser::call(const torch::Tensor& x_t, const torch::Tensor& t_model) const {
  torch::Tensor out;
  {
    ActivityScope network(Activity::kNetwork);
    out = model_(x_t, t_model);
  }
  count_evaluation(x_t.size(0));
  const int64_t c = x_t.size(1);
  const bool same_layout = out.dim() == x_t.dim() && out.size(0) == x_t.size(0) &&
                           out.sizes().slice(2) == x_t.sizes().slice(2);
  require(same_layout && (out.size(1) == c || out.size(1) == 2 * c),
          "EpsDenoiser: network output " + c10::str(out.sizes()) + " does not fit input " +
              c10::str(x_t.sizes()) + " (expected C or 2C channels)");
  ModelOutput result;
  if (out.size(1) == c) {
    result.eps = out;
  } else {
    auto parts = torch::split(out, c, 1);  // [ε | v], ε first (guided-diffusion th.split)
    result.eps = parts[0];
    result.var_values = parts[1];
  }
  require(options_.variance != VarianceType::kLearnedRange || result.var_values.defined(),
          "EpsDenoiser: learned_range variance needs a network with 2C output channels");
  return result;
}

ModelOutput EpsDenoiser::model_output(const Schedule& s, const torch::Tensor& x_t,
                                      const torch::Tensor& index) const {
  check_schedule(s);
  // SpacedDiffusion._WrappedModel: the network sees timestep_map[k], int64, not rescaled.
  auto map = torch::tensor(s.timestep_map, torch::kInt64);
  auto t_model = map.index_select(0, index.to(torch::kCPU, torch::kInt64).reshape({-1}));
  return call(x_t, t_model.to(x_t.device()));
}

torch::Tensor EpsDenoiser::eps(const Schedule& s, const torch::Tensor& x_t,
                               const torch::Tensor& index) const {
  return model_output(s, x_t, index).eps;
}

torch::Tensor EpsDenoiser::pred_x0(const Schedule& s, const torch::Tensor& x_t,
                                   const torch::Tensor& index, bool clip_denoised) const {
  auto x0 = predict_x0_from_eps(s, x_t, index, eps(s, x_t, index));
  return clip_denoised ? x0.clamp(-1, 1) : x0;
}

MeanVariance EpsDenoiser::p_mean_variance(const Schedule& s, const torch::Tensor& x_t,
                                          const torch::Tensor& index,
                                          const PredictOptions& options) const {
  const ModelOutput out = model_output(s, x_t, index);
  MeanVariance mv;
  mv.eps = out.eps;
  mv.log_variance = model_log_variance(s, options_.variance, x_t, index, out.var_values);
  if (options_.variance == VarianceType::kLearnedRange) {
    mv.variance = torch::exp(mv.log_variance);
  } else {
    const auto& table = options_.variance == VarianceType::kFixedSmall ? s.posterior_variance
                                                                       : s.fixed_large_variance;
    mv.variance = extract(table, index, x_t.dim(), x_t.scalar_type(), x_t.device()).expand_as(x_t);
  }
  auto x0 = predict_x0_from_eps(s, x_t, index, out.eps);  // x̂0 = √(1/ᾱ) x_t − √(1/ᾱ−1) ε
  if (options.clip_denoised) x0 = x0.clamp(-1, 1);
  mv.pred_x0 = x0;
  mv.mean = q_posterior_mean(s, x0, x_t, index);  // μ̃ = coef1 x̂0 + coef2 x_t
  return mv;
}

torch::Tensor EpsDenoiser::sigma_to_t(const torch::Tensor& sigma) const {
  return diffusion::sigma_to_t(log_sigmas_, sigma, options_.quantize_t);
}

torch::Tensor EpsDenoiser::denoise(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const {
  const auto sig = sigma_values(sigma, x_tilde.size(0));
  const auto t =
      diffusion::sigma_to_t(log_sigmas_, torch::tensor(sig, torch::kFloat64), options_.quantize_t);
  return denoise_at(x_tilde, torch::tensor(sig, torch::kFloat64), t);
}

torch::Tensor EpsDenoiser::denoise_at(const torch::Tensor& x_tilde, const torch::Tensor& sigma,
                                      const torch::Tensor& t_model) const {
  const int64_t B = x_tilde.size(0);
  const auto sig = sigma_values(sigma, B);
  require(t_model.numel() == 1 || t_model.numel() == B,
          "EpsDenoiser::denoise_at: need one model timestep or one per item, got " + c10::str(t_model.sizes()));
  std::vector<double> c_in(sig.size());
  for (size_t b = 0; b < sig.size(); ++b) c_in[b] = 1.0 / std::sqrt(1.0 + sig[b] * sig[b]);
  const auto t = t_model.reshape({-1}).expand({B}).to(x_tilde.device(), torch::kFloat32);
  const auto x_t = x_tilde * column(c_in, x_tilde);  // x_t = x̃ √ᾱ = x̃/√(1+σ²)
  const auto eps = call(x_t, t).eps;
  return x_tilde - column(sig, x_tilde) * eps;  // x̂0 = x̃ − σ ε   (VE Tweedie)
}

double vp_sigma_to_t(double sigma, double beta_min, double beta_d, int64_t M) {
  // t_VP = (√(β_min² + 2 β_d log(1 + σ²)) − β_min)/β_d, the inverse of σ(t) = √(exp(½β_d t² + β_min t) − 1)
  const double t = (std::sqrt(beta_min * beta_min + 2 * beta_d * std::log1p(sigma * sigma)) - beta_min) / beta_d;
  return static_cast<double>(M - 1) * t;
}

}  // namespace tweedie::diffusion
