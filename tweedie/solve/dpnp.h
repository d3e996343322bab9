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
// PCS (§6.4, the code's "mala", unadjusted): the data term is ℓ = f/(2σ²), σ the measurement std
// PCS assumes (`sigma`: σ of y = A x + σ n, as in every solver; the code's `multiplier`), with
// the misfit f ≥ 0, 0 at a perfect fit:
//   likelihood=linear:  f = ‖y − A(x)‖²  (the code's Gaussian tasks: ℓ = ‖y − A x‖²/(2σ²));
//   likelihood=channel: f = 2σ_c² Σ_i [−log p(y_i | A(x)_i) − inf_z −log p(y_i | z)], σ_c the
//     channel's noise_std(): σ_c² × the deviance (Channel::nll_floor). For a Gaussian channel
//     this is ‖y − A(x)‖² again, the code's; ℓ is the channel's own NLL at σ = σ_c
//     (sigma=channel), tempered by (σ_c/σ)² otherwise.
// With x_c = x_k, pcs_steps steps of the exact Ornstein–Uhlenbeck integrator of the coupling
// plus an Euler step of the likelihood, with an adaptive step:
//   h = s·min(σ², η²)/(reg + √f(x));  a = 1 − e^{−h/η²};  b = η √(1 − e^{−2h/η²})
//   x ← x + a (x_c − x) − η² a ∇ℓ(x) + b ξ
// The code's logit quantization has ℓ = Σ softplus(−y x/T)/(2σ_m²) with f = Σ softplus(−y x/T):
// σ = √2·T·σ_m gives its ℓ here, with f (and so h) 2T² times its.
//
// DDS, two forms over the base schedule's steps t with τ_t = 1/ᾱ_t − 1 < η²:
//  * stochastic (dds=ddpm, §6.5): x ← x − 2(√τ_t − √τ_{t−1}) ε_θ(√ᾱ_t x, t) + [t > 0] √(τ_t − τ_{t−1}) ξ,
//    t = L−1 … 0 (exponential-integrator Euler–Maruyama of the VE reverse SDE from η² to 0);
//  * deterministic (dds=ddim, §6.6): a DDIM on u = x0 − x_noisy, whose law given x_noisy is
//    diffused by ᾱ'_t = ((1+η²)ᾱ_t − 1)/(η² + ᾱ_t − 1), on a thinned and refined grid of ᾱ'
//    (dds_grid: the code's gen_schedule, or ours at ratio 1.1; dpnp_ddim_grid).
// Warm start (§6.3, optional): warm_start=dps runs DPS (`warm_steps` steps) first and starts from
// its output; otherwise x_0 ~ N(0, I).
#include <string>
#include <vector>

#include "tweedie/core/options.h"
#include "tweedie/diffusion/denoiser.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

struct DpnpOptions {
  double eta_max = 0.4;         // diffusion_config_pnp.yaml
  double eta_min = 0.16;
  int64_t k_start = 4;          // iterations at η_max first
  int64_t k = 12;               // annealed iterations, η_max → η_min geometrically
  enum class Dds { kDdim, kDdpm };  // deterministic (§6.6) | stochastic (§6.5)
  Dds dds = Dds::kDdim;
  enum class Grid { kCode, kRatio };  // the deterministic DDS's grid: the code's gen_schedule | ratio
  Grid dds_grid = Grid::kCode;
  // Loop order per η (§6.2): the code's ddim-pnp runs PCS then DDS; its ddpm-pnp runs DDS then
  // PCS and returns after the last DDS (K DDS, K − 1 PCS). auto = the code's order for `dds`.
  enum class Order { kAuto, kPcsDds, kDdsPcs };
  Order order = Order::kAuto;
  int64_t pcs_steps = 1000;     // PCS iterations per outer step (likelihood gradients)
  double pcs_scale = 0.6;       // s (SR×4 FFHQ: 0.6; quantization 0.2; coded PR 0.8)
  double sigma = 0.15;          // σ of y = A x + σ n that PCS assumes (the code's multiplier, default
                                // 0.15); kChannelSigma = the channel's noise σ
  double reg = 50;              // the step's regulariser in h
  DataTerm likelihood = DataTerm::kLinear;  // f: linear = ‖y − A x‖² | channel = σ_c² × the channel's deviance
  bool clip_denoised = true;    // clamp x̂0 to [-1, 1] inside DDS (the code: True)
  enum class WarmStart { kNone, kDps };
  WarmStart warm_start = WarmStart::kNone;
  int64_t warm_steps = 500;     // DPS steps of the warm start (the code: 500)
  double warm_zeta = 1.0;       // DPS step ζ of the warm start

