#pragma once
// The denoiser contract (docs/architecture.md §Contracts 3) and its ε-network adapter.
//
// Denoiser: D(x̃, σ) ≈ E[x0 | x̃] in the variance-exploding scaling x̃ = x_t/√ᾱ_t,
// σ = √((1−ᾱ_t)/ᾱ_t) (k-diffusion's convention). Equivalently ᾱ = 1/(1+σ²) and
// x_t = x̃/√(1+σ²).
//
// EpsDenoiser wraps guided-diffusion's ε-network ε_θ(x_t, t) on its discrete base schedule and
// offers both views:
//  * discrete (guided-diffusion GaussianDiffusion/SpacedDiffusion): eps, pred_x0,
//    p_mean_variance at a respaced step index k, the network seeing timestep_map[k] (int64);
//  * continuous: denoise(x̃, σ) = x̃ − σ·ε_θ(x̃/√(1+σ²), t(σ)), where t(σ) is the fractional
//    timestep found by interpolating log σ over the base schedule (k-diffusion
//    DiscreteSchedule.sigma_to_t; DiscreteEpsDDPMDenoiser with c_in = 1/√(1+σ²), c_out = −σ).
//
// NFE accounting (methods.md §1.7): one call of the network is one NFE, whatever the batch size;
// images() counts the items evaluated (Σ B over calls). Counters are atomic, so a const
// Denoiser may be shared between threads.
#include <torch/torch.h>

#include <memory>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>

#include "tweedie/diffusion/gaussian_diffusion.h"
#include "tweedie/diffusion/schedule.h"

namespace tweedie::diffusion {

// The network: x_t [B, C, ...] at model timesteps t_model [B] (int64 base timesteps on the
// discrete path, float32 fractional ones on the continuous path) → [B, C or 2C, ...]. With 2C
// channels the first C are ε and the last C are the learned-variance values v.
using EpsModel =
    std::function<torch::Tensor(const torch::Tensor& x_t, const torch::Tensor& t_model)>;

// ---- the contract ---------------------------------------------------------------------------

class Denoiser {
 public:
  Denoiser() = default;
  Denoiser(const Denoiser&) = delete;
  Denoiser& operator=(const Denoiser&) = delete;
  virtual ~Denoiser() = default;

