#pragma once
// Factored gradient methods for low-rank matrix estimation: X = L Rᵀ (or X Xᵀ for PSD sensing)
// with L ∈ R^{n1×r}, R ∈ R^{n2×r}, on
//   sensing     f = ½ ‖𝒜(L Rᵀ) − y‖²                 (PSD: f = ¼ ‖𝒜(X Xᵀ) − y‖²)
//   completion  f = (1/2p) ‖P_Ω(L Rᵀ) − Y‖²_F
//   rpca        f = ½ ‖L Rᵀ + S − Y‖²_F, S = T_2α(Y − L Rᵀ) re-estimated every step
// by
//   gd               L⁺ = L − (η/σ₁) ∇_L f,                R⁺ = R − (η/σ₁) ∇_R f
//   scaledgd         L⁺ = L − η ∇_L f (RᵀR)⁻¹,             R⁺ = R − η ∇_R f (LᵀL)⁻¹
//   scaledgd-lambda  L⁺ = L − η ∇_L f (RᵀR + λI)⁻¹,        R⁺ = R − η ∇_R f (LᵀL + λI)⁻¹
// from a spectral initialisation (top-r SVD of 𝒜*(y), Y/p or Y − T_α(Y)) or a small random one
// X₀ = α N(0, 1/n).
//
// Tong, Ma, Chi, "Accelerating ill-conditioned low-rank matrix estimation via scaled gradient
// descent", JMLR 22(150), 2021: the ScaledGD algorithms for sensing, robust PCA (with the sparse
// estimator T_α) and completion (with the scaled projection P_B), each from a spectral start.
// Xu, Shen, Chi, Ma, "The power of preconditioning in overparameterized low-rank matrix sensing",
// ICML 2023: ScaledGD(λ) with λ ≍ σ_min(X*) from a small random initialisation.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "tweedie/lowrank/common.h"
#include "tweedie/lowrank/problem.h"

namespace tweedie::lowrank {

// Top singular triplets by a randomized range finder with subspace iterations (Halko, Martinsson,
// Tropp 2011, Algorithms 4.4 and 5.1), or a full SVD for small dense matrices.
struct SpectralOptions {
  int64_t oversample = 10;          // extra columns of the range finder
  int64_t power_iterations = 20;    // subspace iterations (A Aᵀ applications)
  int64_t full_svd_limit = 250000;  // dense matrices with at most this many entries use a full SVD
};

struct MatrixOptions {
  Method method = Method::scaledgd;
  double eta = 0.5;               // η (MS.m, MC.m, RPCA.m: 0.5)
  int64_t rank = 0;               // fitted rank r' (0 = the problem's rank); r' > r over-parameterises
  Init init = Init::spectral;
  double init_scale = 1e-3;       // random init: α in X₀ = α N(0, 1/n) (ICML 2023 Thm. 1: "small") [INFERRED value]
  double lambda = 0;              // ScaledGD(λ) damping; 0 = lambda_factor · σ̂_r
  double lambda_factor = 1;       // λ = c_λ σ_r(spectral matrix) (ICML 2023: λ ≍ σ_min) [INFERRED constant]
  double sigma_max = 0;           // GD step η/σ_max; 0 = σ₁ of the spectral matrix (MS.m uses σ₁(X*))
  double projection = 0;          // completion: scaled projection P_B with B = c √(r/n) σ̂₁ (0 = off, as MC.m)
  StopOptions stop;
  SpectralOptions spectral;
};
nlohmann::json to_json(const MatrixOptions& options);

struct Svd {
  torch::Tensor U, S, V;  // U [n1, k], S [k] descending, V [n2, k]
};
// The top-k triplets of the n1×n2 matrix M given by its products times(B) = M B and
// transpose_times(B) = Mᵀ B. Deterministic for a given generator.
Svd top_svd(const std::function<torch::Tensor(const torch::Tensor&)>& times,
            const std::function<torch::Tensor(const torch::Tensor&)>& transpose_times, int64_t n1, int64_t n2,
            int64_t k, const SpectralOptions& options, torch::Generator& gen, const torch::TensorOptions& like);
Svd top_svd(const torch::Tensor& M, int64_t k, const SpectralOptions& options, torch::Generator& gen);

// Where an iteration starts, and the scales estimated from the spectral matrix.
struct MatrixStart {
  torch::Tensor left, right;       // symmetric problems: right is left
  double sigma_max = 0;            // σ₁ of the spectral matrix
  double sigma_r = 0;              // σ_r (r = the problem's rank) of the spectral matrix
  std::vector<double> spectrum;    // its top max(r, r') singular values (PSD: eigenvalues)
};

struct MatrixResult {
  torch::Tensor left, right;  // X̂ = left · rightᵀ
  std::vector<IterationStats> history;
  int64_t iterations = 0;
  std::string stop;           // tolerance, change, max-iterations, diverged, singular-preconditioner
  double seconds = 0;         // whole run, initialisation included
  double init_seconds = 0;
  double sigma_max = 0;       // the resolved GD step scale
  double lambda = 0;          // the resolved damping (scaledgd-lambda; 0 otherwise)
  std::vector<double> spectrum;
  torch::Tensor estimate() const { return left.mm(right.t()); }
};

// Spectral or random start. Draws from `gen` only for random init and the randomized SVD.
MatrixStart initialize(const MatrixProblem& problem, const MatrixOptions& options, torch::Generator& gen);
// Runs the iteration from `start` (which may be any factors, e.g. a re-balanced start).
MatrixResult iterate(const MatrixProblem& problem, const MatrixStart& start, const MatrixOptions& options,
                     const Monitor& monitor = {});
// initialize + iterate.
MatrixResult solve_matrix(const MatrixProblem& problem, const MatrixOptions& options, torch::Generator& gen,
                          const Monitor& monitor = {});

// Robust PCA's sparse estimator T_α(Z) (JMLR 2021, robust PCA; RPCA.m Tproj): keeps Z_ij when |Z_ij|
// is among the ⌊α n2⌋ largest of its row and among the ⌊α n1⌋ largest of its column.
torch::Tensor sparsify(const torch::Tensor& Z, double alpha);

}  // namespace tweedie::lowrank
