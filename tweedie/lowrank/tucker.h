#pragma once
// Tucker tensor completion by GD and ScaledGD: X = S ×₁ U₁ ×₂ U₂ ×₃ U₃ with core S ∈ R^{r×r×r},
// f = (1/2p) ‖P_Ω(X) − Y‖²_F, Z = P_Ω(X) − Y, and for every mode k (all from the old values)
//   Ŭ_k = ((S ×_{j≠k} U_j)_(k))ᵀ               so that X_(k) = U_k Ŭ_kᵀ
//   ScaledGD  U_k⁺ = U_k − (η/p) Z_(k) Ŭ_k (Ŭ_kᵀ Ŭ_k)⁻¹
//             S⁺   = S − (η/p) Z ×₁ ((U₁ᵀU₁)⁻¹U₁ᵀ) ×₂ ((U₂ᵀU₂)⁻¹U₂ᵀ) ×₃ ((U₃ᵀU₃)⁻¹U₃ᵀ)
//   GD        U_k⁺ = U_k − (η/p)/σ_max² Z_(k) Ŭ_k,  S⁺ = S − (η/p) Z ×₁ U₁ᵀ ×₂ U₂ᵀ ×₃ U₃ᵀ
// from the spectral start U_k = top-r eigenvectors of G − (1 − p) diag(G), G = Y_(k) Y_(k)ᵀ,
// S = (Y/p) ×₁ U₁ᵀ ×₂ U₂ᵀ ×₃ U₃ᵀ, or the random start of TC_randinit.m.
//
// Tong, Ma, Prater-Bennette, Tripp, Chi, "Scaling and scalability: provable nonconvex low-rank
// tensor estimation from incomplete measurements", JMLR 2022 (arXiv:2104.14526, 2021): ScaledGD
// for Tucker tensor completion; the updates, constants (η = 0.3, T = 2000) and the GD baseline
// follow the official tensor/TC.m and tensor/TC_randinit.m (Titan-Tong/ScaledGD).
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <array>
#include <string>
#include <vector>

#include "tweedie/lowrank/common.h"
#include "tweedie/lowrank/problem.h"

namespace tweedie::lowrank {

// T ×_k M for M [J, n_k]: mode k of size n_k becomes size J.
torch::Tensor mode_product(const torch::Tensor& T, const torch::Tensor& M, int64_t k);
// Mode-k unfolding T_(k) [n_k, ∏_{j≠k} n_j] (remaining modes in their order).
torch::Tensor unfold(const torch::Tensor& T, int64_t k);
// S ×₁ U₁ ×₂ U₂ ×₃ U₃.
torch::Tensor tucker_product(const torch::Tensor& core, const std::array<torch::Tensor, 3>& factors);

struct TuckerOptions {
  Method method = Method::scaledgd;  // gd or scaledgd
  double eta = 0.3;                  // TC.m: η = 0.3
  Init init = Init::spectral;
  double sigma_max = 0;              // GD: U-steps η/(p σ_max²); 0 = max σ₁ of the start core's unfoldings
  StopOptions stop{2000, 1e-10, 0, 1e3};  // TC.m: T = 2000
};
nlohmann::json to_json(const TuckerOptions& options);

struct TuckerFactors {
  torch::Tensor core;
  std::array<torch::Tensor, 3> factors;
};

struct TuckerResult {
  TuckerFactors x;
  std::vector<IterationStats> history;
  int64_t iterations = 0;
  std::string stop;
  double seconds = 0, init_seconds = 0;
  double sigma_max = 0;
  torch::Tensor estimate() const { return tucker_product(x.core, x.factors); }
};

// Residual in the history: ‖P_Ω(X) − Y‖_F / ‖Y‖_F.
TuckerFactors tucker_initialize(const TuckerProblem& problem, const TuckerOptions& options, torch::Generator& gen);
TuckerResult tucker_iterate(const TuckerProblem& problem, const TuckerFactors& start, const TuckerOptions& options,
                            const Monitor& monitor = {});
TuckerResult solve_tucker(const TuckerProblem& problem, const TuckerOptions& options, torch::Generator& gen,
                          const Monitor& monitor = {});

}  // namespace tweedie::lowrank
