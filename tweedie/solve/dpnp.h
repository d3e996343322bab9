#pragma once
// DPnP: Xu & Chi, "Provably Robust Score-Based Diffusion Posterior Sampling for Plug-and-Play
// Image Reconstruction" (NeurIPS 2024; arXiv 2403.17042), as the official code does it
// (x1xu/diffusion-plug-and-play; methods.md §6). Split Gibbs sampling of
// π(x) ∝ exp(−ℓ(y; x)) p(x) with an annealed coupling η_k:
//
//   for η in [η_max]×k_start ++ exp(linspace(log η_max, log η_min, k)):
//     x_{k+½} ~ π_PCS(x) ∝ exp(−ℓ(y; x) − ‖x − x_k‖²/(2η²))          proximal consistency sampler
//     x_{k+1} ~ p(x0 | x0 + η w = x_{k+½})                              denoising diffusion sampler
// (the code's ddpm-pnp swaps the two and ends on a DDS: `order`).
//
// PCS (§6.4, the code's "mala", unadjusted): with f the data misfit, σ_m the assumed measurement
// std and x_c = x_k, 1000 steps of the exact Ornstein–Uhlenbeck integrator of the coupling plus
// an Euler step of the likelihood, with an adaptive step:
//   h = s·min(σ_m², η²)/(reg + √f(x));  a = 1 − e^{−h/η²};  b = η √(1 − e^{−2h/η²})
//   x ← x + a (x_c − x) − η² a ∇f(x)/(2σ_m²) + b ξ
// f = ‖y − A(x)‖² (likelihood=linear, the code's Gaussian tasks) or the channel's −log p(y | A x)
// (likelihood=channel; the code's logit quantization uses its logistic NLL there).
//
// DDS, two forms over the base schedule's steps t with τ_t = 1/ᾱ_t − 1 < η²:
//  * stochastic (dds=ddpm, §6.5): x ← x − 2(√τ_t − √τ_{t−1}) ε_θ(√ᾱ_t x, t) + [t > 0] √(τ_t − τ_{t−1}) ξ,
//    t = L−1 … 0 (exponential-integrator Euler–Maruyama of the VE reverse SDE from η² to 0);
//  * deterministic (dds=ddim, §6.6): a DDIM on u = x0 − x_noisy, whose law given x_noisy is
//    diffused by ᾱ'_t = ((1+η²)ᾱ_t − 1)/(η² + ᾱ_t − 1), on the code's thinned and refined grid.
// Warm start (§6.3, optional): warm_start=dps runs DPS (`warm_steps` steps) first and starts from
// its output; otherwise x_0 ~ N(0, I).
#include <string>
#include <vector>

#include "tweedie/core/options.h"
#include "tweedie/diffusion/denoiser.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

struct DpnpOptions {
  double eta_max = 0.4;         // diffusion_config_pnp.yaml
  double eta_min = 0.16;
  int64_t k_start = 4;          // iterations at η_max first
  int64_t k = 12;               // annealed iterations, η_max → η_min geometrically
  std::string dds = "ddim";     // ddim (deterministic, §6.6) | ddpm (stochastic, §6.5)
  // Loop order per η (§6.2): the code's ddim-pnp runs PCS then DDS; its ddpm-pnp runs DDS then
  // PCS and returns after the last DDS (K DDS, K − 1 PCS). auto = the code's order for `dds`.
  std::string order = "auto";   // auto | pcs-dds | dds-pcs
  int64_t pcs_steps = 1000;     // PCS iterations per outer step (likelihood gradients)
  double pcs_scale = 0.6;       // s (SR×4 FFHQ: 0.6; quantization 0.2; coded PR 0.8)
  double multiplier = 0.15;     // σ_m: the measurement std PCS assumes (code default 0.15)
  double reg = 50;              // the step's regulariser in h
  std::string likelihood = "linear";  // f: linear = ‖y − A x‖² | channel = the channel's NLL
  bool clip_denoised = true;    // clamp x̂0 to [-1, 1] inside DDS (the code: True)
  std::string warm_start = "none";    // none | dps
  int64_t warm_steps = 500;     // DPS steps of the warm start (the code: 500)
  double warm_zeta = 1.0;       // DPS step ζ of the warm start

  bool pcs_first() const { return order == "pcs-dds" || (order == "auto" && dds == "ddim"); }
  static const OptionTable<DpnpOptions>& table();
};

// η_0 … η_{K−1}: [η_max]×k_start ++ exp(linspace(log η_max, log η_min, k)).
std::vector<double> dpnp_etas(const DpnpOptions& o);

// PCS from centre x_c at coupling η; `data` gives ∇ℓ; counts its gradients in `data`.
torch::Tensor dpnp_pcs(const Likelihood& data, bool linear_misfit, const torch::Tensor& x_c, double eta,
                       const DpnpOptions& o, torch::Generator& gen);

// DDS: a draw of x0 given x_noisy = x0 + η w under the prior (both forms).
torch::Tensor dpnp_dds(const diffusion::EpsDenoiser& prior, const torch::Tensor& x_noisy, double eta,
                       const DpnpOptions& o, torch::Generator& gen);

Result dpnp(const SolveContext& ctx, const DpnpOptions& options);

}  // namespace tweedie::solve
