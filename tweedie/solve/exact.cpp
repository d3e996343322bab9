#include "tweedie/solve/exact.h"

#include "tweedie/diffusion/gmm_gibbs.h"
#include "tweedie/diffusion/gmm_posterior.h"

namespace tweedie::solve {

TWEEDIE_SOLVER_TABLE(ExactOptions,
    {"exact", {"exact", "exact:output=mean"},
     "the exact posterior of a Gaussian-mixture prior (--prior gmm:FILE) under a linear operator and the "
     "gaussian channel: exact draws or the posterior mean, the reference for posterior samplers (no NFE)",
     /*uses_prior=*/true, /*reference=*/true},
    {{"output", &O::output, "sample: one exact posterior draw per item; mean: the posterior mean E[x | y]",
      Choice<O::Output>{{"sample", O::Output::kSample}, {"mean", O::Output::kMean}}},
     {"gibbs_steps", &O::gibbs_steps, "sign channel: Gibbs sweeps per chain (the last state is the draw)",
      at_least(2)}})

ReferencePosterior reference_posterior(const Problem& problem) {
  const op::Operator& A = *problem.op;
  const auto* channel = problem.channel.get();
  // complex measurements, or a channel without noise (a hard constraint: no density to sample)
  if (A.complex_output() || channel == nullptr || !(channel->noise_std() > 0)) return ReferencePosterior::kNone;
  if (A.linear() && channel->name() == "gaussian" && channel->noise_std() > 0) return ReferencePosterior::kClosedForm;
  if (A.linear() && channel->name() == "sign" && channel->spec().find("dither=") == std::string::npos)
    return ReferencePosterior::kProbitGibbs;
  return ReferencePosterior::kMala;
}

const char* reference_posterior_name(ReferencePosterior kind) {
  switch (kind) {
    case ReferencePosterior::kClosedForm: return "closed form";
    case ReferencePosterior::kProbitGibbs: return "probit Gibbs";
    case ReferencePosterior::kMala: return "MALA";
    case ReferencePosterior::kNone: break;
  }
  return "none";
}

Result exact(const SolveContext& ctx, const ExactOptions& o) {
  torch::NoGradGuard no_grad;
  const CostMeter meter(ctx.prior);
  const auto& mixture = ctx.prior.options().mixture;
  require(mixture != nullptr,
          "exact: needs a Gaussian-mixture prior (--prior gmm:FILE); a network prior's posterior has no closed form");
  const op::Operator& A = *ctx.problem.op;
  const auto* channel = ctx.problem.channel.get();
  const ReferencePosterior kind = reference_posterior(ctx.problem);
  require(kind == ReferencePosterior::kClosedForm || kind == ReferencePosterior::kProbitGibbs,
          "exact: needs a linear real operator and the gaussian channel with sigma > 0 (closed form) or sign "
          "without dither (1-bit, Gibbs); got " + A.name() + " with " +
              std::string(channel ? channel->spec() : "no channel"));
  const bool one_bit = kind == ReferencePosterior::kProbitGibbs;
  const int64_t D = op::numel(A.in_shape()), B = ctx.y.size(0);
  require(D == mixture->item_numel(), "exact: the operator takes items of " + std::to_string(D) +
                                          " pixels, the prior's have " + std::to_string(mixture->item_numel()));
  const torch::Tensor dense = op::dense_matrix(A, ctx.y.device());
  Result result;
  torch::Tensor x;
  if (one_bit) {
    diffusion::ProbitGibbsOptions go;
    go.chains = 1;
    go.warmup = o.output == ExactOptions::Output::kMean ? o.gibbs_steps / 2 : o.gibbs_steps - 4;
    go.iterations = o.gibbs_steps - go.warmup;
    const auto chain = diffusion::probit_gibbs(*mixture, dense, ctx.y.reshape({B, -1}), channel->noise_std(), go, ctx.gen);
    const torch::Tensor states = chain.draws.select(1, 0);  // [B, iterations, item...]
    x = o.output == ExactOptions::Output::kMean ? states.mean(1) : states.select(1, go.iterations - 1);
  } else {
    const diffusion::GmmPosterior post(*mixture, dense, ctx.y.reshape({B, -1}), channel->noise_std(), "exact");
    x = o.output == ExactOptions::Output::kMean ? post.mean() : post.sample(1, ctx.gen).select(1, 0);
  }
  result.estimate = x.to(ctx.y.device(), torch::kFloat32).contiguous();
  result.steps = 1;
  StepReport p{1, 1, 0, "", result.estimate, relative_misfit(A, result.estimate, ctx.y)};
  result.stopped_early = !ctx.report(p);
  result.cost = meter.finish();
  return result;
}

}  // namespace tweedie::solve
