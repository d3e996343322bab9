#pragma once
// SIM-DMIS and its ablations: single-index recovery y = f(A x) with the link f unknown.
// Tang, Chen, Xue, Liu, "Learning Single Index Models with Diffusion Priors" (ICML 2025,
// arXiv 2505.21135; seed 000), as specified in methods.md §3:
//
//   x̃   = Aᵀy / m                                  spectral vector ≈ μ x*/‖x*‖ + O(1/√m) noise
//   t*  = argmin_t |σ_t/α_t − C_s/√m|               the step whose noise matches x̃'s (eq. 26)
//   SIM-DMIS   x̂ = G( G†_{t*→T}( α_{t*} C'_s x̃ ) )  partial DDIM inversion, then one sampling run
//   SIM-DMFIS  x̂ = G( G†_{0→T}( C'_s x̃ ) )           full inversion from t = 0 (ablation)
//   SIM-DMS    x̂ = G_{t*}( α_{t*} C'_s x̃ )            sampling from t* without inversion (ablation)
//
// The solver reads the operator and y only, never the channel: one code path serves 1-bit,
// logistic, cubic and any link with μ = E[f(g) g] ≠ 0.
//
// Scale of A: the theory takes A_ij ~ N(0, 1). Problems may use N(0, 1/M) (Diff-OneBit's
// convention) or any other scale, so x̃ is normalised by the entry scale of A estimated with
// Hutchinson probes, v = ‖A‖²_F/(mN) = E‖A g‖²/(mN): x̃ = Aᵀy/(m √v). For a N(0, 1) matrix this
// is exactly Aᵀy/m.
//
// The variant is the solver's identity (its registry name), not an option; sim-dms has no
// inversion_steps.
#include <string>

#include "tweedie/core/options.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

enum class SimVariant { kDmis, kDmfis, kDms };
const char* sim_variant_name(SimVariant v);  // "sim-dmis", "sim-dmfis", "sim-dms"

struct SimOptions {
  SimVariant variant = SimVariant::kDmis;
  // C_s sets t*; C'_s the amplitude. Seed 001 App. E: C_s = C'_s = 55 (seed 000's recommended
  // value, for 3×32×32 CIFAR-10) and 135 for 3×256×256; 0 = auto: 55 √(N/3072), the CIFAR-10
  // value scaled with the signal's norm (≈ 32 for Fashion-MNIST's 1×32×32).
  double c_s = 0;
  double c_s_prime = 0;            // 0 = C_s
  int64_t t_star = -1;             // base timestep to start from; −1 = from C_s (eq. 26)
  int64_t inversion_steps = 100;   // DDIM inversion steps t* → T (methods.md §3.6: 150 NFE = 100 + 50)
  int64_t sampling_steps = 50;     // DDIM (η = 0) steps of the sampling run
  bool clip_denoised = true;       // clamp x̂0 while sampling (never while inverting, §1.5)
  int64_t scale_probes = 8;        // Hutchinson probes for the entry scale of A (0: assume N(0, 1))

  // The options of `variant` (all but sim-dms take inversion_steps); parse() leaves `variant` at
  // its default: the caller sets it.
  static const OptionTable<SimOptions>& table(SimVariant variant);
};

// What SIM computes before the diffusion runs, for reports and tests.
struct SimStart {
  torch::Tensor spectral;  // x̃ = Aᵀy/(m √v)
  double entry_scale = 1;  // √v
  double c_s = 0, c_s_prime = 0;
  int64_t t_star = 0;      // base timestep
};
SimStart sim_start(const SolveContext& ctx, const SimOptions& options);

Result sim_solve(const SolveContext& ctx, const SimOptions& options);

// Enrols sim-dmis, sim-dmfis and sim-dms (one options struct, a table per variant; catalogue.cpp).
void enroll_sim(SolverRegistry& r);

}  // namespace tweedie::solve
