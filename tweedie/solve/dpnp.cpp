#include "tweedie/solve/dpnp.h"

#include <algorithm>
#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/solve/dps.h"

namespace tweedie::solve {

using diffusion::index_tensor;

const OptionTable<DpnpOptions>& DpnpOptions::table() {
  using O = DpnpOptions;
  static const OptionTable<O> t(
      {{"eta_max", &O::eta_max, "η_max: the first coupling (VE noise level)", positive()},
       {"eta_min", &O::eta_min, "η_min: the last coupling", positive()},
       {"k_start", &O::k_start, "iterations at η_max before annealing", at_least(0)},
       {"k", &O::k, "annealed iterations from η_max to η_min (geometric)", at_least(0)},
       {"dds", &O::dds, "denoising diffusion sampler", {"ddim", "ddpm"}},
       {"order", &O::order, "per η: PCS then DDS, or DDS then PCS ending on a DDS (auto: the code's, "
                            "pcs-dds for dds=ddim, dds-pcs for dds=ddpm)", {"auto", "pcs-dds", "dds-pcs"}},
       {"pcs_steps", &O::pcs_steps, "PCS iterations per outer step", at_least(1)},
       {"pcs_scale", &O::pcs_scale, "s: PCS step scale", positive()},
       {"multiplier", &O::multiplier, "σ_m: the measurement std PCS assumes", positive()},
       {"reg", &O::reg, "regulariser of PCS's adaptive step h = s min(σ_m², η²)/(reg + √f)", non_negative()},
       {"likelihood", &O::likelihood, "PCS's misfit f: ‖y − A x‖² or the channel's NLL", {"linear", "channel"}},
       {"clip_denoised", &O::clip_denoised, "clamp x̂0 to [-1, 1] inside DDS (ε recomputed)"},
       {"warm_start", &O::warm_start, "start from a DPS run instead of N(0, I)", {"none", "dps"}},
       {"warm_steps", &O::warm_steps, "DPS steps of the warm start", at_least(1)},
       {"warm_zeta", &O::warm_zeta, "DPS step ζ of the warm start", non_negative()}},
      [](const O& o) -> std::string {
        if (o.eta_min > o.eta_max)
          return "eta_min (" + show_number(o.eta_min) + ") must not exceed eta_max (" + show_number(o.eta_max) + ")";
        if (o.k_start + o.k == 0) return "k_start + k must be at least 1";
        return "";
      });
  return t;
}

std::vector<double> dpnp_etas(const DpnpOptions& o) {
  std::vector<double> e(static_cast<size_t>(o.k_start), o.eta_max);
  const double a = std::log(o.eta_max), b = std::log(o.eta_min);
  for (int64_t i = 0; i < o.k; ++i) {
    const double r = o.k == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(o.k - 1);
    e.push_back(std::exp(a + r * (b - a)));  // exp(linspace(log η_max, log η_min, k))
  }
  return e;
}

torch::Tensor dpnp_pcs(const Likelihood& data, bool linear_misfit, const torch::Tensor& x_c, double eta,
                       const DpnpOptions& o, torch::Generator& gen) {
  const double sm2 = o.multiplier * o.multiplier, g2 = eta * eta;
  torch::Tensor x = x_c.detach().clone();
  for (int64_t i = 0; i < o.pcs_steps; ++i) {
    auto [value, grad] = data.value_and_grad(x);
    torch::NoGradGuard no_grad;
    torch::Tensor f, gterm;  // f(x) per item, and ∇f/(2σ_m²)
    if (linear_misfit) {
      // data is the Gaussian channel of σ_m over A: its gradient is ∇‖y − A x‖²/(2σ_m²)
      auto r = data.y() - data.op().apply(x);
      f = (r.is_complex() ? torch::view_as_real(r) : r).flatten(1).square().sum(1);
      gterm = grad;
    } else {
      f = value;
      gterm = grad / (2 * sm2);
    }
    // h = s min(σ_m², η²)/(reg + √f);  a = 1 − e^{−h/η²};  b = η √(1 − e^{−2h/η²})
    const auto h = per_item(o.pcs_scale * std::min(sm2, g2) / (o.reg + f.clamp_min(0).sqrt()), x);
    const auto a = 1 - torch::exp(-h / g2);
    const auto b = eta * torch::sqrt(1 - torch::exp(-2 * h / g2));
    // x ← x + a (x_c − x) − η² a ∇f/(2σ_m²) + b ξ
    x = x + a * (x_c - x) - g2 * a * gterm + b * randn(x.sizes(), gen, x.device());
  }
  return x;
}

namespace {

// ε at VE state x (x_t = √ᾱ_t x), with x̂0 = x − √τ ε clipped and ε recomputed when asked.
torch::Tensor dds_eps(const diffusion::EpsDenoiser& prior, const torch::Tensor& x, int64_t t, bool clip) {
  const auto& base = prior.base();
  const double ab = base.alphas_cumprod[t], st = std::sqrt(1 / ab - 1);
  auto eps = prior.eps(base, std::sqrt(ab) * x, index_tensor(t, x.size(0), x.device()));
  if (!clip) return eps;
  auto x0 = (x - st * eps).clamp(-1, 1);
  return (x - x0) / st;
}

// The deterministic DDS grid (the code's gen_schedule, methods.md §6.6): values ᾱ' decreasing
// from ≈ 1 with the base step each is evaluated at.
struct DdimGrid {
  std::vector<double> abp;
  std::vector<int64_t> t;
};

DdimGrid ddim_grid(const diffusion::Schedule& base, double eta) {
  constexpr double kFloor = 1e-4, kRatio = 1.1;
  constexpr int64_t kKeepLast = 15;
  const double e2 = eta * eta;
  std::vector<int64_t> cand;
  for (int64_t t = 0; t < base.size(); ++t)
    if (base.alphas_cumprod[t] > 1 / (1 + e2)) cand.push_back(t);
  auto abp_of = [&](int64_t t) {
    const double ab = base.alphas_cumprod[t];
    return ((1 + e2) * ab - 1) / (e2 + ab - 1);  // ᾱ'_t
  };
  const int64_t skip = eta > 0.75 ? 7 : eta > 0.3 ? 1 : 0;
  const int64_t n = static_cast<int64_t>(cand.size());
  DdimGrid g;
  int64_t i = 0;
  while (i < n) {
    const int64_t t = cand[i];
    const double a = abp_of(t);
    if (!g.abp.empty() && g.abp.back() / a >= kRatio) {
      // geometric interpolants at ratio 1.1: the first half at the earlier step, the rest at t
      const double prev = g.abp.back();
      const int64_t t_prev = g.t.back();
      const auto m = static_cast<int64_t>(std::floor(std::log(prev / a) / std::log(kRatio)));
      for (int64_t q = 1; q < m; ++q) {
        g.abp.push_back(prev / std::pow(kRatio, static_cast<double>(q)));
        g.t.push_back(q <= m / 2 ? t_prev : t);
      }
    }
    g.abp.push_back(a);
    g.t.push_back(t);
    if (a < kFloor) return g;
    i += i >= n - kKeepLast ? 1 : skip + 1;
  }
  // the end reached above the floor: geometric points down to it, at the last step
  if (g.abp.empty()) return g;
  while (g.abp.back() >= kFloor) {
    g.abp.push_back(g.abp.back() / kRatio);
    g.t.push_back(g.t.back());
  }
  return g;
}

// w(ᾱ') = −arctan(η/√(1/ᾱ' − 1)), in the equivalent form near ᾱ' = 1.
double w_of(double abp, double eta) {
  if (abp >= 1) return -M_PI / 2;
  const double r = std::sqrt(1 / abp - 1);
  if (1 - abp < 1e-3) return -M_PI / 2 + std::atan(r / eta);
  return -std::atan(eta / r);
}

}  // namespace

torch::Tensor dpnp_dds(const diffusion::EpsDenoiser& prior, const torch::Tensor& x_noisy, double eta,
                       const DpnpOptions& o, torch::Generator& gen) {
  torch::NoGradGuard no_grad;
  const auto& base = prior.base();
  const double e2 = eta * eta;
  if (o.dds == "ddpm") {
    // steps with τ_t = 1/ᾱ_t − 1 < η², from the noisiest down
    std::vector<int64_t> ts;
    for (int64_t t = 0; t < base.size(); ++t)
      if (1 / base.alphas_cumprod[t] - 1 < e2) ts.push_back(t);
    torch::Tensor x = x_noisy;
    for (int64_t j = static_cast<int64_t>(ts.size()) - 1; j >= 0; --j) {
      const int64_t t = ts[j];
      const double tau = 1 / base.alphas_cumprod[t] - 1;
      const double tau_prev = j > 0 ? 1 / base.alphas_cumprod[ts[j - 1]] - 1 : 0.0;
      auto eps = dds_eps(prior, x, t, o.clip_denoised);
      // x ← x − 2(√τ_t − √τ_{t−1}) ε + [t > 0] √(τ_t − τ_{t−1}) ξ
      x = x - 2 * (std::sqrt(tau) - std::sqrt(tau_prev)) * eps;
      if (j > 0) x = x + std::sqrt(tau - tau_prev) * randn(x.sizes(), gen, x.device());
    }
    return x;
  }
  const DdimGrid g = ddim_grid(base, eta);
  torch::Tensor u = randn(x_noisy.sizes(), gen, x_noisy.device());  // u ~ N(0, I) at ᾱ' ≈ 0
  auto sqrt_c = [&](double abp) { return std::sqrt(1 + (e2 - 1) * abp); };
  for (int64_t j = static_cast<int64_t>(g.abp.size()) - 1; j >= 0; --j) {
    const double abp = g.abp[j], abp_prev = j > 0 ? g.abp[j - 1] : 1.0;
    const double sc = sqrt_c(abp), sc_prev = j > 0 ? sqrt_c(abp_prev) : eta;
    // x^{VE} = x_noisy + η² √ᾱ' u / c has the unconditional noise level of step t_j
    auto x_ve = x_noisy + (e2 * std::sqrt(abp) / (sc * sc)) * u;
    auto eps = dds_eps(prior, x_ve, g.t[j], o.clip_denoised);
    // u ← (√c_{j−1}/√c_j) u − √c_{j−1} (w(ᾱ'_j) − w(ᾱ'_{j−1})) ε
    u = (sc_prev / sc) * u - sc_prev * (w_of(abp, eta) - w_of(abp_prev, eta)) * eps;
  }
  return x_noisy + u;
}

Result dpnp(const SolveContext& ctx, const DpnpOptions& o) {
  const auto& prior = ctx.prior;
  const bool linear = o.likelihood == "linear";
  require(linear || ctx.problem.channel != nullptr, "dpnp: likelihood=channel needs the problem's channel");
  // linear: the Gaussian channel of σ_m, whose gradient is ∇‖y − A x‖²/(2σ_m²)
  const Likelihood data(linear ? gaussian_problem(ctx.problem, o.multiplier) : ctx.problem, ctx.y);
  const auto device = ctx.y.device();
  const op::Shape shape = op::with_batch(ctx.y.size(0), ctx.problem.op->in_shape());
  CostMeter meter(prior);
  Result result;
  int64_t warm_grads = 0, warm_network_grads = 0;

  torch::Tensor x;
  if (o.warm_start == "dps") {
    DpsOptions w;
    w.steps = o.warm_steps;
    w.zeta = o.warm_zeta;
    w.likelihood = ctx.problem.channel ? "channel" : "linear";
    SolveContext quiet{ctx.problem, ctx.y, ctx.prior, ctx.gen, {}};
    const Result warm = dps(quiet, w);
    x = warm.estimate;
    warm_grads = warm.cost.likelihood_grads;
    warm_network_grads = warm.cost.network_grads;
  } else {
    x = randn(shape, ctx.gen, device);
  }
  const auto etas = dpnp_etas(o);
  const int64_t K = static_cast<int64_t>(etas.size());
  const bool pcs_first = o.pcs_first();
  for (int64_t k = 0; k < K; ++k) {
    // pcs-dds (ddim-pnp): x_{k+½} ~ π_PCS(· ; x_k, η_k), then x_{k+1} ~ p(x0 | x0 + η_k w = x_{k+½});
    // dds-pcs (ddpm-pnp): the DDS draw first, then PCS at the same η_k, except after the last DDS
    if (pcs_first) x = dpnp_pcs(data, linear, x, etas[k], o, ctx.gen);
    x = dpnp_dds(prior, x, etas[k], o, ctx.gen);
    if (!pcs_first && k + 1 < K) x = dpnp_pcs(data, linear, x, etas[k], o, ctx.gen);
    require_finite(x, "dpnp", k + 1);
    if (!step_done(ctx, meter, result, k + 1, K, "", x, data.op())) break;
  }
  result.estimate = x;
  result.cost = meter.finish(warm_network_grads, data.grads() + warm_grads);
  return result;
}

void enroll_dpnp(SolverRegistry& r) {
  const auto& t = DpnpOptions::table();
  r.add({"dpnp",
         "DPnP (Xu & Chi 2024): split Gibbs, a proximal consistency sampler on the likelihood then a denoising "
         "diffusion sampler at an annealed coupling η",
         t.params(),
         {[&t](const Params& p, const SolveContext& ctx) { return dpnp(ctx, t.parse(p)); },
          [&t](const Params& p) { return t.to_json(t.parse(p)); }},
         {"dpnp:k_start=1,k=1,pcs_steps=3", "dpnp:k_start=1,k=1,pcs_steps=3,dds=ddpm"}});
}

}  // namespace tweedie::solve
