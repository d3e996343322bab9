#include "tweedie/diffusion/gmm_mala.h"

#include <cmath>
#include <tuple>
#include <utility>
#include <vector>

#include "tweedie/core/error.h"
#include "tweedie/core/interrupt.h"
#include "tweedie/diffusion/gmm_gibbs.h"

namespace tweedie::diffusion {

using torch::Tensor;

namespace {

const auto kMalaF64 = torch::TensorOptions().dtype(torch::kFloat64);

}  // namespace

MalaChains gmm_mala(const GaussianMixture& prior, const LogLikelihood& log_likelihood, const GmmPosterior& surrogate,
                    const MalaOptions& o, torch::Generator& gen) {
  require(o.chains >= 1 && o.warmup >= 0 && o.thin >= 1 && o.iterations / o.thin >= 4 && o.jump_every >= 0,
          "MALA: need chains >= 1, thin >= 1, iterations / thin >= 4 and jump_every >= 0");
  require(o.target_accept > 0 && o.target_accept < 1 && o.initial_step > 0,
          "MALA: need target_accept in (0, 1) and initial_step > 0");
  const int64_t B = surrogate.batch(), C = o.chains, R = B * C, D = prior.item_numel(), Da = prior.active_pixels();
  const Tensor active = prior.active;
  const Tensor fixed_rows = prior.fixed.view({1, D}).expand({R, D});
  auto full = [&](const Tensor& xa) { return at::index_copy(fixed_rows, 1, active, xa); };

  // A chain state: x (active pixels [R, Da]), k [R], log p(y | x) and its gradient, and
  // log p(x, k | y) (up to a constant) and its gradient in x.
  struct State {
    Tensor x, k, ll, ll_grad, lp, g;
  };
  auto likelihood = [&](State& s) {
    torch::AutoGradMode grad_on(true);
    const Tensor v = s.x.detach().clone().requires_grad_(true);
    const Tensor ll = log_likelihood(full(v));
    require(ll.dim() == 1 && ll.size(0) == R,
            "MALA: the log-likelihood must give one value per row [" + std::to_string(R) + "]");
    const Tensor g = torch::autograd::grad({ll.sum()}, {v}, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                           /*allow_unused=*/true)[0];
    s.ll = ll.detach().to(torch::kFloat64);
    s.ll_grad = g.defined() ? g.to(torch::kFloat64) : torch::zeros_like(s.x);
  };
  auto joint = [&](State& s) {  // the prior's component term for the state's k (the likelihood's is kept)
    auto [log_prior, score] = prior.component_log_density_and_score(s.x, s.k);
    s.lp = log_prior + s.ll;
    s.g = score + s.ll_grad;
  };
  auto evaluate = [&](State& s) {
    likelihood(s);
    joint(s);
  };
  // Row-wise with each row's component j: M_j v = L_j⁻ᵀ L_j⁻¹ v, M_j^{1/2} v = L_j⁻ᵀ v, L_jᵀ v
  enum class Apply { kMetric, kHalf, kFactorT };
  // The rows of each component in k (a sweep's four metric products share one grouping)
  using Groups = std::vector<std::pair<int64_t, Tensor>>;
  auto groups_of = [](const Tensor& k) {
    Groups groups;
    for (const int64_t j : distinct_components(k)) groups.emplace_back(j, (k == j).nonzero().squeeze(1));
    return groups;
  };
  auto per_component = [&](const Tensor& v, const Groups& groups, Apply what) {
    Tensor out = torch::empty_like(v);
    for (const auto& [j, rows] : groups) {
      const Tensor L = surrogate.precision_factor(j), vr = v.index_select(0, rows);
      const Tensor r = what == Apply::kMetric ? at::cholesky_solve(vr.t(), L).t()
                       : what == Apply::kHalf ? at::linalg_solve_triangular(L.t(), vr.t(), /*upper=*/true).t()
                                              : at::matmul(vr, L);
      out.index_copy_(0, rows, r);
    }
    return out;
  };

  torch::NoGradGuard no_grad;
  auto draw_component = [&](const Tensor& x) {  // k ~ p(k | x), exact
    return at::multinomial(at::softmax(prior.component_logits(full(x)), 1), 1, false, gen).squeeze(1);
  };
  State cur;
  cur.x = prior.sample(R, gen).reshape({R, D}).index_select(1, active);
  cur.k = draw_component(cur.x);
  evaluate(cur);
  // Accepts each row of `prop` with probability min(1, α); a non-finite log α rejects. Returns the
  // accepted rows and log α.
  auto metropolis = [&](const Tensor& log_ratio, const State& prop) -> std::pair<Tensor, Tensor> {
    const Tensor log_alpha =
        torch::where(torch::isfinite(log_ratio), log_ratio, torch::full_like(log_ratio, -INFINITY));
    const Tensor accept = at::rand({R}, gen, kMalaF64).log() < log_alpha;
    const Tensor a1 = accept.unsqueeze(1);
    cur = {torch::where(a1, prop.x, cur.x),   torch::where(accept, prop.k, cur.k),
           torch::where(accept, prop.ll, cur.ll), torch::where(a1, prop.ll_grad, cur.ll_grad),
           torch::where(accept, prop.lp, cur.lp), torch::where(a1, prop.g, cur.g)};
    return {accept, log_alpha};
  };
  // a mode jump per chain: (x', k') from the surrogate, accepted by the independence sampler's ratio
  auto jump = [&]() -> Tensor {
    State prop;
    const Tensor xq = surrogate.sample(C, gen, &prop.k).reshape({R, D});
    prop.x = xq.index_select(1, active);
    prop.k = prop.k.reshape({R});
    evaluate(prop);
    const Tensor log_q_new = surrogate.component_log_density(xq.view({B, C, D}), prop.k.view({B, C})).reshape({R});
    const Tensor log_q_old =
        surrogate.component_log_density(full(cur.x).view({B, C, D}), cur.k.view({B, C})).reshape({R});
    const Tensor accept = metropolis(prop.lp - cur.lp + log_q_old - log_q_new, prop).first;
    return accept.view({B, C}).to(torch::kFloat64).mean(1);
  };

  Tensor log_h = torch::full({B}, std::log(o.initial_step), kMalaF64);
  Tensor log_h_sum = torch::zeros({B}, kMalaF64);
  int64_t averaged = 0, jump_tries = 0;
  Tensor accepted = torch::zeros({B}, kMalaF64), jumped = torch::zeros({B}, kMalaF64);
  const int64_t kept_n = o.iterations / o.thin;
  Tensor kept = torch::empty({kept_n, R, D}, kMalaF64);
  for (int64_t it = 0; it < o.warmup + kept_n * o.thin; ++it) {
    check_interrupt();  // no network evaluation inside: each sweep is a stop point (core/interrupt.h)
    // 1. k | x, exact (the likelihood does not depend on k)
    cur.k = draw_component(cur.x);
    joint(cur);
    // 2. a MALA step in x | k
    const Tensor h = log_h.exp().repeat_interleave(C).unsqueeze(1);  // [R, 1]
    const Tensor xi = at::randn({R, Da}, gen, kMalaF64);
    const Groups groups = groups_of(cur.k);
    State prop;
    prop.k = cur.k;
    prop.x = cur.x + 0.5 * h * per_component(cur.g, groups, Apply::kMetric) +
             h.sqrt() * per_component(xi, groups, Apply::kHalf);
    evaluate(prop);
    const Tensor back = cur.x - prop.x - 0.5 * h * per_component(prop.g, groups, Apply::kMetric);
    // log q(x' | x) = −‖L_kᵀ(x' − x − (h/2) M_k g)‖² / 2h = −‖ξ‖² / 2;  log q(x | x') likewise from x'
    const Tensor log_q_fwd = -0.5 * xi.square().sum(1);
    const Tensor log_q_bwd = -per_component(back, groups, Apply::kFactorT).square().sum(1) / (2 * h.squeeze(1));
    const auto [accept, log_alpha] = metropolis(prop.lp - cur.lp + log_q_bwd - log_q_fwd, prop);
    // 3. a mode jump
    if (o.jump_every > 0 && (it + 1) % o.jump_every == 0) {
      const Tensor rate = jump();
      if (it >= o.warmup) {
        jumped += rate;
        ++jump_tries;
      }
    }
    if (it < o.warmup) {
      // Robbins–Monro: log h += γ_t (mean acceptance probability − target), γ_t = (t + 4)^−0.6
      const Tensor alpha = log_alpha.clamp_max(0).exp().view({B, C}).mean(1);
      log_h = log_h + std::pow(static_cast<double>(it + 4), -0.6) * (alpha - o.target_accept);
      if (2 * it >= o.warmup) {
        log_h_sum += log_h;
        ++averaged;
      }
      if (it == o.warmup - 1) log_h = log_h_sum / static_cast<double>(averaged);
      continue;
    }
    const int64_t after = it - o.warmup;
    accepted += accept.view({B, C}).to(torch::kFloat64).mean(1);
    if ((after + 1) % o.thin == 0) kept[after / o.thin] = full(cur.x);
  }
  MalaChains out;
  std::vector<int64_t> shape{B, C, kept_n};
  shape.insert(shape.end(), prior.item_shape.begin(), prior.item_shape.end());
  const Tensor draws = kept.permute({1, 0, 2}).reshape({B, C, kept_n, D});
  auto [rhat, ess] = chain_diagnostics(draws.index_select(3, active));
  out.rhat = rhat.amax(1);
  out.ess = ess.amin(1);
  out.accept = accepted / static_cast<double>(kept_n * o.thin);
  out.step = log_h.exp();
  out.jump_accept = jump_tries > 0 ? jumped / static_cast<double>(jump_tries) : jumped;
  out.draws = draws.view(shape);
  return out;
}

}  // namespace tweedie::diffusion
