#pragma once
// Measurements Optimization (MO), the plug-and-play module of seed 002: Tianyu Chen, Zhendong
// Wang, Mingyuan Zhou et al., "Enhancing and Accelerating Diffusion-Based Inverse Problem
// Solving through Measurements Optimization" (arXiv 2412.03941); methods.md §5. No official code
// exists; the structure follows the paper's Algorithm 1 as methods.md §5.1 records it [INFERRED
// parts marked there]. At a diffusion step of noise level σ_i, with x̂0 the current clean estimate:
//
//   x ← x̂0;  N times:  x ← x − η ∇ₓ f(x) + √(2η) γ z,   z ~ N(0, I)      (SGLD on the data term)
//   with η = mo_lr / L, L the Lipschitz constant of ∇f: 2 λ_max(JᵀJ) for f = ‖y − A x‖², or
//   λ_max(JᵀJ)/s² for a channel of scale s [OURS: the paper tunes η per task; in units of 1/L one
//   default, mo_lr = 0.5, is a stable descent on every operator, and SR×4's ‖A‖² ≈ 1/16 no longer
//   needs an η 16× another task's]. λ_max is estimated once per solve by power iteration (20
//   products, counted as likelihood gradients): anywhere for a linear operator, at the first
//   estimate x̂0 for a nonlinear one.
//   x' = x + σ_p z',  σ_p = max(σ_i, σ_min)                                 (re-noise, VE scale)
//   return D(x'; σ_p)                                                       (project; 1 NFE)
//
// f is the problem channel's −log p(y | A x) (mo_likelihood=channel, the default; for Gaussian
// noise ‖y − A x‖²/(2σ_y²)) or the paper's literal squared residual ‖y − A(x)‖²
// (mo_likelihood=linear at mo_sigma = 1/√2); no backprop through the network either way. [OURS: the default] The
// paper's f has no 1/(2σ_y²), so its γ = 1 SGLD draws from exp(−‖y − A x‖²), a residual of std
// 1/√2 per measurement: at σ_y = 0.05 that drowns the data (measured: DPS-MO on SR×4 fell from
// 13.5 dB at γ = 0 to −0.1 dB at γ = 1). With the channel's NLL, γ = 1 is Langevin on the true
// likelihood, and γ = 0 is the same descent either way (η is in units of 1/L).
//
// MO is written once, as a Denoiser wrapper: D_MO(x̃; σ) = MO(D(x̃; σ), σ). DPS-MO is the
// EDM/Karras Euler sampler over D_MO (§5.2); RED-diff-MO applies MO to RED-diff's μ after each
// Adam step (red_diff.h). With mo=false both are their plain methods (the ablation).
#include <torch/torch.h>

#include <string>
#include <vector>

#include "tweedie/core/options.h"
#include "tweedie/diffusion/denoiser.h"
#include "tweedie/diffusion/edm.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

struct MoOptions {
  bool mo = true;              // switch the module on
  int64_t mo_steps = 20;       // N: SGLD steps per diffusion step
  double mo_lr = 0.5;          // η·L: SGLD step size in units of 1/L (L: Lipschitz constant of ∇f) on f
  // γ in [0, 1]: SGLD noise scale. 0 (gradient descent) by default [OURS, measured]: with γ = 1
  // the SGLD noise random-walks in A's null space, where the likelihood is flat, and only the
  // projection's σ_i bounds it, so at small σ_i it stays: on seed 002's eight tasks at 100 NFE
  // (results/seed002/mo-quick) γ = 1 lost 1.7–14.2 dB to γ = 0 with DPS-MO on seven of eight
  // tasks (SR×4: 4.2 against 18.5 dB; HDR gained 1.2) and 2.1–18.1 dB with RED-diff-MO on all
  // eight.
  double mo_noise = 0;
  double mo_sigma_min = 0;     // floor of the projection level: σ_p = max(σ_i, σ_min)
  bool mo_project = true;      // re-noise and denoise after the SGLD steps (1 NFE)
  DataTerm mo_likelihood = DataTerm::kChannel;  // f: −log p(y | A x) | linear: ‖y − A x‖²/(2σ²)
  double mo_sigma = 0.7071067811865476;  // σ of f's linear form (likelihood.h); √½: the paper's ‖y − A x‖²

