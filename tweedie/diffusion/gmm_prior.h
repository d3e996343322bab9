#pragma once
// A Gaussian-mixture data prior whose denoiser is exact: the control prior of issue 13.
//
// Model (over the D pixels of one item, flattened):
//   x0 ~ Σ_k π_k N(μ_k, Σ_k),   Σ_k = U C_k Uᵀ + s_k² (I − U Uᵀ)
// on the "active" pixels; U [Da, d] is a shared orthonormal basis (the data's top-d principal
// directions), C_k = V_k diag(λ_k) V_kᵀ a full d×d covariance per component, and s_k² an
// isotropic residual variance outside span(U). Pixels that are constant over the training set
// (Fashion-MNIST's zero padding from 28 to 32 px) are inactive: fixed at their value, with zero
// variance, so they carry no information about the rest.
//
// For x̃ = x0 + σ n, n ~ N(0, I) (the VE view of the diffusion, docs/architecture.md §Contracts 3),
// p_σ(x̃) = Σ_k π_k N(x̃; μ_k, Σ_k + σ² I) and Tweedie's formula is exact:
//   E[x0 | x̃] = x̃ + σ² ∇ log p_σ(x̃) = x̃ − σ² h,   h = Σ_k w_k(x̃) (Σ_k + σ² I)⁻¹ (x̃ − μ_k),
// with responsibilities w_k ∝ π_k N(x̃; μ_k, Σ_k + σ² I) and
//   (Σ_k + σ² I)⁻¹ r = U V_k diag(1/(λ_k+σ²)) V_kᵀ Uᵀ r + (r − U Uᵀ r)/(s_k² + σ²).
// The ε-predictor on a discrete schedule is E[ε | x_t] = σ h (no cancellation at small σ).
// Everything is float64 and differentiable in x̃ (DPS-style guidance works through it).
//
// Fitting (fit_gmm): PCA of the active pixels for U, then EM for π, μ, C, s² with the basis
// fixed (the M-step is closed form for this structure: C_k is the weighted scatter of Uᵀ(x−μ_k),
// s_k² the weighted residual energy over Da − d). Components are seeded per class label by
// k-means in the PCA coordinates.
#include <torch/torch.h>

#include <map>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include "tweedie/diffusion/denoiser.h"
#include "tweedie/diffusion/schedule.h"

namespace tweedie::diffusion {

struct GaussianMixture {
  std::vector<int64_t> item_shape;  // e.g. {1, 32, 32}
  torch::Tensor fixed;        // [D] float64: each pixel's value where inactive (0 elsewhere)
  torch::Tensor active;       // [Da] int64: indices of the modelled pixels into the flat item
  torch::Tensor log_weights;  // [K] log π_k (normalised)
  torch::Tensor means;        // [K, Da]
  torch::Tensor basis;        // [Da, d], orthonormal columns
  torch::Tensor eigvals;      // [K, d], λ_k > 0
  torch::Tensor eigvecs;      // [K, d, d], columns V_k (orthonormal)
  torch::Tensor residual;     // [K], s_k² > 0 (unused when d = Da)

  int64_t components() const { return means.size(0); }
  int64_t dims() const { return basis.size(1); }
  int64_t active_pixels() const { return active.size(0); }
  int64_t item_numel() const;
  int64_t num_parameters() const;

  // Throws InputError (prefixed `where`) unless every tensor has the shape, dtype and range the
  // model needs: finite, λ > 0, s² > 0, weights normalised, U and V orthonormal, indices in range.
  void validate(const std::string& where) const;

  // E[x0 | x̃ = x0 + σ n] for x̃ [B, item...] and σ (one value or B values, ≥ 0); float64,
  // shaped like x̃. Differentiable in x̃.
  torch::Tensor posterior_mean(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const;
  // σ h = E[n | x̃] (the ε-prediction), float64, shaped like x̃; σ > 0.
  torch::Tensor posterior_noise(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const;
  // log p_σ(x̃) of the active pixels [B] (the inactive ones are a constant factor).
  torch::Tensor log_density(const torch::Tensor& x_tilde, const torch::Tensor& sigma) const;
  // log π_k + log N(x_a; μ_k, Σ_k) [B] and its gradient −Σ_k⁻¹ (x_a − μ_k) [B, Da] for active
  // pixels xa [B, Da] (float64, CPU) and one component per row, k [B] int64: the prior's half of a
  // Langevin or MALA step on the pair (x, k) of an image and its component (gmm_mala.h).
  std::pair<torch::Tensor, torch::Tensor> component_log_density_and_score(const torch::Tensor& xa,
                                                                          const torch::Tensor& k) const;
  // log π_k + log N(x; μ_k, Σ_k) at the active pixels, [B, K]: its softmax over k is p(k | x), which
  // is also p(k | x, y) under any channel (y depends on x alone).
  torch::Tensor component_logits(const torch::Tensor& x) const;
  // n draws x0 ~ p [n, item...], float64.
  torch::Tensor sample(int64_t n, torch::Generator& gen) const;
};

struct GmmFitOptions {
  int64_t components_per_class = 2;  // K = classes × this (no labels: this many in all)
  int64_t dims = 64;                 // d, the PCA subspace's dimension
  int64_t iterations = 30;           // EM iterations after the k-means seeding
  double variance_floor = 1e-4;      // added to every λ and s² (keeps Σ_k well conditioned)
  double constant_tolerance = 0.0;   // a pixel whose training variance is ≤ this is fixed
};

struct GmmFit {
  GaussianMixture model;
  std::vector<double> log_likelihood;  // mean log p(x) per image after each EM iteration
};

// The distinct values of the component indices k (any shape, int64), ascending: a sampler that
// holds one component per row works on the rows of each in turn.
std::vector<int64_t> distinct_components(const torch::Tensor& k);

// Fits the mixture to x [N, item...] (float, any range); labels [N] int64 in [0, classes) seed
// the components per class (undefined: one k-means over all). All randomness from `gen`.
GmmFit fit_gmm(const torch::Tensor& x, const torch::Tensor& labels, const GmmFitOptions& options,
               torch::Generator& gen);

// safetensors with the tensors above (float64) and metadata "tweedie.gmm" (item shape, fit
// options and provenance). load_gmm checks names, shapes and values (validate) and names the
// file in every error.
void save_gmm(const std::string& path, const GaussianMixture& model,
              const std::map<std::string, std::string>& metadata = {});
GaussianMixture load_gmm(const std::string& path);

// The exact ε-predictor on `base`: the model timestep t (integer or fractional) → σ(t) by
// t_to_sigma (inverting EpsDenoiser's sigma_to_t), x̃ = x_t √(1+σ²), ε = E[n | x̃].
EpsModel gmm_eps_model(const Schedule& base, std::shared_ptr<const GaussianMixture> model);

}  // namespace tweedie::diffusion
