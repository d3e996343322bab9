#pragma once
// The vocabulary shared by the low-rank solvers: which update rule, which initialisation, what
// one iteration reports, and when to stop. Header only.
//
// Methods (Tong, Ma, Chi, "Accelerating ill-conditioned low-rank matrix estimation via scaled
// gradient descent", JMLR 22(150), 2021, arXiv:2005.08898; Xu, Shen, Chi, Ma, "The power of
// preconditioning in overparameterized low-rank matrix sensing", ICML 2023, arXiv:2302.01186):
//   gd               vanilla gradient descent on the factors, step η/σ_max (the baseline of JMLR 2021's experiments)
//   scaledgd         preconditioned by (RᵀR)⁻¹ and (LᵀL)⁻¹ (JMLR 2021, the ScaledGD update)
//   scaledgd-lambda  preconditioned by (XᵀX + λI)⁻¹ (ICML 2023, the ScaledGD(λ) update)
// The PDFs could not be read here (../shared/docs/methods.md §0.2), so the citations name
// algorithms and sections rather than equation numbers.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tweedie/core/error.h"

namespace tweedie::lowrank {

enum class Method { gd, scaledgd, scaledgd_lambda };
enum class Init { spectral, random };

inline std::string method_name(Method m) {
  switch (m) {
    case Method::gd: return "gd";
    case Method::scaledgd: return "scaledgd";
    case Method::scaledgd_lambda: return "scaledgd-lambda";
  }
  return "?";
}

inline Method parse_method(const std::string& name) {
  for (Method m : {Method::gd, Method::scaledgd, Method::scaledgd_lambda})
    if (method_name(m) == name) return m;
  throw InputError("unknown method '" + name + "' (use gd, scaledgd or scaledgd-lambda)");
}

inline std::string init_name(Init i) { return i == Init::spectral ? "spectral" : "random"; }

inline Init parse_init(const std::string& name) {
  if (name == "spectral") return Init::spectral;
  if (name == "random") return Init::random;
  throw InputError("unknown initialisation '" + name + "' (use spectral or random)");
}

// One row of a solver's history, for the iterate X_t after `iteration` updates (0 = start).
struct IterationStats {
  int64_t iteration = 0;
  double error = NAN;     // ‖X_t − X*‖_F / ‖X*‖_F; NaN when the truth is unknown
  double residual = NAN;  // data misfit at X_t relative to the data norm (task-specific, see the solver)
  double change = NAN;    // ‖X_t − X_{t−1}‖_F / ‖X_t‖_F; NaN at t = 0
  double seconds = 0;     // wall time since the solver started, initialisation included
};

// Receives every row as it is produced (progress lines, live plots) and returns false to stop the
// run after it (stop reason "stopped"), as a solver's monitor does (solve/solver.h). Never prints.
using Monitor = std::function<bool(const IterationStats&)>;

struct StopOptions {
  int64_t max_iterations = 1000;  // MS.m / MC.m / RPCA.m: T = 1000
  double tolerance = 1e-10;       // stop when the relative error to the truth is below (0 = off)
  double change_tolerance = 0;    // stop when the relative change of X is below (0 = off)
  double divergence = 1e3;        // stop when the error (or residual, without truth) exceeds (MS.m thresh_up)
};

// Why a run should stop after producing `s`, or "" to go on.
inline std::string stop_reason(const IterationStats& s, const StopOptions& o) {
  double watch = std::isnan(s.error) ? s.residual : s.error;
  if (!std::isfinite(s.residual) || (!std::isnan(s.error) && !std::isfinite(s.error)) || watch > o.divergence)
    return "diverged";
  if (o.tolerance > 0 && s.error < o.tolerance) return "tolerance";
  if (o.change_tolerance > 0 && s.change < o.change_tolerance) return "change";
  if (s.iteration >= o.max_iterations) return "max-iterations";
  return "";
}

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Runs init() and then run(start, t0) on one clock, so the history's seconds include the
// initialisation, and records the initialisation's share in result.init_seconds.
template <typename InitFn, typename RunFn>
auto solve_timed(InitFn init, RunFn run) {
  auto t0 = Clock::now();
  auto start = init();
  double init_seconds = seconds_since(t0);
  auto result = run(start, t0);
  result.init_seconds = init_seconds;
  return result;
}

// Appends `s` to the history, shows it to the monitor, and says why to stop ("" = go on).
inline std::string record(std::vector<IterationStats>& history, const IterationStats& s, const Monitor& monitor,
                          const StopOptions& o) {
  history.push_back(s);
  const bool go_on = !monitor || monitor(s);
  const std::string why = stop_reason(s, o);
  return why.empty() && !go_on ? "stopped" : why;
}

inline void validate(const StopOptions& o) {
  require(o.max_iterations >= 0, "max iterations must be >= 0");
  require(o.tolerance >= 0 && o.change_tolerance >= 0, "tolerances must be >= 0");
  require(o.divergence > 0, "the divergence threshold must be > 0");
}

}  // namespace tweedie::lowrank
