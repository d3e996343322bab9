#include "tweedie/solve/dpnp.h"

#include <algorithm>
#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/solve/dps.h"

namespace tweedie::solve {

using diffusion::index_tensor;

TWEEDIE_SOLVER_TABLE(DpnpOptions,
    {"dpnp", {"dpnp:k_start=1,k=1,pcs_steps=3", "dpnp:k_start=1,k=1,pcs_steps=3,dds=ddpm"},
     "DPnP (Xu & Chi 2024): split Gibbs, a proximal consistency sampler on the likelihood then a "
     "denoising diffusion sampler at an annealed coupling η"},
    {{"eta_max", &O::eta_max, "η_max: the first coupling (VE noise level)", positive()},
     {"eta_min", &O::eta_min, "η_min: the last coupling", positive()},
     {"k_start", &O::k_start, "iterations at η_max before annealing", at_least(0)},
     {"k", &O::k, "annealed iterations from η_max to η_min (geometric)", at_least(0)},
     {"dds", &O::dds, "denoising diffusion sampler", Choice<O::Dds>{{"ddim", O::Dds::kDdim}, {"ddpm", O::Dds::kDdpm}}},
     {"dds_grid", &O::dds_grid, "grid of dds=ddim: the code's gen_schedule, or geometric at ratio 1.1 below each "
                                "kept point (ours)", Choice<O::Grid>{{"code", O::Grid::kCode}, {"ratio", O::Grid::kRatio}}},
     {"order", &O::order, "per η: PCS then DDS, or DDS then PCS ending on a DDS (auto: the code's, "
                          "pcs-dds for dds=ddim, dds-pcs for dds=ddpm)",
      Choice<O::Order>{{"auto", O::Order::kAuto}, {"pcs-dds", O::Order::kPcsDds}, {"dds-pcs", O::Order::kDdsPcs}}},
     {"pcs_steps", &O::pcs_steps, "PCS iterations per outer step", at_least(1)},
     {"pcs_scale", &O::pcs_scale, "s: PCS step scale", positive()},
     sigma_field<O>("sigma", &O::sigma, "σ",
                    "; PCS's ℓ = f/(2σ²) and step h = s min(σ², η²)/(reg + √f); the code's multiplier, 0.15"),
     {"reg", &O::reg, "regulariser of PCS's adaptive step h = s min(σ², η²)/(reg + √f)", non_negative()},
     {"likelihood", &O::likelihood, "PCS's misfit f: ‖y − A x‖², or σ_c² × the channel's deviance (‖y − A x‖² "
                                    "for a Gaussian channel)", data_term_words()},
     {"clip_denoised", &O::clip_denoised, "clamp x̂0 to [-1, 1] inside DDS (ε recomputed)"},
     {"warm_start", &O::warm_start, "start from a DPS run instead of N(0, I)",
      Choice<O::WarmStart>{{"none", O::WarmStart::kNone}, {"dps", O::WarmStart::kDps}}},
     {"warm_steps", &O::warm_steps, "DPS steps of the warm start", at_least(1)},
     {"warm_zeta", &O::warm_zeta, "DPS step ζ of the warm start", non_negative()}},
    [](const O& o) -> std::string {
      if (o.eta_min > o.eta_max)
        return "eta_min (" + show_number(o.eta_min) + ") must not exceed eta_max (" + show_number(o.eta_max) + ")";
      if (o.k_start + o.k == 0) return "k_start + k must be at least 1";
      return "";
    })

std::vector<double> dpnp_etas(const DpnpOptions& o) {
  std::vector<double> e(static_cast<size_t>(o.k_start), o.eta_max);
  const double a = std::log(o.eta_max), b = std::log(o.eta_min);
  for (int64_t i = 0; i < o.k; ++i) {
    const double r = o.k == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(o.k - 1);
    e.push_back(std::exp(a + r * (b - a)));  // exp(linspace(log η_max, log η_min, k))
  }
  return e;
}

PcsMisfit::PcsMisfit(const Likelihood& data, double sigma) : data_(data), sigma_(sigma) {
  const auto& channel = data.problem().channel;
  require(channel != nullptr, "dpnp: PCS needs a channel");
  sigma_c_ = channel->noise_std();
  require(sigma > 0, "dpnp: sigma must be positive");
  require(sigma_c_ > 0, "dpnp: likelihood=channel needs a noisy channel (" + channel->spec() +
                            " has noise σ 0): PCS's misfit is σ_c² × its deviance");
  torch::NoGradGuard no_grad;
  floor_ = channel->nll_floor(data.y().to(data.y().is_complex() ? torch::kComplexDouble : torch::kFloat64))
               .flatten(1)
               .sum(1);
}

std::pair<torch::Tensor, torch::Tensor> PcsMisfit::operator()(const torch::Tensor& x) const {
  auto [value, grad] = data_.value_and_grad(x);
  torch::NoGradGuard no_grad;
  // f = 2σ_c² (nll − Σ floor) ≥ 0 (clamped against rounding);  ∇ℓ = ∇f/(2σ²) = (σ_c/σ)² ∇nll
  const double c2 = sigma_c_ * sigma_c_;
  auto f = (2 * c2) * (value.to(torch::kFloat64) - floor_).clamp_min(0);
  return {f, grad * (c2 / (sigma_ * sigma_))};
}

torch::Tensor dpnp_pcs(const PcsMisfit& misfit, const torch::Tensor& x_c, double eta, const DpnpOptions& o,
                       torch::Generator& gen) {
  const double s2 = misfit.sigma() * misfit.sigma(), g2 = eta * eta;
  torch::Tensor x = x_c.detach().clone();
  for (int64_t i = 0; i < o.pcs_steps; ++i) {
    auto [f, grad_l] = misfit(x);
    torch::NoGradGuard no_grad;
    // h = s min(σ², η²)/(reg + √f);  a = 1 − e^{−h/η²};  b = η √(1 − e^{−2h/η²})
    const auto h = per_item((o.pcs_scale * std::min(s2, g2) / (o.reg + f.sqrt())).to(x.scalar_type()), x);
    const auto a = 1 - torch::exp(-h / g2);
    const auto b = eta * torch::sqrt(1 - torch::exp(-2 * h / g2));
    // x ← x + a (x_c − x) − η² a ∇ℓ + b ξ
    x = x + a * (x_c - x) - g2 * a * grad_l + b * randn(x.sizes(), gen, x.device());
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

// The grids of dpnp_ddim_grid (dpnp.h; methods.md §6.6). Both start from the candidates: the
// base steps t with ᾱ_t > 1/(1 + η²), in order, and their ᾱ'_t.
constexpr double kRatio = 1.1;
constexpr int64_t kKeepLast = 15;  // the last candidates are all kept

std::vector<double> grid_candidates(const diffusion::Schedule& base, double eta) {
  const double e2 = eta * eta;
  std::vector<double> abp;
  for (int64_t t = 0; t < base.size(); ++t) {
    const double ab = base.alphas_cumprod[t];
    if (ab > 1 / (1 + e2)) abp.push_back(((1 + e2) * ab - 1) / (e2 + ab - 1));  // ᾱ'_t
  }
  return abp;
}

int64_t grid_skip(double eta) { return eta > 0.75 ? 7 : eta > 0.3 ? 1 : 0; }

// exp(numpy.linspace(lo, hi, n))[0 .. count−1]: lo + k (hi − lo)/(n − 1), the last exactly hi
void push_log_uniform(std::vector<double>& out, double lo, double hi, int64_t n, int64_t count) {
  const double step = n > 1 ? (hi - lo) / static_cast<double>(n - 1) : 0.0;
  for (int64_t k = 0; k < count; ++k)
    out.push_back(std::exp(n > 1 && k == n - 1 ? hi : static_cast<double>(k) * step + lo));
}

// the code's gen_schedule, step for step (dpnp.h)
DdsGrid code_grid(const diffusion::Schedule& base, double eta) {
  const double tol = 4 * std::log(10.0), floor = std::exp(-tol), log_ratio = std::log(kRatio);
  const std::vector<double> cand = grid_candidates(base, eta);
  const int64_t n = static_cast<int64_t>(cand.size()), skip = grid_skip(eta);
  DdsGrid g;
  int64_t pass = 0;  // candidates still to pass over
  for (int64_t i = 0; i < n; ++i) {
    if (pass > 0) {
      --pass;
      continue;
    }
    const double a = cand[i];
    if (a < floor) {
      // below 1e-4 already: the last value; its step goes *first* (the code's np.append(idx, map))
      g.abp.push_back(a);
      g.t.insert(g.t.begin(), i);
      return g;
    }
    if (i == n - 1) {
      // the last candidate, above 1e-4: m log-uniform points from it down to 1e-4, at its step
      const auto m = static_cast<int64_t>((std::log(a) + tol) / log_ratio) + 1;
      push_log_uniform(g.abp, std::log(a), -tol, m, m);
      g.t.insert(g.t.end(), static_cast<size_t>(m), i);
      return g;
    }
    const double next = cand[i + 1];
    if (a >= kRatio * next) {
      // a gap to the next candidate: m points log-uniform from a towards it (excluded), the
      // first ⌊m/2⌋ at this step, the rest at the next
      const auto m = static_cast<int64_t>(std::log(a / next) / log_ratio) + 1;
      push_log_uniform(g.abp, std::log(a), std::log(next), m + 1, m);
      g.t.insert(g.t.end(), static_cast<size_t>(m / 2), i);
      g.t.insert(g.t.end(), static_cast<size_t>(m - m / 2), i + 1);
    } else {
      g.abp.push_back(a);
      g.t.push_back(i);
    }
    if (n - i > kKeepLast) pass = skip;
  }
  return g;
}

// ours: geometric points at ratio 1.1 below the previous kept value (dpnp.h)
DdsGrid ratio_grid(const diffusion::Schedule& base, double eta) {
  constexpr double kFloor = 1e-4;
  const std::vector<double> cand = grid_candidates(base, eta);
  const int64_t skip = grid_skip(eta);
  const int64_t n = static_cast<int64_t>(cand.size());
  DdsGrid g;
  int64_t i = 0;
  while (i < n) {
    const int64_t t = i;  // the candidates are the first n base steps
    const double a = cand[i];
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

}  // namespace

DdsGrid dpnp_ddim_grid(const diffusion::Schedule& base, double eta, DpnpOptions::Grid kind) {
  return kind == DpnpOptions::Grid::kRatio ? ratio_grid(base, eta) : code_grid(base, eta);
}

namespace {

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
  if (o.dds == DpnpOptions::Dds::kDdpm) {
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
  const DdsGrid g = dpnp_ddim_grid(base, eta, o.dds_grid);
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
  const bool linear = o.likelihood == DataTerm::kLinear;
  require(linear || ctx.problem.channel != nullptr, "dpnp: likelihood=channel needs the problem's channel");
  const double sigma = resolve_sigma(ctx, o.sigma, "dpnp", false);
  // linear: the Gaussian channel of σ over A (σ_c = σ, f = ‖y − A x‖², ℓ = f/(2σ²))
  const Likelihood data(linear ? gaussian_problem(ctx.problem, sigma) : ctx.problem, ctx.y);
  const PcsMisfit misfit(data, sigma);
  const auto device = ctx.y.device();
  const op::Shape shape = op::with_batch(ctx.y.size(0), ctx.problem.op->in_shape());
  CostMeter meter(prior);
  Result result;
  int64_t warm_grads = 0, warm_network_grads = 0;

  torch::Tensor x;
  if (o.warm_start == DpnpOptions::WarmStart::kDps) {
    DpsOptions w;
    w.steps = o.warm_steps;
    w.step_size = o.warm_zeta;
    w.likelihood = ctx.problem.channel ? DataTerm::kChannel : DataTerm::kLinear;
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
    if (pcs_first) x = dpnp_pcs(misfit, x, etas[k], o, ctx.gen);
    x = dpnp_dds(prior, x, etas[k], o, ctx.gen);
    if (!pcs_first && k + 1 < K) x = dpnp_pcs(misfit, x, etas[k], o, ctx.gen);
    require_finite(x, "dpnp", k + 1);
    if (!step_done(ctx, meter, result, k + 1, K, "", x, data.op())) break;
  }
  result.estimate = x;
  result.cost = meter.finish(warm_network_grads, data.grads() + warm_grads);
  return result;
}

}  // namespace tweedie::solve