  // The option fields, for the tables of the solvers that embed MO (derived structs).
  template <class O>
  static std::vector<typename OptionTable<O>::Field> fields() {
    return {{"mo", &O::mo, "apply the MO module (false: the plain method, MO's ablation)"},
            {"mo_steps", &O::mo_steps, "N: SGLD steps on the data term per diffusion step", at_least(0)},
            {"mo_lr", &O::mo_lr, "η L: SGLD step size in units of 1/L, L = Lipschitz constant of ∇f (< 1: stable descent)", positive()},
            {"mo_noise", &O::mo_noise, "γ: SGLD noise scale (0 = gradient descent)", in_range(0, 1)},
            {"mo_sigma_min", &O::mo_sigma_min, "projection level floor: σ_p = max(σ_i, mo_sigma_min)", non_negative()},
            {"mo_project", &O::mo_project, "re-noise to σ_p and denoise after the SGLD steps (1 NFE)"},
            {"mo_likelihood", &O::mo_likelihood, "MO's data term f: the channel's NLL (Gaussian: ‖y − A x‖²/(2σ²)) or "
                                                 "y = A x + mo_sigma n with the link ignored", data_term_words()},
            sigma_field<O>("mo_sigma", &O::mo_sigma, "σ",
                           "; used by mo_likelihood=linear; 0.7071 gives the paper's literal ‖y − A x‖²")};
  }
  // "" or why the combination is invalid (mo on with N = 0 steps).
  std::string check() const;
  // "" or why the projection floor is invalid: at or above the sampler's largest noise level
  // `sigma_max` it would re-noise every step above the start.
  std::string floor_check(double sigma_max) const;
};

// The data term of MO for `mo_likelihood`: "linear", f = ‖y − A x‖²/(2σ²) (a Gaussian channel of
// σ = mo_sigma over the problem's operator; the paper's ‖y − A x‖² at σ = 1/√2), or "channel",
// the problem's own NLL.
Likelihood mo_likelihood(const SolveContext& ctx, const MoOptions& o, const std::string& solver);

// η = mo_lr / L for MO's data term `data` at `at` [B, ...]; counts the power iterations in `data`.
double mo_step_size(const Likelihood& data, const MoOptions& o, const torch::Tensor& at, torch::Generator& gen);

// MO(x̂0, σ) as above with SGLD step η; `base` projects. Counts its gradients in `data` and NFE in
// `base`.
torch::Tensor measurements_optimization(const diffusion::Denoiser& base, const Likelihood& data,
                                        const torch::Tensor& x0, double sigma, double eta, const MoOptions& o,
                                        torch::Generator& gen);

// D_MO(x̃; σ) = MO(D(x̃; σ), σ). Its NFE are the base denoiser's (both evaluations of a step).
// η is found at the first call (mo_step_size at its x̂0) and kept.
class MoDenoiser final : public diffusion::Denoiser {
 public:
  MoDenoiser(const diffusion::Denoiser& base, const Likelihood& data, MoOptions o, torch::Generator& gen)
      : base_(base), data_(data), o_(std::move(o)), gen_(gen) {}
  torch::Tensor denoise(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const override;
  using Denoiser::denoise;
  double sigma_min() const override { return base_.sigma_min(); }
  double sigma_max() const override { return base_.sigma_max(); }
  int64_t nfe() const override { return base_.nfe(); }
  int64_t images() const override { return base_.images(); }

 private:
  const diffusion::Denoiser& base_;
  const Likelihood& data_;
  MoOptions o_;
  torch::Generator& gen_;
  mutable double eta_ = 0;
};

// ---- DPS-MO: the EDM Euler sampler over D_MO (methods.md §5.2) ----------------------------------

struct DpsMoOptions : diffusion::EdmOptions, MoOptions {
  static const SolverTable<DpsMoOptions>& table();
};

Result dps_mo(const SolveContext& ctx, const DpsMoOptions& options);

}  // namespace tweedie::solve