  // x̂0 = D(x̃, σ). x_tilde [B, ...]; sigma [B], [B,1,...] or a single value; σ ≥ 0.
  virtual torch::Tensor denoise(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const = 0;
  torch::Tensor denoise(const torch::Tensor& x_tilde, double sigma) const;
  torch::Tensor operator()(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const {
    return denoise(x_tilde, sigma);
  }

  // The σ range the denoiser was trained on (a sampler's natural σ_min / σ_max).
  virtual double sigma_min() const { return 0.0; }
  virtual double sigma_max() const { return std::numeric_limits<double>::infinity(); }

  // Network (or closed-form) evaluations so far: a batch counts once; images counts items.
  virtual int64_t nfe() const { return nfe_.load(); }
  virtual int64_t images() const { return images_.load(); }
  void reset_counters() const;

 protected:
  void count_evaluation(int64_t batch) const;

 private:
  mutable std::atomic<int64_t> nfe_{0};
  mutable std::atomic<int64_t> images_{0};
};

// σ reshaped to broadcast against x ([B, 1, ..., 1]) in x's dtype and device. Accepts one value
// or B values; anything else is an InputError.
torch::Tensor sigma_like(const torch::Tensor& sigma, const torch::Tensor& x);

// ---- σ ↔ fractional timestep (k-diffusion DiscreteSchedule) ---------------------------------

// log σ_i of the base schedule, increasing in i.
std::vector<double> log_ve_sigmas(const Schedule& base);
// Fractional t with log σ interpolated linearly between neighbouring integer steps; clamped to
// [0, N−1] outside the table. quantize: the nearest integer step instead. Returns float64 [..].
torch::Tensor sigma_to_t(const std::vector<double>& log_sigmas, const torch::Tensor& sigma,
                         bool quantize = false);
// σ(t) = exp((1−w) log σ_⌊t⌋ + w log σ_⌈t⌉), w = frac(t); the inverse of sigma_to_t. float64.
torch::Tensor t_to_sigma(const std::vector<double>& log_sigmas, const torch::Tensor& t);
// The model timestep EDM's VPPrecond feeds a DDPM network for σ (the continuous-time VP limit of
// the linear schedule; DAPS's model wrapper): (M − 1)·t_VP(σ) with
// t_VP(σ) = (√(β_min² + 2 β_d log(1 + σ²)) − β_min)/β_d, β_min = 0.1, β_d = 19.9, M = 1000. It
// differs from sigma_to_t on the discrete linear schedule by up to about 3 steps (956.1 against
// 953.1 at σ = 100, 0.92 against 0 at σ = 0.01).
double vp_sigma_to_t(double sigma, double beta_min = 0.1, double beta_d = 19.9, int64_t M = 1000);

// ---- the ε-network adapter ------------------------------------------------------------------

struct GaussianMixture;  // gmm_prior.h

struct EpsDenoiserOptions {
  // guided-diffusion model_var_type; learned_range needs a network with 2C output channels
  // (DPS checkpoints: learned_range).
  VarianceType variance = VarianceType::kFixedSmall;
  // Continuous path: feed the nearest integer timestep instead of the interpolated one
  // (k-diffusion's `quantize`). Off by default, as in k-diffusion.
  bool quantize_t = false;
  // The exact density behind the ε-model where it is known (a "gmm:" prior), else null: what the
  // `exact` solver and the posterior scores read (gmm_posterior.h). Not part of to_json().
  std::shared_ptr<const GaussianMixture> mixture = nullptr;
  nlohmann::json to_json() const;
};

// What the network says at one step: ε and (learned variance only) v, both shaped like x_t.
struct ModelOutput {
  torch::Tensor eps;
  torch::Tensor var_values;  // undefined when the network has C output channels
};

// guided-diffusion p_mean_variance output, plus the network's raw ε.
struct MeanVariance {
  torch::Tensor mean;          // μ̃(x_t, x̂0)
  torch::Tensor variance;      // σ² of p(x_{t−1} | x_t)
  torch::Tensor log_variance;  // log σ²
  torch::Tensor pred_x0;       // x̂0 after clipping
  torch::Tensor eps;           // ε_θ as the network gave it
};

struct PredictOptions {
  bool clip_denoised = true;  // clamp x̂0 to [−1, 1] (guided-diffusion's default; DPS config)
};

class EpsDenoiser final : public Denoiser {
 public:
  // `base` is the schedule the network was trained on (identity timestep map, e.g.
  // make_schedule("linear", 1000)); discrete calls may use any respacing of it.
  EpsDenoiser(EpsModel model, Schedule base, EpsDenoiserOptions options = {});

  // ---- discrete (index: [B] int64 respaced step indices into `s`) ----
  ModelOutput model_output(const Schedule& s, const torch::Tensor& x_t,
                           const torch::Tensor& index) const;
  torch::Tensor eps(const Schedule& s, const torch::Tensor& x_t, const torch::Tensor& index) const;
  // Tweedie x̂0 = (x_t − √(1−ᾱ) ε)/√ᾱ, optionally clamped to [−1, 1].
  torch::Tensor pred_x0(const Schedule& s, const torch::Tensor& x_t, const torch::Tensor& index,
                        bool clip_denoised) const;
  // guided-diffusion p_mean_variance (ε-prediction): x̂0 → clip → μ̃, σ² (guided-diffusion's
  // denoised_fn hook is left out: no method here uses it).
  MeanVariance p_mean_variance(const Schedule& s, const torch::Tensor& x_t,
                               const torch::Tensor& index,
                               const PredictOptions& options = {}) const;

  // ---- continuous ----
  // D(x̃, σ) = x̃ − σ ε_θ(x̃/√(1+σ²), t(σ)). Differentiable in x̃ (not in σ).
  torch::Tensor denoise(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const override;
  using Denoiser::denoise;
  // The same D with the network fed the model timestep t_model (one value or [B]) instead of
  // t(σ): for samplers whose authors map σ to a timestep another way (vp_sigma_to_t).
  torch::Tensor denoise_at(const torch::Tensor& x_tilde, const torch::Tensor& sigma, const torch::Tensor& t_model) const;
  double sigma_min() const override { return sigmas_.front(); }
  double sigma_max() const override { return sigmas_.back(); }
  // The fractional model timestep for σ (float64, shaped like sigma).
  torch::Tensor sigma_to_t(const torch::Tensor& sigma) const;

  const Schedule& base() const { return base_; }
  const EpsDenoiserOptions& options() const { return options_; }

 private:
  // Calls the network on (x_t, t_model), counts the NFE and splits [ε, v].
  ModelOutput call(const torch::Tensor& x_t, const torch::Tensor& t_model) const;
  void check_schedule(const Schedule& s) const;

  EpsModel model_;
  Schedule base_;
  EpsDenoiserOptions options_;
  std::vector<double> sigmas_;
  std::vector<double> log_sigmas_;
};

}  // namespace tweedie::diffusion
