#pragma once
// The solver contract (docs/architecture.md, contract 5). A solver is a free function
//
//   Result diff_onebit(const SolveContext&, const DiffOneBitOptions&);
//
// over a problem (operator + channel), its measurements y, a diffusion prior and an explicit
// generator. It returns the estimate and its cost, and reports every step to a Monitor (which
// draws progress, writes previews, or stops the run); a solver never prints.
//
// Solvers are enrolled in the solver registry by name ("diff-onebit", "sim-dmis", ...) with
// their parameters and defaults, so `tweedie solve --method NAME --set key=value`, the
// experiment runner and the shared solver tests reach every one of them the same way. Each
// declares its options once, with its card, in a SolverTable (below); catalogue.cpp enrols them.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "tweedie/core/activity.h"
#include "tweedie/core/options.h"
#include "tweedie/core/registry.h"
#include "tweedie/diffusion/denoiser.h"
#include "tweedie/problem.h"

namespace tweedie::solve {

// What a run cost. NFE as methods.md §1.7: one network forward on a batch is one NFE;
// backprops through the network are counted apart (they cost about 2 NFE each).
struct Cost {
  int64_t nfe = 0;               // network forward passes (a batch counts once)
  int64_t network_grads = 0;     // backward passes through the network (DPS-style guidance)
  int64_t likelihood_grads = 0;  // gradients of −log p(y | x) (each costs one A and one Aᵀ)
  double seconds = 0;            // wall time of the solve
  int64_t peak_rss_bytes = -1;   // process resident-set high-water mark during the solve
  // Where `seconds` went (core/activity.h): network forward passes, backward passes through the
  // network, likelihood gradients (their operator products included); the rest is "other".
  ActivityTimes activity;
  // {"nfe", ..., "seconds_by_activity": {"network": s, ..., "other": s}}.
  nlohmann::json to_json() const;
};

struct Result {
  torch::Tensor estimate;  // [B, in_shape...] in the image domain ([-1, 1] for images)
  Cost cost;
  int64_t steps = 0;       // outer steps taken
  bool stopped_early = false;
};

// One outer step as a solver reports it (StepReport, not tweedie::Progress: that is the terminal
// progress bar of core/progress.h).
struct StepReport {
  int64_t step = 0;       // 1-based outer step
  int64_t num_steps = 0;  // outer steps planned
  int64_t nfe = 0;        // NFE so far
  std::string phase;      // "sample", "invert", "langevin", ... ("" when there is one phase)
  // Current estimate of x0 [B, ...] (undefined if the step has none) and its data misfit
  // ‖y − A x̂0‖ / ‖y‖ per item, averaged (NaN when not computed).
  const torch::Tensor& x0;
  double misfit;
  // The sampler's state after the step (the x_{t'} the next step starts from; HQS loop), or null
  // where a solver has none to show.
  const torch::Tensor* state = nullptr;
};
// Return false to stop the solver after this step.
using Monitor = std::function<bool(const StepReport&)>;

// Everything a solver may read. `problem.channel` may be null for link-agnostic solvers
// (SIM-DMIS must never read it; see contract 2).
struct SolveContext {
  const Problem& problem;
  const torch::Tensor& y;                 // [B, out_shape...] on the working device
  const diffusion::EpsDenoiser& prior;    // ε-network adapter with its discrete base schedule
  torch::Generator& gen;                  // all randomness
  Monitor monitor;                        // may be empty
  // Calls the monitor (if any); false means stop.
  bool report(const StepReport& p) const { return !monitor || monitor(p); }
};

// Measures a solve: wall time and its activities, the prior's NFE and the peak resident set
// from construction.
class CostMeter {
 public:
  explicit CostMeter(const diffusion::EpsDenoiser& prior);
  int64_t nfe() const;
  Cost finish(int64_t network_grads = 0, int64_t likelihood_grads = 0) const;

