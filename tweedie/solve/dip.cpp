#include "tweedie/solve/dip.h"

#include <cmath>

#include "tweedie/core/runtime.h"

namespace tweedie::solve {

DipOptions DipOptions::from_params(const Params& p) {
  DipOptions o;
  o.iters = p.integer("iters");
  o.input_channels = p.integer("input_channels");
  o.input_scale = p.real("input_scale");
  o.input_noise = p.real("input_noise");
  o.patience = p.integer("patience");
  o.tol = p.real("tol");
  o.report_every = p.integer("report_every");
  o.net = UntrainedNetOptions::from_params(p);
  if (o.iters < 1 || o.report_every < 1) p.fail("iters and report_every must be >= 1");
  if (o.input_channels < 1) p.fail("input_channels must be >= 1");
  if (o.input_scale <= 0 || o.input_noise < 0) p.fail("input_scale must be > 0 and input_noise >= 0");
  if (o.patience < 0 || o.tol < 0) p.fail("patience and tol must be >= 0");
  return o;
}

nlohmann::json DipOptions::to_json() const {
  nlohmann::json j = {{"iters", iters},     {"input_channels", input_channels}, {"input_scale", input_scale},
                      {"input_noise", input_noise}, {"patience", patience},   {"tol", tol},
                      {"report_every", report_every}};
  j.update(net.to_json());
  return j;
}

Result dip(const SolveContext& ctx, const DipOptions& o) {
  const std::string name = "dip";
  const op::Operator& A = *ctx.problem.op;
  check_untrained_inputs(A, ctx.y, name);
  const NetShape shape = net_shape(A.in_shape(), o.net.depth, name);
  UntrainedBatch batch(ctx, name, shape, (o.iters + o.report_every - 1) / o.report_every);
  for (int64_t b = 0; b < ctx.y.size(0) && !batch.stopped(); ++b) {
    const torch::Tensor yb = ctx.y.slice(0, b, b + 1);
    // z ~ U(0, 1)·input_scale, fixed for the run
    const torch::Tensor z = rand({1, o.input_channels, shape.height, shape.width}, ctx.gen, yb.device()) * o.input_scale;
    UntrainedFit fit(o.net, shape, o.input_channels, A, yb, ctx.gen, z);
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

void enroll_dip(SolverRegistry& r) {
  const DipOptions d;
  std::vector<ParamSpec> params = {
      {"iters", std::to_string(d.iters), "Adam steps (default: self-diffusion's T*K, equal budgets)"},
      {"input_channels", std::to_string(d.input_channels), "channels of the fixed random input (DIP: 32)"},
      {"input_scale", format_number(d.input_scale), "input z ~ U(0, 1) * input_scale (DIP: 0.1)"},
      {"input_noise", format_number(d.input_noise), "std of noise added to z at every step (DIP's reg_noise_std)"},
      {"patience", std::to_string(d.patience), "early stopping: steps without relative improvement tol (0 = off)"},
      {"tol", format_number(d.tol), "relative loss improvement that resets the patience count"},
      {"report_every", std::to_string(d.report_every), "steps per progress report"}};
  for (auto& p : UntrainedNetOptions::params(d.net)) params.push_back(p);
  SolverEntryFns fns{[](const Params& p, const SolveContext& ctx) { return dip(ctx, DipOptions::from_params(p)); },
                     [](const Params& p) { return DipOptions::from_params(p).to_json(); },
                     /*uses_prior=*/false};
  r.add({"dip", "Deep Image Prior (Ulyanov et al. 2018): an untrained U-Net from a fixed random input fitted to y; no prior",
         params, fns, {"dip:iters=4,report_every=2,width=4,depth=2,input_channels=2"}});
}

}  // namespace tweedie::solve
