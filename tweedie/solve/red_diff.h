#pragma once
// RED-diff: Mardani, Song, Kautz, Vahdat, "A Variational Perspective on Solving Inverse Problems
// with Diffusion Models" (ICLR 2024), as the official code does it (RED-diff@66482f2,
// algos/reddiff.py; methods.md §8.4). A variational posterior q = N(μ, 0) is fitted by Adam on μ
// while t walks the DDIM uniform grid downwards (ts = range(0, T, T/S), reversed):
//
//   ε ~ N(0, I);  x_t = √ᾱ_t μ + √(1−ᾱ_t) ε;  ε̂ = ε_θ(x_t, t)     (1 NFE, no clip, no backprop)
//   loss(μ) = w_t ⟨sg(ε̂ − ε), μ⟩/n + v ℓ(μ)/m                       (RED regulariser + data term)
//   μ ← Adam(μ, ∇loss)                                               (betas 0.9, 0.99)
//
// with n, m the entries of one item of x and y (the code's means), ℓ = ‖y − A μ‖²/(2σ²) (linear
// likelihood; σ = 1 is the code's form) or the channel's −log p(y | A μ), and w_t = λ·ω(σ_t) the SNR
// weighting of σ_t = √((1−ᾱ_t)/ᾱ_t) (the code's "linear": ω(σ) = σ; also sqrt, square, const).
// The means are per item (the code's are over the batch; equal at batch 1), so items stay
// independent; the code's weights on a batch of B are λ/B and v/B here (its 1/(B n), 1/(B m)).
// μ starts at the pseudo-inverse A⁺y (init=pinv, the code's H.H_pinv(y); needs an
// operator with an SVD view), at Aᵀy (init=adjoint) or at 0 (init=zeros). The result is μ after
// the last step; the code returns μ before it (output=x0_pred; docs/parity/red-diff.md).
//
// RED-diff-MO (seed 002, methods.md §5.2 [INFERRED]): after each Adam step μ ← MO(μ, σ_t).
#include <string>

#include "tweedie/core/options.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/mo.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

// The data term is LikelihoodOptions' (likelihood, sigma), with RED-diff's defaults: the linear
// form at σ = 1, the code's ‖y − A μ‖²/2.
struct RedDiffOptions : LikelihoodOptions {
  RedDiffOptions() {
    likelihood = DataTerm::kLinear;
    sigma = 1;
  }
  int64_t steps = 50;               // S = NFE (exp.num_steps default)
  double lr = 0.1;                  // Adam learning rate (the yaml's; the README example uses 0.5)
  double lambda = 0.25;             // λ, grad_term_weight
  double obs_weight = 1;            // v
  enum class Weighting { kLinear, kSqrt, kSquare, kConst };  // ω(σ_t) = σ_t | √σ_t | σ_t² | 1
  Weighting weighting = Weighting::kLinear;
  enum class Init { kPinv, kAdjoint, kZeros };  // μ's start: A⁺y | Aᵀy | 0
  Init init = Init::kPinv;
  // returned image: kMu = μ after the last Adam step (ours) | kX0Pred = the code's return value,
  // x0_pred = μ + σ_x0 n of the last iteration (σ_x0 = 0), formed before that iteration's Adam step
  enum class Output { kMu, kX0Pred };
  Output output = Output::kMu;

  static const SolverTable<RedDiffOptions>& table();
};

struct RedDiffMoOptions : RedDiffOptions, MoOptions {
  static const SolverTable<RedDiffMoOptions>& table();
};

Result red_diff(const SolveContext& ctx, const RedDiffOptions& options);
// RED-diff with MO after each Adam step (MO's own options; mo=false is red_diff).
Result red_diff_mo(const SolveContext& ctx, const RedDiffMoOptions& options);

}  // namespace tweedie::solve
