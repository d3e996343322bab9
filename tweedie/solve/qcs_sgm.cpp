#include "tweedie/solve/qcs_sgm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "tweedie/channel/logprob.h"
#include "tweedie/core/runtime.h"

namespace tweedie::solve {

TWEEDIE_SOLVER_TABLE(QcsSgmOptions,
    {"qcs-sgm", {"qcs-sgm:levels=3,steps_each=2"},
     "QCS-SGM (Meng & Kabashima 2023): annealed Langevin with the quantized pseudo-likelihood score; "
     "sign, quantize or gaussian channels"},
    {{"sigma_begin", &O::sigma_begin, "largest noise level σ_1 (VE, [-1, 1] images)", positive()},
     {"sigma_end", &O::sigma_end, "smallest noise level σ_L", positive()},
     {"levels", &O::levels, "number of geometric noise levels L", at_least(1)},
     {"steps_each", &O::steps_each, "Langevin steps per level (NFE = levels · steps_each)", at_least(1)},
     {"step_lr", &O::step_lr, "ε: step α_c = ε (σ_c/σ_L)²", positive()},
     {"likelihood_scale", &O::likelihood_scale, "λ: weight of the pseudo-likelihood score", non_negative()},
     {"clip_denoised", &O::clip_denoised, "clamp D(x, σ) to [-1, 1] in the prior score (the authors: false)"},
     {"phi_clamp", &O::phi_clamp,
      "0: exact gradient of log Φ; c > 0: the authors' closed-form score with Φ clamped to [c, 1-c] "
      "(b-bit: the bin mass to >= c; the authors: 1e-6)",
      non_negative()}},
    [](const O& o) -> std::string {
      if (!(o.phi_clamp < 0.5)) return "need phi_clamp < 0.5, got " + show_number(o.phi_clamp);
      if (!(o.sigma_begin >= o.sigma_end))
        return "need sigma_begin >= sigma_end, got " + show_number(o.sigma_begin) + " and " +
               show_number(o.sigma_end);
      return "";
    })

torch::Tensor row_norms_squared(const op::Operator& A, const torch::Device& device) {
  require(A.linear(), "qcs-sgm: needs a linear operator (its rows a_i), got " + A.name());
  torch::NoGradGuard no_grad;
  const int64_t M = op::numel(A.out_shape());
  const int64_t block = std::max<int64_t>(1, std::min<int64_t>(M, (int64_t{1} << 24) / std::max<int64_t>(1, op::numel(A.in_shape()))));
  std::vector<torch::Tensor> parts;
  for (int64_t r0 = 0; r0 < M; r0 += block) {
    const int64_t n = std::min(block, M - r0);
    // rows r0..r0+n of A are Aᵀe_i: ‖a_i‖² = ‖Aᵀ e_i‖²
    auto e = torch::zeros({n, M}, torch::dtype(torch::kFloat32).device(device));
    e.narrow(1, r0, n).fill_diagonal_(1);  // e_{r0}, ..., e_{r0+n−1}
    auto at = A.adjoint(e.view(op::with_batch(n, A.out_shape())));
    parts.push_back(at.flatten(1).pow(2).sum(1));
  }
  return torch::cat(parts).view(A.out_shape());
}

namespace {

// The bin [l, u] of each b-bit measurement y = sign (k + ½) δ, open (±∞) at the saturated ends
// (channel/quantizer.h).
std::pair<torch::Tensor, torch::Tensor> quantizer_bin(const Params& p, const torch::Tensor& y) {
  require(p.has("delta"), "qcs-sgm: the quantizer's delta is unknown (give delta= in the channel spec)");
  const double delta = p.real("delta"), inf = std::numeric_limits<double>::infinity();
  const double top = static_cast<double>((int64_t{1} << (p.integer("bits") - 1)) - 1);
  auto saturated = torch::round(torch::abs(y) / delta - 0.5) >= top;
  auto lo = torch::where(saturated & (y < 0), torch::full_like(y, -inf), y - delta / 2);
  auto hi = torch::where(saturated & (y > 0), torch::full_like(y, inf), y + delta / 2);
  return {lo, hi};
}

}  // namespace

torch::Tensor pseudo_nll(const channel::Channel& ch, const torch::Tensor& z, const torch::Tensor& y,
                         const torch::Tensor& extra_variance) {
  const Params p = channel::channel_registry().resolve(parse_spec(ch.spec(), "channel"));
  const std::string name = ch.name();
  require(!y.is_complex(), "qcs-sgm: needs real measurements");
  auto sd = [&](double sigma) { return torch::sqrt(sigma * sigma + extra_variance.unsqueeze(0)); };  // √v_i
  torch::Tensor nll;
  if (name == "gaussian") {
    // −log N(y; z, v) = (y − z)²/(2v) + ½ log(2πv)
    auto s = sd(p.real("sigma"));
    nll = (y - z).pow(2) / (2 * s.pow(2)) + torch::log(s) + 0.5 * std::log(2 * M_PI);
  } else if (name == "sign") {
    require(!(p.real("dither") > 0), "qcs-sgm: dithered sign channels are not supported");
    nll = -channel::log_ndtr(y * z / sd(p.real("sigma")));  // −log Φ(y z/√v)
  } else if (name == "quantize") {
    const auto [lo, hi] = quantizer_bin(p, y);
    auto s = sd(p.real("sigma"));
    nll = -channel::log_diff_ndtr((lo - z) / s, (hi - z) / s);  // −log(Φ((u − z)/√v) − Φ((l − z)/√v))
  } else {
    throw InputError("qcs-sgm: no pseudo-likelihood for the channel '" + name + "' (sign, quantize, gaussian)");
  }
  return nll.flatten(1).sum(1);
}

torch::Tensor clamped_likelihood_score(const channel::Channel& ch, const op::Operator& A, const torch::Tensor& x,
                                       const torch::Tensor& y, const torch::Tensor& extra_variance, double clamp) {
  const Params p = channel::channel_registry().resolve(parse_spec(ch.spec(), "channel"));
  const std::string name = ch.name();
  require(!y.is_complex(), "qcs-sgm: needs real measurements");
  const torch::Tensor z = A.apply(x);
  const double sigma = p.real("sigma");
  const torch::Tensor v = sigma * sigma + extra_variance.unsqueeze(0);  // v_i = σ² + ‖a_i‖²σ_c²
  torch::Tensor w;                                                    // ∂ log p̃ / ∂z_i
  if (name == "gaussian") {
    w = (y - z) / v;  // likelihood_score_linear_diag
  } else if (name == "sign") {
    require(!(p.real("dither") > 0), "qcs-sgm: dithered sign channels are not supported");
    // likelihood_score_onebit_diag: Φ̃ = clamp(Φ(z/√v), c, 1 − c), φ̃ = N(z; 0, v),
    // w = [(1 + y)/2 / Φ̃ − (1 − y)/2 / (1 − Φ̃)] φ̃   (the operations in the code's order)
    auto phi = torch::clamp(torch::erfc(-z / torch::sqrt(2 * v)) / 2, clamp, 1 - clamp);
    auto gauss = 1 / torch::sqrt(2 * v * M_PI) * torch::exp(-z.pow(2) / 2 / v);
    w = ((1 + y) / 2 / phi - (1 - y) / 2 / (1 - phi)) * gauss;
  } else if (name == "quantize") {
    // likelihood_score_multibit_diag: ũ = (z − u)/√v, l̃ = (z − l)/√v,
    // w = (φ(ũ) − φ(l̃))/√v / clamp(Φ(ũ) − Φ(l̃), −1, −c)   (= ∂ log(Φ(−l̃) − Φ(−ũ))/∂z)
    const auto [lo, hi] = quantizer_bin(p, y);
    auto sd = torch::sqrt(v);
    auto u = (z - hi) / sd, l = (z - lo) / sd;
    auto gauss = 1 / std::sqrt(2 * M_PI) * (torch::exp(-u.pow(2) / 2) - torch::exp(-l.pow(2) / 2)) / sd;
    auto mass = torch::erfc(-u / std::sqrt(2.0)) / 2 - torch::erfc(-l / std::sqrt(2.0)) / 2;
    w = gauss / torch::clamp(mass, -1, -clamp);
  } else {
    throw InputError("qcs-sgm: no pseudo-likelihood for the channel '" + name + "' (sign, quantize, gaussian)");
  }
  return A.adjoint(w);  // Aᵀ w
}

Result qcs_sgm(const SolveContext& ctx, const QcsSgmOptions& o) {
  const auto& prior = ctx.prior;
  const Problem& pr = ctx.problem;
  require(pr.channel != nullptr, "qcs-sgm: needs the problem's channel (its quantizer)");
  const auto device = ctx.y.device();
  const op::Shape shape = op::with_batch(ctx.y.size(0), pr.op->in_shape());
  CostMeter meter(prior);
  const torch::Tensor row2 = row_norms_squared(*pr.op, device);  // ‖a_i‖² ("diag" approximation)
  Result result;
  int64_t likelihood_grads = 0;
  const int64_t L = o.levels;

  torch::Tensor x = 2 * rand(shape, ctx.gen, device) - 1;  // x ~ U[0, 1) on [0, 1] images
  for (int64_t c = 0; c < L; ++c) {
    // σ_c geometric from σ_1 to σ_L (np.exp(np.linspace(log σ_1, log σ_L, L)))
    const double sigma = L == 1 ? o.sigma_end
                                : std::exp(std::log(o.sigma_begin) + static_cast<double>(c) / static_cast<double>(L - 1) *
                                                                         (std::log(o.sigma_end) - std::log(o.sigma_begin)));
    const double alpha = o.step_lr * (sigma / o.sigma_end) * (sigma / o.sigma_end);  // α_c = ε (σ_c/σ_L)²
    const torch::Tensor extra = row2 * (sigma * sigma);                            // ‖a_i‖² σ_c²
    for (int64_t s = 0; s < o.steps_each; ++s) {
      torch::Tensor g;
      if (o.phi_clamp > 0) {
        // the authors' closed form, Φ clamped
        ActivityScope likelihood(Activity::kLikelihood);
        torch::NoGradGuard no_grad;
        g = clamped_likelihood_score(*pr.channel, *pr.op, x, ctx.y, extra, o.phi_clamp);
      } else {
        // ∇ log p̃(y | x; σ_c) through A
        ActivityScope likelihood(Activity::kLikelihood);
        torch::AutoGradMode grad_on(true);
        auto xg = x.detach().requires_grad_(true);
        auto nll = pseudo_nll(*pr.channel, pr.op->apply(xg), ctx.y, extra).sum();
        g = -torch::autograd::grad({nll}, {xg})[0].detach();
      }
      ++likelihood_grads;
      torch::NoGradGuard no_grad;
      auto d = prior.denoise(x, sigma);  // 1 NFE
      if (o.clip_denoised) d = d.clamp(-1, 1);
      auto score = (d - x) / (sigma * sigma);  // s(x, σ) = (D(x, σ) − x)/σ²
      // x ← x + α (s + λ ∇ log p̃) + √(2α) ξ
      x = x + alpha * (score + o.likelihood_scale * g) + std::sqrt(2 * alpha) * randn(shape, ctx.gen, device);
    }
    require_finite(x, "qcs-sgm", c + 1);
    if (!step_done(ctx, meter, result, c + 1, L, "langevin", x, *pr.op)) break;
  }
  result.estimate = x;
  result.cost = meter.finish(0, likelihood_grads);
  return result;
}

}  // namespace tweedie::solve
