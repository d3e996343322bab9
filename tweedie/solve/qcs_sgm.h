#pragma once
// QCS-SGM: quantized compressed sensing with score-based generative models. Meng & Kabashima,
// "Quantized Compressed Sensing with Score-Based Generative Models" (ICLR 2023), as in the
// official code (mengxiangming/QCS-SGM, models/__init__.py anneal_Langevin_dynamics_linear_inverse
// and the *_diag likelihood scores; methods.md §8.7):
//
//   x ~ U[0, 1) (on [−1, 1] images: 2U − 1);  σ_1 > ... > σ_L geometric
//   for c = 1..L:  α_c = ε (σ_c/σ_L)²
//     repeat n times:  x ← x + α_c (s(x, σ_c) + λ ∇ log p̃(y | x; σ_c)) + √(2α_c) ξ
//   return x
//
// with the prior score s(x, σ) = (D(x, σ) − x)/σ² on the VE view of the prior, and the
// pseudo-likelihood that treats the noise still in x as Gaussian through A ("diag"
// approximation): z_i = a_iᵀx is the clean a_iᵀx0 plus N(0, ‖a_i‖²σ_c²), so the channel's noise
// variance σ² becomes v_i = σ² + ‖a_i‖²σ_c²:
//   1-bit (sign)   p̃ = Φ(y_i z_i/√v_i)
//   b-bit          p̃ = Φ((u_i − z_i)/√v_i) − Φ((l_i − z_i)/√v_i)   (the bin [l_i, u_i] of y_i)
//   Gaussian       p̃ = N(y_i; z_i, v_i)                              (likelihood_score_linear_diag)
// evaluated with stable log Φ. The code instead writes the score in closed form with Φ clamped to
// [1e−6, 1 − 1e−6] (b-bit: the bin's mass clamped to ≥ 1e−6), so the weight φ/Φ of a grossly
// violated measurement (y z/√v < −4.75) decays like φ/1e−6 instead of growing like |z|/v;
// phi_clamp=1e-6 selects that form. Channels: sign (no dither), quantize, gaussian.
//
// The authors' setting (tests/parity/qcs_sgm_parity_test.cpp, docs/parity/qcs_sgm.md):
// phi_clamp=1e-6, clip_denoised=false (their NCSNv2 outputs the score; nothing is clamped).
#include "tweedie/core/options.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

struct QcsSgmOptions {
  // Noise levels, from QCS-SGM's MNIST config (configs/mnist.yml: σ 50 → 0.01 on [0, 1] data,
  // 232 levels, 5 steps each) with σ doubled for [−1, 1] images. NFE = levels · steps_each.
  double sigma_begin = 100;
  double sigma_end = 0.02;
  int64_t levels = 232;
  int64_t steps_each = 5;
  // ε: α_c = ε (σ_c/σ_L)². configs/ffhq.yml 1-bit: 5e−5 at σ_L = 0.01 on [0, 1] data, i.e.
  // α_L/σ_L² = 0.5; ×4 on [−1, 1] images. (mnist.yml's 2e−4 gives α_L/σ_L² = 2, the stability
  // limit of Langevin on the score's 1/σ² curvature.)
  double step_lr = 2e-4;
  double likelihood_scale = 1;  // λ (configs: likelihood_scale 1)
  // Clamp D(x, σ) to [−1, 1] inside the score. [INFERRED; QCS-SGM's NCSNv2 outputs a score.]
  // Our prior is an ε-network: D = x̃ − σ ε̂, so at σ = 100 a bias of 0.1 in ε̂ is an offset of
  // 10, which annealed Langevin keeps and which the network cannot undo at small σ (that would
  // take ε̂ ≫ 1). Shipped interim prior, prior-only Langevin (likelihood_scale=0, 30 levels):
  // pixels in [−12.5, −8.4] unclamped, [−0.95, 1.04] clamped. VP samplers clip x̂0 the same way.
  bool clip_denoised = true;
  // 0: the exact gradient of log p̃ (stable log Φ). c > 0: the authors' closed form
  // (models/__init__.py likelihood_score_onebit_diag / _multibit_diag) with Φ clamped to
  // [c, 1 − c] (b-bit: the bin's mass to ≥ c); their code: c = 1e−6.
  double phi_clamp = 0;

  static const SolverTable<QcsSgmOptions>& table();
};

Result qcs_sgm(const SolveContext& ctx, const QcsSgmOptions& options);

// diag(A Aᵀ) = ‖a_i‖² as [out_shape...], exactly (adjoints of unit vectors, in blocks).
torch::Tensor row_norms_squared(const op::Operator& A, const torch::Device& device);

// −log p̃(y | z; extra) per item [B] for the problem's channel, the noise variance of each
// measurement raised by `extra_variance` (shaped like one item of y). Differentiable in z.
torch::Tensor pseudo_nll(const channel::Channel& ch, const torch::Tensor& z, const torch::Tensor& y,
                         const torch::Tensor& extra_variance);

// ∇_x log p̃(y | A x) in the authors' closed form (QCS-SGM models/__init__.py), the Φ of the
// 1-bit channel clamped to [clamp, 1 − clamp], the b-bit bin mass to ≥ clamp (gaussian: the
// unclamped (y − z)/v). x [B, in_shape...] → [B, in_shape...]. Same contract as pseudo_nll.
torch::Tensor clamped_likelihood_score(const channel::Channel& ch, const op::Operator& A, const torch::Tensor& x,
                                       const torch::Tensor& y, const torch::Tensor& extra_variance, double clamp);

}  // namespace tweedie::solve
