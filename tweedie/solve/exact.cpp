#include "tweedie/solve/exact.h"

#include "tweedie/diffusion/gmm_gibbs.h"
#include "tweedie/diffusion/gmm_posterior.h"

namespace tweedie::solve {

const OptionTable<ExactOptions>& ExactOptions::table() {
  using O = ExactOptions;
  static const OptionTable<O> t({{"output", &O::output,
                                  "sample: one exact posterior draw per item; mean: the posterior mean E[x | y]",
                                  {"sample", "mean"}},
                                 {"gibbs_steps", &O::gibbs_steps,
                                  "sign channel: Gibbs sweeps per chain (the last state is the draw)", at_least(2)}});
  return t;
}

Result exact(const SolveContext& ctx, const ExactOptions& o) {
  torch::NoGradGuard no_grad;
  const CostMeter meter(ctx.prior);
  const auto& mixture = ctx.prior.options().mixture;
  require(mixture != nullptr,
          "exact: needs a Gaussian-mixture prior (--prior gmm:FILE); a network prior's posterior has no closed form");
  const op::Operator& A = *ctx.problem.op;
  require(A.linear(), "exact: needs a linear operator, got " + A.name());
  const auto* channel = ctx.problem.channel.get();
  const bool one_bit = channel != nullptr && channel->name() == "sign";
  require(channel != nullptr && (channel->name() == "gaussian" || one_bit),
          "exact: needs the gaussian channel (y = A x + sigma n, closed form) or sign (1-bit, Gibbs), got " +
              std::string(channel ? channel->spec() : "none"));
  require(!one_bit || channel->spec().find("dither=") == std::string::npos,
          "exact: the Gibbs sampler takes the sign channel without dither, got " + channel->spec());
  const int64_t D = op::numel(A.in_shape()), B = ctx.y.size(0);
  require(D == mixture->item_numel(), "exact: the operator takes items of " + std::to_string(D) +
                                          " pixels, the prior's have " + std::to_string(mixture->item_numel()));
  require(!ctx.y.is_complex(), "exact: needs real measurements");
  // A as a matrix [M, D]: its columns are A e_j
  torch::Tensor cols = A.apply(torch::eye(D, torch::TensorOptions().device(ctx.y.device()))
                                   .reshape(op::with_batch(D, A.in_shape())));
  const torch::Tensor dense = cols.reshape({D, -1}).t().to(torch::kCPU, torch::kFloat64);
  Result result;
  torch::Tensor x;
  if (one_bit) {
    diffusion::ProbitGibbsOptions go;
    go.chains = 1;
    go.warmup = o.output == "mean" ? o.gibbs_steps / 2 : o.gibbs_steps - 4;
    go.iterations = o.gibbs_steps - go.warmup;
    const auto chain = diffusion::probit_gibbs(*mixture, dense, ctx.y.reshape({B, -1}), channel->noise_std(), go, ctx.gen);
    const torch::Tensor states = chain.draws.select(1, 0);  // [B, iterations, item...]
    x = o.output == "mean" ? states.mean(1) : states.select(1, go.iterations - 1);
  } else {
    const diffusion::GmmPosterior post(*mixture, dense, ctx.y.reshape({B, -1}), channel->noise_std(), "exact");
    x = o.output == "mean" ? post.mean() : post.sample(1, ctx.gen).select(1, 0);
  }
  result.estimate = x.to(ctx.y.device(), torch::kFloat32).contiguous();
  result.steps = 1;
  Progress p{1, 1, 0, "", result.estimate, relative_misfit(A, result.estimate, ctx.y)};
  result.stopped_early = !ctx.report(p);
  result.cost = meter.finish();
  return result;
}

void enroll_exact(SolverRegistry& r) {
  const auto& t = ExactOptions::table();
  SolverEntryFns fns{[&t](const Params& p, const SolveContext& ctx) { return exact(ctx, t.parse(p)); },
                     [&t](const Params& p) { return t.to_json(t.parse(p)); }};
  fns.reference = true;
  r.add({"exact",
         "the exact posterior of a Gaussian-mixture prior (--prior gmm:FILE) under a linear operator and the "
         "gaussian channel: exact draws or the posterior mean, the reference for posterior samplers (no NFE)",
         t.params(), fns, {"exact", "exact:output=mean"}});
}

}  // namespace tweedie::solve
