#pragma once
// Discrete samplers of guided-diffusion on a (respaced) Schedule, with its arithmetic:
//  * DDPM ancestral sampling (GaussianDiffusion.p_sample / p_sample_loop; Ho et al. 2020, Alg. 2);
//  * DDIM with η (ddim_sample / ddim_sample_loop; Song et al. 2021, eq. 12 and 16);
//  * deterministic DDIM inversion x0 → x_t (ddim_reverse_sample, "eq. 12 reversed"), looped
//    i = start..target−1 as DDIB / SIM-DMIS do (guided-diffusion itself has no reverse loop).
//
// Randomness only through the torch::Generator passed in. Every step draws one randn like x,
// in the order guided-diffusion's loops do (also when η = 0 or at the last step, where the draw
// is multiplied by zero), so a CPU generator seeded like torch.manual_seed reproduces the
// reference's random stream. Same generator state ⇒ bitwise identical output.
//
// Monitors see every step: the state after the step and the x̂0 used in it; returning false
// stops the loop early (the result then holds the last state reached).
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>

#include "tweedie/diffusion/denoiser.h"
#include "tweedie/diffusion/schedule.h"

namespace tweedie::diffusion {

struct StepInfo {
  int64_t step = 0;              // 0-based position in this loop
  int64_t num_steps = 0;         // steps this loop will take
  int64_t index = 0;             // respaced index k of the model evaluation
  int64_t model_t = 0;           // base timestep the network saw (timestep_map[k])
  const torch::Tensor& x;        // state after the step
  const torch::Tensor& pred_x0;  // x̂0 used in the step (after clipping)
};
// Return false to stop early.
using StepMonitor = std::function<bool(const StepInfo&)>;

struct SamplerResult {
  torch::Tensor x;        // final state (sample, or latent for inversion)
  torch::Tensor pred_x0;  // x̂0 of the last step taken
  int64_t steps = 0;      // steps taken
  int64_t nfe = 0;        // network evaluations spent (a batch counts once)
  bool stopped_early = false;
};

struct StepOutput {
  torch::Tensor x;        // x_{k−1} (sampling) or x_{k+1} (inversion)
  torch::Tensor pred_x0;  // x̂0 used
};

// ---- DDPM -----------------------------------------------------------------------------------

struct DdpmOptions {
  bool clip_denoised = true;  // guided-diffusion p_sample_loop default; DPS clip_denoised: True
  int64_t start_index = -1;   // x is at this respaced index; −1 = the last (x_T ~ N(0, I))
  nlohmann::json to_json() const;
};

// One ancestral step at index k (p_sample): x_{k−1} = μ̃(x_k, x̂0) + [k > 0]·exp(½ log σ²)·z.
// The variance type is the denoiser's. `noise` is z, shaped like x.
StepOutput ddpm_step(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                     int64_t index, const torch::Tensor& noise, const PredictOptions& predict);

// p_sample_loop from x (at options.start_index) down to index 0.
SamplerResult ddpm_sample(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                          const DdpmOptions& options, torch::Generator& gen,
                          const StepMonitor& monitor = {});

// ---- DDIM -----------------------------------------------------------------------------------

struct DdimOptions {
  double eta = 0.0;           // DDIM eq. 16 η: 0 = deterministic DDIM, 1 = DDPM-like
  bool clip_denoised = true;  // guided-diffusion ddim_sample_loop default
  int64_t start_index = -1;   // x is at this respaced index; −1 = the last
  nlohmann::json to_json() const;
};

// One DDIM step at index k (ddim_sample): ε re-derived from the (clipped) x̂0, then
// x_{k−1} = √ᾱ_prev x̂0 + √(1−ᾱ_prev−σ²) ε + [k > 0]·σ z.
StepOutput ddim_step(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                     int64_t index, double eta, const torch::Tensor& noise,
                     const PredictOptions& predict);

// ddim_sample_loop from x (at options.start_index) down to index 0.
SamplerResult ddim_sample(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                          const DdimOptions& options, torch::Generator& gen,
                          const StepMonitor& monitor = {});

// ---- DDIM inversion -------------------------------------------------------------------------

struct DdimInversionOptions {
  // x is taken to be at ᾱ[start_index]; 0 treats clean data as x_{t_0} (DDIB's convention,
  // the reference fixtures' too).
  int64_t start_index = 0;
  // The latent is at ᾱ[target_index] (steps i = start..target−1); −1 = the last index N−1.
  int64_t target_index = -1;
  // Replay guided-diffusion exactly: steps i = start..N−1, the last one moving to
  // alphas_cumprod_next[N−1] = 0, so the result is the x̂0-consistent ε at t_{N−1}, not a latent
  // (see the fixtures' README). Overrides target_index.
  bool reference_loop = false;
  // methods.md §1.5: no clipping keeps the map invertible (ddim_reverse_sample defaults to True).
  bool clip_denoised = false;
  nlohmann::json to_json() const;
};

// One reverse step at index k (ddim_reverse_sample, η = 0):
// x_{k+1} = √ᾱ_next x̂0 + √(1−ᾱ_next) ε, ε re-derived from x̂0.
StepOutput ddim_reverse_step(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                             int64_t index, const PredictOptions& predict);

// The deterministic inversion loop. Deterministic, so no generator.
SamplerResult ddim_invert(const EpsDenoiser& model, const Schedule& s, const torch::Tensor& x,
                          const DdimInversionOptions& options, const StepMonitor& monitor = {});

}  // namespace tweedie::diffusion
