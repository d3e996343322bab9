#pragma once
// exact: the closed-form posterior of a Gaussian-mixture prior under a linear operator and a
// Gaussian channel, y = A x + σ n (diffusion/gmm_posterior.h has the maths). Not a method of any
// paper: the reference that posterior samplers are scored against (issue 28). It runs only where
// the posterior is exact — a "gmm:" prior, a linear real operator, the `gaussian` channel with
// σ > 0 — and refuses anything else with one line. A is made dense by applying the operator to
// the identity (D columns), so it suits items of up to a few thousand pixels.
//
//   output=sample   one exact draw x ~ p(x | y) per item (seeded; `--samples K` gives K)
//   output=mean     E[x | y], the MMSE estimate
// With the `sign` channel (1-bit, no dither) the posterior has no closed form; `exact` then runs
// the exact Gibbs sampler of diffusion/gmm_gibbs.h, one chain per item from a prior draw, for
// `gibbs_steps` sweeps: output=sample is the chain's last state, output=mean the average of its
// second half (a Monte Carlo estimate). Its convergence is checked by R̂ over many chains in
// tests/unit/gmm_posterior_test.cpp and in `tweedie posterior-eval`'s reference.
// No network evaluations: NFE 0.
#include <string>

#include "tweedie/core/options.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

// Which reference posterior a problem has under the mixture prior (one rule, used by `exact` and by
// `tweedie posterior-eval`):
//   kClosedForm   a linear real operator and the gaussian channel with σ > 0 (gmm_posterior.h)
//   kProbitGibbs  a linear real operator and the sign channel without dither (gmm_gibbs.h)
//   kMala         any other real operator and channel: MALA on the exact log-posterior (gmm_mala.h),
//                 trusted only as far as its R̂ says
//   kNone         complex measurements, or a noiseless channel (noise_std 0: a hard constraint)
enum class ReferencePosterior { kNone, kClosedForm, kProbitGibbs, kMala };
ReferencePosterior reference_posterior(const Problem& problem);
const char* reference_posterior_name(ReferencePosterior kind);  // "closed form", "probit Gibbs", "MALA", "none"

struct ExactOptions {
  enum class Output { kSample, kMean };  // one exact draw per item | the posterior mean
  Output output = Output::kSample;
  int64_t gibbs_steps = 300;      // sign channel: Gibbs sweeps per chain

  static const SolverTable<ExactOptions>& table();
};

Result exact(const SolveContext& ctx, const ExactOptions& options);

}  // namespace tweedie::solve
