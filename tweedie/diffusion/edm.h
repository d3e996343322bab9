#pragma once
// The EDM/Karras sampler over a denoiser's variance-exploding view D(x̃, σ) (Karras, Aittala,
// Aila, Laine, "Elucidating the Design Space of Diffusion-Based Generative Models", NeurIPS 2022,
// Algorithm 1 without the second-order correction; methods.md §1.6):
//
//   σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,  i = 0..N−1,  σ_N = 0
//   x_0 ~ N(0, σ_0² I)
//   d_i = (x_i − D(x_i; σ_i))/σ_i;   x_{i+1} = x_i + (σ_{i+1} − σ_i)·d_i      (1 NFE per step)
//
// or, with a fresh-noise share η > 0, the ancestral step (k-diffusion's sample_euler_ancestral):
//   σ_up = min(σ_{i+1}, η √(σ_{i+1}² (σ_i² − σ_{i+1}²)/σ_i²)),  σ_down = √(σ_{i+1}² − σ_up²)
//   x_{i+1} = x_i + (σ_down − σ_i)·d_i + σ_up z,   z ~ N(0, I)
// η = 1 re-noises with fresh noise as DDPM does; η = 0 is the deterministic Euler step above.
//
// so the last step returns D(x_{N−1}; σ_{N−1}). On an ADM ε-network D is EpsDenoiser::denoise,
// which feeds the network the fractional timestep t(σ) of its own discrete schedule (k-diffusion's
// DiscreteEpsDDPMDenoiser), not DAPS's continuous VP formula: both give a VE denoiser; ours keeps
// σ_max within the trained range. Posterior methods that only change the denoised estimate
// (DPS-MO) wrap the Denoiser and reuse this loop.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "tweedie/diffusion/denoiser.h"

namespace tweedie::diffusion {

// n points of the Karras grid from sigma_max down to sigma_min (n ≥ 1; n = 1 gives sigma_max).
std::vector<double> karras_sigmas(double sigma_max, double sigma_min, int64_t n, double rho);

struct EdmOptions {
  int64_t steps = 50;        // N = NFE
  double sigma_max = 80;     // EDM default (our linear-1000 priors are trained up to σ ≈ 157)
  double sigma_min = 0.002;  // EDM default
  double rho = 7;
  bool clip_denoised = false;  // clamp D(x; σ) to [-1, 1] (EDM does not)
  double eta = 0;            // fresh-noise share of each step (0: Euler, EDM; 1: ancestral)
  nlohmann::json to_json() const;
  // InputError unless steps ≥ 1, 0 < σ_min < σ_max, ρ > 0 (`what` names the caller).
  void validate(const std::string& what) const;
};

struct EdmStep {
  int64_t step = 0;        // 0-based
  int64_t num_steps = 0;
  double sigma = 0;        // σ_i of the evaluation
  const torch::Tensor& x;  // state after the step
  const torch::Tensor& denoised;
};
using EdmMonitor = std::function<bool(const EdmStep&)>;

struct EdmResult {
  torch::Tensor x;  // x_N (= the last denoised estimate)
  int64_t steps = 0;
  bool stopped_early = false;
};

// How each step treats D and noise: clamp D(x; σ) to [-1, 1], and the fresh-noise share η.
struct EdmStepRule {
  bool clip_denoised = false;
  double eta = 0;
};

// The loop over any σ grid (the k-diffusion shape): from x at σ_0, one step per pair
// σ_i > σ_{i+1} ≥ 0 (n = sigmas.size() − 1 steps, 1 NFE each); x ends at σ_n (= the last
// denoised estimate when σ_n = 0). DAPS runs its PF-ODEs on grids that stop at σ_ode > 0. `gen`
// draws the ancestral noise; it is required when rule.eta > 0. InputError unless the grid has
// two or more finite points, strictly decreasing, the last ≥ 0.
EdmResult edm_sample(const Denoiser& denoiser, torch::Tensor x, const std::vector<double>& sigmas,
                     const EdmStepRule& rule, const EdmMonitor& monitor = {}, torch::Generator* gen = nullptr);

// EDM's sampler: the loop above on edm_sigmas(options), from x = x_0 (already at σ_0: the caller
// scales its noise by σ_0) down to σ_N = 0.
EdmResult edm_sample(const Denoiser& denoiser, torch::Tensor x, const EdmOptions& options,
                     const EdmMonitor& monitor = {}, torch::Generator* gen = nullptr);

// The grid the loop walks: N Karras points then 0.
std::vector<double> edm_sigmas(const EdmOptions& options);

}  // namespace tweedie::diffusion
