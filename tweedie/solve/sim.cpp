#include "tweedie/solve/sim.h"

#include <algorithm>
#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/samplers.h"
#include "tweedie/diffusion/schedule.h"

namespace tweedie::solve {

using diffusion::Schedule;

const char* sim_variant_name(SimVariant v) {
  switch (v) {
    case SimVariant::kDmis: return "sim-dmis";
    case SimVariant::kDmfis: return "sim-dmfis";
    case SimVariant::kDms: return "sim-dms";
  }
  return "sim";
}

const OptionTable<SimOptions>& SimOptions::table(SimVariant variant) {
  using O = SimOptions;
  auto fields = [](bool inversion) {
    std::vector<OptionTable<O>::Field> f = {
        {"c_s", &O::c_s, "C_s: t* from σ/α = C_s/√m (0 = auto, 55·√(N/3072))", non_negative()},
        {"c_s_prime", &O::c_s_prime, "C'_s: amplitude of the start, x_t* = α C'_s Aᵀy/m (0 = C_s)", non_negative()},
        {"t_star", &O::t_star, "start timestep (-1 = from C_s)", at_least(-1)},
        {"sampling_steps", &O::sampling_steps, "DDIM sampling steps", at_least(1)},
        {"clip_denoised", &O::clip_denoised, "clamp x̂0 to [-1, 1] while sampling"},
        {"scale_probes", &O::scale_probes, "probes estimating the entry scale of A (0: A ~ N(0,1))", at_least(0)}};
    if (inversion) f.push_back({"inversion_steps", &O::inversion_steps, "DDIM inversion steps", at_least(1)});
    return f;
  };
  static const OptionTable<O> with_inversion(fields(true)), without(fields(false));
  return variant == SimVariant::kDms ? without : with_inversion;
}

namespace {

// Base timesteps round(linspace(lo, hi, n)), duplicates dropped, increasing.
std::vector<int64_t> linspace_steps(int64_t lo, int64_t hi, int64_t n) {
  std::vector<int64_t> t;
  for (int64_t j = 0; j < n; ++j) {
    double v = n == 1 ? static_cast<double>(hi) : lo + (hi - lo) * static_cast<double>(j) / static_cast<double>(n - 1);
    int64_t r = std::llround(v);
    if (t.empty() || r != t.back()) t.push_back(r);
  }
  return t;
}

// Entry scale √v of A, v = ‖A‖²_F/(mN), by Hutchinson: E_g ‖A g‖² = ‖A‖²_F for g ~ N(0, I).
double entry_scale(const op::Operator& A, int64_t probes, torch::Generator& gen, const torch::Device& device) {
  if (probes == 0) return 1.0;
  torch::NoGradGuard no_grad;
  auto g = randn(op::with_batch(probes, A.in_shape()), gen, device);
  auto Ag = A.apply(g);
  if (Ag.is_complex()) Ag = torch::view_as_real(Ag);
  const double fro2 = Ag.to(torch::kFloat64).pow(2).sum().item<double>() / static_cast<double>(probes);
  return std::sqrt(fro2 / static_cast<double>(op::numel(A.out_shape()) * op::numel(A.in_shape())));
}

}  // namespace

SimStart sim_start(const SolveContext& ctx, const SimOptions& o) {
  const op::Operator& A = *ctx.problem.op;
  require(A.linear(), std::string(sim_variant_name(o.variant)) + ": needs a linear operator (its adjoint gives Aᵀy), got " +
                          A.name());
  require(!ctx.y.is_complex(), std::string(sim_variant_name(o.variant)) + ": needs real measurements");
  const int64_t m = op::numel(A.out_shape()), N = op::numel(A.in_shape());
  SimStart st;
  st.entry_scale = entry_scale(A, o.scale_probes, ctx.gen, ctx.y.device());
  {
    torch::NoGradGuard no_grad;
    // x̃ = Aᵀy/m for A ~ N(0, 1): the spectral initialisation (seed 000, Lemma; methods.md §3.1)
    st.spectral = A.adjoint(ctx.y) / (static_cast<double>(m) * st.entry_scale);
  }
  st.c_s = o.c_s > 0 ? o.c_s : 55.0 * std::sqrt(static_cast<double>(N) / 3072.0);
  st.c_s_prime = o.c_s_prime > 0 ? o.c_s_prime : st.c_s;
  const Schedule& base = ctx.prior.base();
  if (o.t_star >= 0) {
    require(o.t_star < base.size(), "t_star=" + std::to_string(o.t_star) + " is beyond the prior's " +
                                        std::to_string(base.size()) + " steps");
    st.t_star = o.t_star;
  } else {
    // t* = argmin_t |ρ_t − C_s/√m|,  ρ_t = σ_t/α_t = √((1−ᾱ_t)/ᾱ_t)   (eq. 26, discretised)
    const double target = st.c_s / std::sqrt(static_cast<double>(m));
    const auto rho = diffusion::ve_sigmas(base);
    st.t_star = 0;
    for (int64_t t = 1; t < base.size(); ++t)
      if (std::abs(rho[t] - target) < std::abs(rho[st.t_star] - target)) st.t_star = t;
  }
  return st;
}

Result sim_solve(const SolveContext& ctx, const SimOptions& o) {
  const std::string name = sim_variant_name(o.variant);
  const Schedule& base = ctx.prior.base();
  const int64_t T = base.size();
  CostMeter meter(ctx.prior);
  SimStart st = sim_start(ctx, o);
  Result result;
  int64_t step = 0;
  const int64_t planned = (o.variant == SimVariant::kDms ? 0 : o.inversion_steps) + o.sampling_steps;
  auto monitor_for = [&](const char* phase) -> diffusion::StepMonitor {
    return [&, phase](const diffusion::StepInfo& info) {
      ++step;
      require_finite(info.x, name, step);
      return ctx.report({step, planned, meter.nfe(), phase, info.pred_x0, std::nan("")});
    };
  };

  torch::Tensor x;  // diffusion state
  if (o.variant == SimVariant::kDmfis) {
    x = st.c_s_prime * st.spectral;  // G†(C'_s x̃): the start is taken as x_0 (t = 0)
  } else {
    x = std::sqrt(base.alphas_cumprod[st.t_star]) * st.c_s_prime * st.spectral;  // x_{t*} = α_{t*} C'_s x̃
  }

  if (o.variant == SimVariant::kDms) {
    // G_{t*}: DDIM (η = 0) on sampling_steps timesteps evenly spread over [0, t*]
    Schedule s = diffusion::respace(base, linspace_steps(0, st.t_star, o.sampling_steps));
    diffusion::DdimOptions d;
    d.clip_denoised = o.clip_denoised;
    auto r = diffusion::ddim_sample(ctx.prior, s, x, d, ctx.gen, monitor_for("sample"));
    result.estimate = r.x;
    result.stopped_early = r.stopped_early;
  } else {
    // G†: deterministic DDIM inversion (no clipping) on inversion_steps + 1 timesteps from t0 to T−1
    const int64_t t0 = o.variant == SimVariant::kDmfis ? 0 : st.t_star;
    auto grid = linspace_steps(t0, T - 1, o.inversion_steps + 1);
    bool stopped = false;
    if (grid.size() > 1) {
      Schedule s = diffusion::respace(base, grid);
      diffusion::DdimInversionOptions inv;
      inv.start_index = 0;
      auto r = diffusion::ddim_invert(ctx.prior, s, x, inv, monitor_for("invert"));
      x = r.x;
      stopped = r.stopped_early;
    }
    if (!stopped) {
      // G: one unconditional DDIM run from T over guided-diffusion's space_timesteps(T, "J")
      Schedule s = diffusion::respace(base, std::to_string(o.sampling_steps));
      diffusion::DdimOptions d;
      d.clip_denoised = o.clip_denoised;
      auto r = diffusion::ddim_sample(ctx.prior, s, x, d, ctx.gen, monitor_for("sample"));
      x = r.x;
      stopped = r.stopped_early;
    }
    result.estimate = x;
    result.stopped_early = stopped;
  }
  result.steps = step;
  result.cost = meter.finish();
  return result;
}

void enroll_sim(SolverRegistry& r) {
  auto add = [&r](SimVariant v, const std::string& help, const std::string& example) {
    const auto& t = SimOptions::table(v);
    auto parse = [v, &t](const Params& p) {
      SimOptions o = t.parse(p);
      o.variant = v;
      return o;
    };
    r.add({sim_variant_name(v), help, t.params(),
           {[parse](const Params& p, const SolveContext& ctx) { return sim_solve(ctx, parse(p)); },
            [parse, &t](const Params& p) { return t.to_json(parse(p)); }},
           {example}});
  };
  add(SimVariant::kDmis,
      "SIM-DMIS (seed 000): spectral start at t*, partial DDIM inversion, one sampling run; link-agnostic",
      "sim-dmis:inversion_steps=2,sampling_steps=2");
  add(SimVariant::kDmfis, "SIM-DMFIS (seed 000 ablation): full inversion of C'_s Aᵀy/m from t = 0, then sampling",
      "sim-dmfis:inversion_steps=2,sampling_steps=2");
  add(SimVariant::kDms, "SIM-DMS (seed 000 ablation): DDIM sampling from t* without inversion",
      "sim-dms:sampling_steps=2");
}

}  // namespace tweedie::solve