 private:
  const diffusion::EpsDenoiser& prior_;
  int64_t nfe0_;
  std::chrono::steady_clock::time_point start_;
  ActivityTimes activity0_;
};

// The prior of a SolveContext for solvers that use none (uses_prior = false): evaluating it is an
// InternalError. Its NFE stays 0, so a CostMeter over it measures time and memory only.
const diffusion::EpsDenoiser& no_prior();

// ---- helpers shared by solvers -----------------------------------------------------------------

// ‖y − A x‖ / ‖y‖ per item, averaged over the batch (real or complex y). No gradient.
double relative_misfit(const op::Operator& A, const torch::Tensor& x, const torch::Tensor& y);

// A per-item tensor v of shape [B] viewed as [B, 1, ..., 1], to broadcast against `like` ([B, ...]).
torch::Tensor per_item(const torch::Tensor& v, const torch::Tensor& like);

// InputError naming the solver unless the estimate is finite (divergence, NaN in the network).
void require_finite(const torch::Tensor& x, const std::string& solver, int64_t step);

// One outer step is done: counts it in `result` and reports it to the monitor with x0 and its
// misfit ‖y − A x0‖/‖y‖ (computed only when a monitor listens), and the sampler's `state` where
// given. False when the monitor stops the run; `result.stopped_early` is then set unless this was
// the last step.
bool step_done(const SolveContext& ctx, const CostMeter& meter, Result& result, int64_t step, int64_t num_steps,
               const char* phase, const torch::Tensor& x0, const op::Operator& A,
               const torch::Tensor* state = nullptr);

// ---- registry ----------------------------------------------------------------------------------

// A solver entry turns validated parameters into a run. `describe` gives the resolved options
// (every default filled in) for reports.
// InputError (one line) unless y is a measurement of `problem`: [B, out_shape...], real or
// complex as the operator gives, finite, and possible under the channel (e.g. ±1 for 1-bit).
// Every run through the registry checks it first, so a C++ caller's wrong y never reaches LibTorch;
// the Python module checks it before loading a prior.
void check_measurements(const Problem& problem, const torch::Tensor& y);

struct SolverEntryFns {
  using RunFn = std::function<Result(const Params&, const SolveContext&)>;
  using DescribeFn = std::function<nlohmann::json(const Params&)>;
  SolverEntryFns(RunFn run_fn, DescribeFn describe_fn, bool prior = true)
      : run([f = std::move(run_fn)](const Params& p, const SolveContext& ctx) {
          check_measurements(ctx.problem, ctx.y);
          return f(p, ctx);
        }),
        describe(std::move(describe_fn)),
        uses_prior(prior) {}
  RunFn run;
  DescribeFn describe;
  // False for methods that bring their own untrained network (self-diffusion, DIP): callers
  // then load no prior and pass no_prior().
  bool uses_prior = true;
  // A closed-form reference rather than a method (`exact`): it runs only on a Gaussian-mixture
  // prior with a linear Gaussian problem and evaluates no network, so the contract tests that
  // run every solver on any prior and channel leave it to its own tests.
  bool reference = false;
};
using SolverRegistry = Registry<SolverEntryFns>;

SolverRegistry& solver_registry();

// Parses "name" plus key=value settings (from --set) into validated Params of that solver.
Params resolve_solver(const std::string& name, const std::vector<std::string>& settings);

// What the registry shows of a solver: its name, the small specs the shared solver tests run, a
// one-line help (the paper first), and SolverEntryFns' two flags.
struct SolverCard {
  std::string name;
  std::vector<std::string> examples;
  std::string help;
  bool uses_prior = true;
  bool reference = false;
};

// A solver's options table (core/options.h) with its card: the one declaration that yields the
// registry entry, the parsing of settings and the resolved options of reports.
template <class O>
class SolverTable : public OptionTable<O> {
 public:
  using Field = typename OptionTable<O>::Field;
  using Rule = typename OptionTable<O>::Rule;
  SolverTable(SolverCard c, std::vector<Field> fields, Rule rule = {})
      : OptionTable<O>(std::move(fields), std::move(rule)), card(std::move(c)) {}
  SolverCard card;
};

// Defines `const SolverTable<X>& X::table()` (declared in X) from (card, fields[, rule]), with `O`
// naming X inside; a macro, as gtest's TEST, because the alternative is the same five lines of
// function, alias, static and return in every solver file:
//
//   TWEEDIE_SOLVER_TABLE(DpsOptions,
//       {"dps", {"dps:steps=3"}, "DPS (Chung et al. 2023): ..."},
//       {{"steps", &O::steps, "DDPM steps = NFE", at_least(1)},
//        {"zeta", &O::step_size, "step ζ", non_negative()}})
#define TWEEDIE_SOLVER_TABLE(X, ...)                              \
  const ::tweedie::solve::SolverTable<X>& X::table() {            \
    using O = X;                                                  \
    static const ::tweedie::solve::SolverTable<O> t(__VA_ARGS__); \
    return t;                                                     \
  }

// Enrols solvers whose options declare a SolverTable (O::table()), in order: enroll(registry,
// dps, diffpir). The catalogue (catalogue.cpp) lists every built-in solver this way.
template <class O>
void enroll(SolverRegistry& r, Result (*run)(const SolveContext&, const O&)) {
  const SolverTable<O>& t = O::table();
  SolverEntryFns fns([&t, run](const Params& p, const SolveContext& ctx) { return run(ctx, t.parse(p)); },
                     [&t](const Params& p) { return t.to_json(t.parse(p)); }, t.card.uses_prior);
  fns.reference = t.card.reference;
  r.add({t.card.name, t.card.help, t.params(), std::move(fns), t.card.examples});
}
template <class O, class... More>
void enroll(SolverRegistry& r, Result (*run)(const SolveContext&, const O&), More... more) {
  enroll(r, run);
  enroll(r, more...);
}

}  // namespace tweedie::solve
