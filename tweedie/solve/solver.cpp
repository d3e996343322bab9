#include "tweedie/solve/solver.h"

#include <cmath>

#include "tweedie/core/memory.h"
#include "tweedie/diffusion/schedule.h"

namespace tweedie::solve {

nlohmann::json Cost::to_json() const {
  nlohmann::json by_activity = activity.to_json();
  by_activity["other"] = std::max(0.0, seconds - activity.total());
  return {{"nfe", nfe},
          {"network_grads", network_grads},
          {"likelihood_grads", likelihood_grads},
          {"seconds", seconds},
          {"peak_rss_bytes", peak_rss_bytes},
          {"seconds_by_activity", by_activity}};
}

CostMeter::CostMeter(const diffusion::EpsDenoiser& prior)
    : prior_(prior), nfe0_(prior.nfe()), start_(std::chrono::steady_clock::now()), activity0_(activity_times()) {
  reset_peak_resident();
}

int64_t CostMeter::nfe() const { return prior_.nfe() - nfe0_; }

Cost CostMeter::finish(int64_t network_grads, int64_t likelihood_grads) const {
  Cost c;
  c.nfe = nfe();
  c.network_grads = network_grads;
  c.likelihood_grads = likelihood_grads;
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  c.peak_rss_bytes = peak_resident_bytes();
  c.activity = activity_times() - activity0_;
  return c;
}

const diffusion::EpsDenoiser& no_prior() {
  static const diffusion::EpsDenoiser* none = new diffusion::EpsDenoiser(
      [](const torch::Tensor&, const torch::Tensor&) -> torch::Tensor {
        throw InternalError("a solver enrolled with uses_prior = false evaluated the prior");
      },
      diffusion::make_schedule("linear", 1000));
  return *none;
}

torch::Tensor per_item(const torch::Tensor& v, const torch::Tensor& like) {
  std::vector<int64_t> col(like.dim(), 1);
  col[0] = like.size(0);
  return v.view(col);
}

bool step_done(const SolveContext& ctx, const CostMeter& meter, Result& result, int64_t step, int64_t num_steps,
               const char* phase, const torch::Tensor& x0, const op::Operator& A, const torch::Tensor* state) {
  ++result.steps;
  const double misfit = ctx.monitor ? relative_misfit(A, x0, ctx.y) : std::nan("");
  if (ctx.report({step, num_steps, meter.nfe(), phase, x0, misfit, state})) return true;
  result.stopped_early = step < num_steps;
  return false;
}

double relative_misfit(const op::Operator& A, const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  auto r = (A.apply(x) - y).flatten(1), yf = y.flatten(1);
  if (r.is_complex()) r = torch::view_as_real(r).flatten(1), yf = torch::view_as_real(yf).flatten(1);
  auto num = r.to(torch::kFloat64).norm(2, 1), den = yf.to(torch::kFloat64).norm(2, 1).clamp_min(1e-300);
  return (num / den).mean().item<double>();
}

void check_measurements(const Problem& problem, const torch::Tensor& y) {
  require(y.defined(), "y: no measurements given");
  const op::Operator& A = *problem.op;
  A.check_output(y);  // "<op>: measurement has shape [...], expected [B, ...]"
  require(y.is_complex() == A.complex_output(),
          std::string("y: ") + (y.is_complex() ? "complex" : "real") + " measurements, but " + A.name() + " gives " +
              (A.complex_output() ? "complex" : "real") + " ones");
  require(y.is_floating_point() || y.is_complex(),
          "y: measurements of integer type " + std::string(c10::toString(y.scalar_type())) + "; give floats");
  if (problem.channel) problem.channel->validate(y);  // finite, and possible (±1 for 1-bit)
  else require(torch::isfinite(y.is_complex() ? torch::view_as_real(y) : y).all().item<bool>(),
               "y: measurements contain NaN or Inf");
}

void require_finite(const torch::Tensor& x, const std::string& solver, int64_t step) {
  auto v = x.is_complex() ? torch::view_as_real(x) : x;
  if (!torch::isfinite(v).all().item<bool>())
    throw InputError(solver + ": the estimate is no longer finite at step " + std::to_string(step) +
                     " (diverged: lower the step size / learning rate, or check the problem's scale)");
}

Params resolve_solver(const std::string& name, const std::vector<std::string>& settings) {
  Spec spec{name, {}};
  for (auto& s : settings) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError("--set '" + s + "': expected KEY=VALUE (see 'tweedie solve --list')");
    spec.args.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  return solver_registry().resolve(spec);
}

}  // namespace tweedie::solve
