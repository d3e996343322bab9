#include "tweedie/solve/ddnm.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/solve/spectral.h"

namespace tweedie::solve {

TWEEDIE_SOLVER_TABLE(DdnmOptions,
    {"ddnm", {"ddnm:steps=5", "ddnm:steps=4,eta=0.5,sigma=0.1,path=svd", "ddnm:steps=3,path=svd,draws=authors"},
     "DDNM+ (Wang et al. 2023): range-space correction x̂0 − λA⁺(A x̂0 − y) + DDIM(η) re-noising for "
     "y = A x + noise (DDNM when σ = 0); needs an operator with an SVD view; the link, if any, is ignored"},
    {{"steps", &O::steps, "sampling steps = NFE (uniform skip T/steps)", at_least(1)},
     {"eta", &O::eta, "η: fresh-noise weight of the re-noising, 0 = deterministic", in_range(0, 1)},
     noise_sigma_option(&O::sigma, "σ_y"),
     {"path", &O::path, "the code's scalar DDNM+ (quirks kept), or per singular value (= DDRM, η_B = 1)",
      Choice<O::Path>{{"simplified", O::Path::kSimplified}, {"svd", O::Path::kSvd}}},
     {"draws", &O::draws,
      "path=svd noise: tweedie (z drawn in spectral coordinates) or authors (z drawn over the image, Vᵀz: "
      "the same law; replays noise recorded from the official code)",
      draws_words()}})

namespace {

// One step x_t → x_{t'} of either path, given ε̂ and x̂0; z draws from ctx.gen.
struct DdnmStep {
  const Spectral& sp;
  const DdnmOptions& o;
  const SolveContext& ctx;

  // simplified_ddnm_plus: scalar λ, γ (Eq. 19) with the code's ᾱ² and γ·√(1−ᾱ) quirks
  torch::Tensor simplified(const torch::Tensor& x0, const torch::Tensor& eps, double ab_next) const {
    const double sy = sp.sigma0, st = std::sqrt(1 - ab_next * ab_next);  // σ_t = √(1 − ᾱ'²)
    double lambda = 1, gamma = 0;
    if (st >= ab_next * sy) {
      gamma = std::sqrt(st * st - (ab_next * sy) * (ab_next * sy));     // γ = √(σ_t² − (ᾱ' σ_y)²)
    } else {
      lambda = st / (ab_next * sy);                                      // λ = σ_t/(ᾱ' σ_y)
    }
    // x̂0' = x̂0 − λ A⁺(A x̂0 − y), A⁺ through the SVD
    auto x0_hat = x0 - lambda * sp.svd->V(sp.pinv_residual(sp.svd->Vt(x0)));
    auto z = randn(x0.sizes(), ctx.gen, x0.device());
    const double c1 = std::sqrt(1 - ab_next) * o.eta, c2 = std::sqrt(1 - ab_next) * std::sqrt(1 - o.eta * o.eta);
    return std::sqrt(ab_next) * x0_hat + gamma * (c1 * z + c2 * eps);  // √ᾱ' x̂0' + γ(c1 z + c2 ε̂)
  }

  // ddnm_plus_diffusion with Lambda / Lambda_noise: per-coordinate λ_i, d1_i, d2_i
  torch::Tensor svd(const torch::Tensor& x0, const torch::Tensor& eps, double ab_next) const {
    const double sy = sp.sigma0, root = std::sqrt(1 - o.eta * o.eta);
    const double a = std::sqrt(ab_next), st = std::sqrt(1 - ab_next);
    const auto observed = sp.s > 0;
    auto v0 = sp.svd->Vt(x0);
    auto correction = sp.pinv_residual(v0);  // Vᵀ A⁺(A x̂0 − y)
    auto y_noise = a * sy * sp.s_inv;            // the measurement's noise at this level, a σ_y/s_i
    auto noisier = observed & (st < y_noise);    // y noisier than x_t': partial projection
    auto cleaner = observed & (st > y_noise);    // y cleaner: full projection, noise topped up
    torch::Tensor lambda = torch::ones_like(sp.s), d1 = torch::full_like(sp.s, o.eta * st),
                  d2 = torch::full_like(sp.s, root * st);
    if (sy > 0) {
      // λ_i = s_i σ_t √(1−η²)/(a σ_y) where σ_t < a σ_y/s_i                  Eq. (17)
      lambda = torch::where(noisier, sp.s * st * root / (a * sy), lambda);
      d2 = torch::where(noisier | cleaner, torch::zeros_like(d2), d2);
      // d1 = √(σ_t² − a² σ_y²/s_i²) where σ_t > a σ_y/s_i                       Eq. (51)
      d1 = torch::where(cleaner, (st * st - y_noise.pow(2)).clamp_min(0).sqrt(), d1);
    }
    auto v = v0 - lambda * correction;                                        // Vᵀx̂0'
    auto z = o.draws == NoiseDraws::kAuthors ? sp.svd->Vt(randn(x0.sizes(), ctx.gen, v.device()))  // Vᵀz, z over the image
                                  : randn(v.sizes(), ctx.gen, v.device());
    return sp.svd->V(a * v + d1 * z + d2 * sp.svd->Vt(eps));                  // a x̂0' + V(d1 z + d2 Vᵀε̂)
  }
};

}  // namespace

Result ddnm(const SolveContext& ctx, const DdnmOptions& o) {
  torch::NoGradGuard no_grad;
  const CostMeter meter(ctx.prior);  // from here: the SVD (on first use) counts as the solve's
  const Spectral sp = spectral_measurement(ctx, o.sigma, "ddnm");
  const DdnmStep step{sp, o, ctx};
  const op::Shape shape = op::with_batch(ctx.y.size(0), ctx.problem.op->in_shape());
  torch::Tensor x_T = randn(shape, ctx.gen, ctx.y.device());  // x_T ~ N(0, I)
  return uniform_grid_sampling(ctx, meter, o.steps, x_T, "ddnm", [&](const torch::Tensor& x0, const torch::Tensor& eps,
                                                             double ab_next) {
    return o.path == DdnmOptions::Path::kSvd ? step.svd(x0, eps, ab_next) : step.simplified(x0, eps, ab_next);
  });
}

}  // namespace tweedie::solve