  bool pcs_first() const { return order == Order::kPcsDds || (order == Order::kAuto && dds == Dds::kDdim); }
  static const SolverTable<DpnpOptions>& table();
};

// η_0 … η_{K−1}: [η_max]×k_start ++ exp(linspace(log η_max, log η_min, k)).
std::vector<double> dpnp_etas(const DpnpOptions& o);

// PCS's data term: f and ∇ℓ = ∇f/(2σ²) of the header, from the channel of `data` (the
// problem's for likelihood=channel; gaussian_problem(problem, σ) for linear, where σ_c = σ and
// f = ‖y − A x‖²). σ > 0; the channel's noise_std() must be > 0. `data` must outlive this.
class PcsMisfit {
 public:
  PcsMisfit(const Likelihood& data, double sigma);
  // (f per item [B] in float64, ∇ℓ): one likelihood gradient, counted in data.
  std::pair<torch::Tensor, torch::Tensor> operator()(const torch::Tensor& x) const;
  double sigma() const { return sigma_; }

 private:
  const Likelihood& data_;
  double sigma_, sigma_c_;
  torch::Tensor floor_;  // Σ_i inf_z −log p(y_i | z) per item, float64
};

// PCS from centre x_c at coupling η.
torch::Tensor dpnp_pcs(const PcsMisfit& misfit, const torch::Tensor& x_c, double eta, const DpnpOptions& o,
                       torch::Generator& gen);

// The deterministic DDS's grid at coupling η: values ᾱ' decreasing from ≈ 1 to ≈ 1e-4 (the
// DDIM runs from the last to the first), with the base step t each is evaluated at. Over the
// base steps with ᾱ_t > 1/(1 + η²) (ᾱ'_t > 0), every (skip+1)-th while more than 15 remain
// (skip = 7 for η > 0.75, 1 for η > 0.3, else 0), then every one:
//  * code (gen_schedule, step for step): where a kept step's ᾱ' is ≥ 1.1 times the *next
//    candidate's* (not the next kept one's, so consecutive ratios exceed 1.1: up to 1.12 for
//    η ≤ 0.75, 1.8 above, on the linear 1000-step schedule), m = ⌊log(ratio)/log 1.1⌋ + 1 log-uniform points from it towards that next
//    value, the first ⌊m/2⌋ evaluated at its step, the rest at the next; past the last candidate,
//    log-uniform points at ratio ≤ 1.1 down to 1e-4 at the last step. A candidate already below
//    1e-4 (η ≳ 5.5 on the linear 1000-step schedule) ends the grid with its step *prepended* to
//    the steps (the code's np.append(idx, map)), shifting every step by one: kept as the code has it.
//  * ratio (ours): geometric points at ratio exactly 1.1 below the previous *kept* value, the first
//    half at its step, so no two consecutive values are more than 1.1 apart.
// The code's grid costs 2423 NFE over the default η schedule, ours 2369.
struct DdsGrid {
  std::vector<double> abp;
  std::vector<int64_t> t;
};
DdsGrid dpnp_ddim_grid(const diffusion::Schedule& base, double eta, DpnpOptions::Grid kind);

// DDS: a draw of x0 given x_noisy = x0 + η w under the prior (both forms).
torch::Tensor dpnp_dds(const diffusion::EpsDenoiser& prior, const torch::Tensor& x_noisy, double eta,
                       const DpnpOptions& o, torch::Generator& gen);

Result dpnp(const SolveContext& ctx, const DpnpOptions& options);

}  // namespace tweedie::solve
