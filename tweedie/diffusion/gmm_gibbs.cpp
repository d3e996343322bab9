#include "tweedie/diffusion/gmm_gibbs.h"

#include <cmath>

#include "tweedie/core/error.h"
#include "tweedie/core/interrupt.h"

namespace tweedie::diffusion {

using torch::Tensor;

Tensor truncated_normal(const Tensor& m, const Tensor& y, double sigma, torch::Generator& gen) {
  // In standard units with the sign folded in: t = y w/σ ~ N(μ, 1) truncated to t > 0, μ = y m/σ,
  // i.e. t = μ + s with s ~ N(0, 1) truncated to s > a = −μ. With Q(a) = P(s > a) = Φ(−a):
  //   s = −Φ⁻¹(u Q(a)),  u ~ U(0, 1]   (exact, and accurate in the lower tail where Q(a) is small)
  // and where Q(a) underflows (a > 37) the tail's limit s = a + E/a, E ~ Exp(1).
  const Tensor mu = y * m / sigma;
  const Tensor a = -mu;
  const Tensor u = 1 - at::rand(m.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat64));  // (0, 1]
  const Tensor q = at::special_ndtr(-a);
  const Tensor inv = -at::special_ndtri(u * q);
  const Tensor tail = a + (-u.log()) / a.clamp_min(1.0);
  const Tensor s = torch::where(q > 1e-300, inv, tail).clamp_min(a);
  return y * (mu + s) * sigma;
}

std::pair<Tensor, Tensor> chain_diagnostics(const Tensor& chains_in) {
  const Tensor x = chains_in.to(torch::kFloat64);
  const int64_t B = x.size(0), C = x.size(1), N = x.size(2), P = x.size(3);
  require(N >= 4 && C >= 1, "chain diagnostics: need at least 4 draws per chain");
  // split-R̂: each chain halved
  const int64_t h = N / 2;
  const Tensor split = torch::cat({x.slice(2, 0, h), x.slice(2, N - h, N)}, 1);  // [B, 2C, h, P]
  const Tensor means = split.mean(2), vars = split.var(2, /*unbiased=*/true);
  const Tensor W = vars.mean(1);                                 // within
  const Tensor Bv = static_cast<double>(h) * means.var(1, /*unbiased=*/true);  // between
  const Tensor var_plus = (static_cast<double>(h - 1) / h) * W + Bv / static_cast<double>(h);
  const Tensor rhat = (var_plus / W.clamp_min(1e-300)).sqrt();
  // ESS: autocorrelation of each chain by FFT, averaged over chains (BDA3 eq. 11.7), summed
  // over Geyer's initial positive sequence of pair sums
  const Tensor centred = x - x.mean(2, true);
  const int64_t L = 2 * N;
  const Tensor f = at::fft_rfft(centred, L, 2);
  const Tensor acov = at::fft_irfft(f * f.conj(), L, 2).slice(2, 0, N) / static_cast<double>(N);  // [B, C, N, P]
  // ρ_t = 1 − (W − mean_c acov_t)/var⁺  (with the full chains' W and var⁺)
  const Tensor Wf = x.var(2, true).mean(1);
  const Tensor Bf = static_cast<double>(N) * x.mean(2).var(1, true);
  const Tensor vplus = (static_cast<double>(N - 1) / N) * Wf + (C > 1 ? Bf / static_cast<double>(N) : torch::zeros_like(Wf));
  const Tensor rho = 1 - (Wf.unsqueeze(1) - acov.mean(1)) / vplus.clamp_min(1e-300).unsqueeze(1);  // [B, N, P]
  const int64_t pairs = N / 2;
  const Tensor pair = rho.slice(1, 0, 2 * pairs).view({B, pairs, 2, P}).sum(2);  // [B, pairs, P]
  const Tensor keep = (pair > 0).to(torch::kFloat64).cumprod(1);                             // until the first negative
  const Tensor tau = -1 + 2 * (pair * keep).sum(1);                               // 1 + 2 Σ_{t≥1} ρ_t
  // capped at C·N·log10(C·N), as Stan does for antithetic chains
  const Tensor ess = static_cast<double>(C * N) / tau.clamp_min(1.0 / std::log10(static_cast<double>(C * N)));
  return {rhat, ess};
}

ProbitGibbs probit_gibbs(const GaussianMixture& prior, const Tensor& A_in, const Tensor& y_in, double sigma,
                         const ProbitGibbsOptions& o, torch::Generator& gen) {
  require(o.chains >= 1 && o.iterations >= 4 && o.warmup >= 0, "probit Gibbs: need chains >= 1, iterations >= 4");
  const Tensor A = A_in.to(torch::kCPU, torch::kFloat64);
  const Tensor y = y_in.to(torch::kCPU, torch::kFloat64);
  require((y.abs() == 1).all().item<bool>(), "probit Gibbs: y must hold ±1");
  const int64_t B = y.size(0), C = o.chains, D = prior.item_numel();
  const Tensor yr = y.repeat_interleave(C, 0);  // [B·C, M], item-major
  // the x-step's factors: Λ_k = Σ_k⁻¹ + AᵀA/σ² does not depend on w
  const GmmPosterior post(prior, A, yr.slice(0, 0, 1), sigma, "probit Gibbs");
  Tensor x = prior.sample(B * C, gen).reshape({B * C, D});
  Tensor kept = torch::empty({o.iterations, B * C, D}, torch::TensorOptions().dtype(torch::kFloat64));
  for (int64_t it = 0; it < o.warmup + o.iterations; ++it) {
    check_interrupt();  // a reference of many sweeps evaluates no network: stop here (core/interrupt.h)
    const Tensor w = truncated_normal(at::matmul(x, A.t()), yr, sigma, gen);
    x = post.draw_given(w, gen);
    if (it >= o.warmup) kept[it - o.warmup] = x;
  }
  std::vector<int64_t> shape{B, C, o.iterations};
  shape.insert(shape.end(), prior.item_shape.begin(), prior.item_shape.end());
  ProbitGibbs out;
  out.draws = kept.permute({1, 0, 2}).reshape({B, C, o.iterations, D});
  const Tensor varying = prior.active;
  auto [rhat, ess] = chain_diagnostics(out.draws.index_select(3, varying));
  out.rhat = rhat.amax(1);
  out.ess = ess.amin(1);
  out.draws = out.draws.view(shape);
  return out;
}

}  // namespace tweedie::diffusion
