#include "tweedie/solve/dip.h"

#include <cmath>

#include "tweedie/core/runtime.h"

namespace tweedie::solve {

TWEEDIE_SOLVER_TABLE(DipOptions,
    {"dip", {"dip:iters=4,report_every=2,width=4,depth=2,input_channels=2"},
     "Deep Image Prior (Ulyanov et al. 2018): an untrained U-Net from a fixed random input fitted to y; no prior",
     /*uses_prior=*/false},
    OptionTable<O>::join(
        {{"iters", &O::iters, "Adam steps (default: self-diffusion's T*K, equal budgets)", at_least(1)},
         {"input_channels", &O::input_channels, "channels of the fixed random input (DIP: 32)", at_least(1)},
         {"input_scale", &O::input_scale, "input z ~ U(0, 1) * input_scale (DIP: 0.1)", positive()},
         {"input_noise", &O::input_noise, "std of noise added to z at every step (DIP's reg_noise_std)", non_negative()},
         {"patience", &O::patience, "early stopping: steps without relative improvement tol (0 = off)", at_least(0)},
         {"tol", &O::tol, "relative loss improvement that resets the patience count", non_negative()},
         {"report_every", &O::report_every, "steps per progress report", at_least(1)}},
        UntrainedNetOptions::fields<O>()))

Result dip(const SolveContext& ctx, const DipOptions& o) {
  const std::string name = "dip";
  const op::Operator& A = *ctx.problem.op;
  check_untrained_inputs(A, ctx.y, name);
  const NetShape shape = net_shape(A.in_shape(), o.depth, name);
  UntrainedBatch batch(ctx, name, shape, (o.iters + o.report_every - 1) / o.report_every);
  for (int64_t b = 0; b < ctx.y.size(0) && !batch.stopped(); ++b) {
    const torch::Tensor yb = ctx.y.slice(0, b, b + 1);
    // z ~ U(0, 1)·input_scale, fixed for the run
    const torch::Tensor z = rand({1, o.input_channels, shape.height, shape.width}, ctx.gen, yb.device()) * o.input_scale;
    UntrainedFit fit(o, shape, o.input_channels, A, yb, ctx.gen, z);
    torch::Tensor x_star;
    double best = INFINITY;
    int64_t since_best = 0;
    bool converged = false;
    for (int64_t it = 1; it <= o.iters && !converged; ++it) {
      // z' = z + input_noise·ε  (DIP's input regularisation), x* = D_θ(z'), θ ← Adam
      const torch::Tensor input = o.input_noise > 0 ? z + o.input_noise * randn(z.sizes(), ctx.gen, z.device()) : z;
      double loss = 0;
      x_star = fit.step(input, &loss);
      if (o.patience > 0) {  // early stopping on a loss plateau
        if (loss < best * (1 - o.tol)) best = loss, since_best = 0;
        converged = ++since_best > o.patience;
      }
      if ((it % o.report_every == 0 || it == o.iters || converged) &&
          !batch.report(fit, x_star, yb, converged ? "converged" : ""))
        break;
    }
    batch.done(fit, x_star);
  }
  return batch.finish();
}

}  // namespace tweedie::solve
