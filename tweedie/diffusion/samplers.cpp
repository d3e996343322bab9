#include "tweedie/diffusion/samplers.h"

#include "tweedie/core/error.h"
#include "tweedie/diffusion/gaussian_diffusion.h"

namespace tweedie::diffusion {
namespace {

torch::Tensor table(const std::vector<double>& t, int64_t index, const torch::Tensor& x) {
  return extract(t, index_tensor(index, x.size(0)), x.dim(), x.scalar_type(), x.device());
}

// guided-diffusion's nonzero_mask: (t != 0) as a float column, so that no noise is added at
// the last step.
torch::Tensor nonzero_mask(int64_t index, const torch::Tensor& x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  return torch::full(shape, index != 0 ? 1.0 : 0.0, x.options());
}

int64_t resolve_start(int64_t start_index, const Schedule& s, const char* who) {
  const int64_t start = start_index < 0 ? s.size() - 1 : start_index;
  require(start < s.size(), std::string(who) + ": start_index " + std::to_string(start_index) +
                                " is outside the schedule's " + std::to_string(s.size()) +
                                " steps");
  return start;
}

// Calls the monitor (if any); true when the loop should stop.
bool should_stop(const StepMonitor& monitor, int64_t step, int64_t num_steps, int64_t index,
                 const Schedule& s, const StepOutput& out) {
  if (!monitor) return false;
  const StepInfo info{step, num_steps, index, s.timestep_map[index], out.x, out.pred_x0};
  return !monitor(info);
}

torch::Tensor randn_like(const torch::Tensor& x, torch::Generator& gen) {
  return torch::randn(x.sizes(), gen, x.options());
}

// Descends from index `start` to 0 with `step(x, k, z)`, one noise draw per step.
template <class Step>
SamplerResult descend(const EpsDenoiser& model, const Schedule& s, torch::Tensor x, int64_t start,
                      torch::Generator& gen, const StepMonitor& monitor, Step step) {
  torch::NoGradGuard no_grad;
  SamplerResult result;
  const int64_t nfe0 = model.nfe();
  for (int64_t k = start; k >= 0; --k) {
    const auto noise = randn_like(x, gen);
    StepOutput out = step(x, k, noise);
    x = out.x;
    result.pred_x0 = out.pred_x0;
    ++result.steps;
    if (should_stop(monitor, start - k, start + 1, k, s, out)) {
      result.stopped_early = k > 0;
      break;
    }
  }
  result.x = x;
  result.nfe = model.nfe() - nfe0;
  return result;
}

}  // namespace

// ---- options --------------------------------------------------------------------------------

nlohmann::json DdpmOptions::to_json() const {
  return {{"clip_denoised", clip_denoised},
          {"start_index", start_index}};
}

nlohmann::json DdimOptions::to_json() const {
  return {{"eta", eta},
          {"clip_denoised", clip_denoised},
          {"start_index", start_index}};
}

nlohmann::json DdimInversionOptions::to_json() const {
  return {{"start_index", start_index},
          {"target_index", target_index},
          {"reference_loop", reference_loop},
          {"clip_denoised", clip_denoised}};
}

// ---- DDPM -----------------------------------------------------------------------------------

StepOutput ddpm_step(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                     int64_t index, const torch::Tensor& noise, const PredictOptions& predict) {
  const auto mv = model.p_mean_variance(s, x, index_tensor(index, x.size(0), x.device()), predict);
  // x_{k−1} = μ̃ + [k > 0] · exp(½ log σ²) · z   (p_sample; DDPM Alg. 2 line 4)
  auto sample = mv.mean + nonzero_mask(index, x) * torch::exp(0.5 * mv.log_variance) * noise;
  return {sample, mv.pred_x0};
}

SamplerResult ddpm_sample(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                          const DdpmOptions& options, torch::Generator& gen,
                          const StepMonitor& monitor) {
  const int64_t start = resolve_start(options.start_index, s, "ddpm_sample");
  const PredictOptions predict{options.clip_denoised};
  return descend(model, s, x, start, gen, monitor,
                 [&](const torch::Tensor& xk, int64_t k, const torch::Tensor& z) {
                   return ddpm_step(model, s, xk, k, z, predict);
                 });
}

// ---- DDIM -----------------------------------------------------------------------------------

StepOutput ddim_step(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                     int64_t index, double eta, const torch::Tensor& noise,
                     const PredictOptions& predict) {
  const auto idx = index_tensor(index, x.size(0), x.device());
  const auto mv = model.p_mean_variance(s, x, idx, predict);
  // ε re-derived from the (clipped) x̂0: ε = (√(1/ᾱ) x − x̂0)/√(1/ᾱ − 1)
  const auto eps = predict_eps_from_x0(s, x, idx, mv.pred_x0);
  const auto ab = table(s.alphas_cumprod, index, x);
  const auto ab_prev = table(s.alphas_cumprod_prev, index, x);
  // σ = η √((1−ᾱ_prev)/(1−ᾱ)) √(1 − ᾱ/ᾱ_prev)   (DDIM eq. 16)
  const auto sigma = eta * torch::sqrt((1 - ab_prev) / (1 - ab)) * torch::sqrt(1 - ab / ab_prev);
  // x_prev = √ᾱ_prev x̂0 + √(1 − ᾱ_prev − σ²) ε   (DDIM eq. 12)
  const auto mean_pred =
      mv.pred_x0 * torch::sqrt(ab_prev) + torch::sqrt(1 - ab_prev - sigma.pow(2)) * eps;
  auto sample = mean_pred + nonzero_mask(index, x) * sigma * noise;  // + [k > 0] σ z
  return {sample, mv.pred_x0};
}

SamplerResult ddim_sample(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                          const DdimOptions& options, torch::Generator& gen,
                          const StepMonitor& monitor) {
  require(options.eta >= 0.0, "ddim_sample: eta must be >= 0, got " + std::to_string(options.eta));
  const int64_t start = resolve_start(options.start_index, s, "ddim_sample");
  const PredictOptions predict{options.clip_denoised};
  return descend(model, s, x, start, gen, monitor,
                 [&](const torch::Tensor& xk, int64_t k, const torch::Tensor& z) {
                   return ddim_step(model, s, xk, k, options.eta, z, predict);
                 });
}

// ---- DDIM inversion -------------------------------------------------------------------------

StepOutput ddim_reverse_step(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                             int64_t index, const PredictOptions& predict) {
  const auto idx = index_tensor(index, x.size(0), x.device());
  const auto mv = model.p_mean_variance(s, x, idx, predict);
  const auto eps = predict_eps_from_x0(s, x, idx, mv.pred_x0);  // ε from the (clipped) x̂0
  const auto ab_next = table(s.alphas_cumprod_next, index, x);  // ᾱ_{k+1}; 0 past the end
  // x_next = √ᾱ_next x̂0 + √(1 − ᾱ_next) ε   (DDIM eq. 12 reversed, η = 0)
  auto sample = mv.pred_x0 * torch::sqrt(ab_next) + torch::sqrt(1 - ab_next) * eps;
  return {sample, mv.pred_x0};
}

SamplerResult ddim_invert(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                          const DdimInversionOptions& options, const StepMonitor& monitor) {
  const int64_t n = s.size();
  const int64_t start = options.start_index;
  const int64_t target =
      options.reference_loop ? n : (options.target_index < 0 ? n - 1 : options.target_index);
  require(start >= 0 && start <= target && target <= (options.reference_loop ? n : n - 1),
          "ddim_invert: need 0 <= start_index <= target_index < " + std::to_string(n) + ", got " +
              std::to_string(start) + " and " + std::to_string(options.target_index));
  torch::NoGradGuard no_grad;
  const PredictOptions predict{options.clip_denoised};
  SamplerResult result;
  result.x = x;
  const int64_t nfe0 = model.nfe();
  for (int64_t k = start; k < target; ++k) {  // x at ᾱ_k → x at ᾱ_{k+1}
    StepOutput out = ddim_reverse_step(model, s, result.x, k, predict);
    result.x = out.x;
    result.pred_x0 = out.pred_x0;
    ++result.steps;
    if (should_stop(monitor, k - start, target - start, k, s, out)) {
      result.stopped_early = k + 1 < target;
      break;
    }
  }
  result.nfe = model.nfe() - nfe0;
  return result;
}

}  // namespace tweedie::diffusion
