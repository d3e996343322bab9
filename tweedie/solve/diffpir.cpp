#include "tweedie/solve/diffpir.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/solve/hqs.h"
#include "tweedie/solve/optim.h"

namespace tweedie::solve {

using diffusion::Schedule;

TWEEDIE_SOLVER_TABLE(DiffPirOptions,
    {"diffpir",
     {"diffpir:steps=3,inner_steps=3", "diffpir:steps=3,inner_steps=3,likelihood=linear,prox=cg",
      "diffpir:steps=3,inner_steps=2,output=state,eps=denoiser"},
     "DiffPIR (Zhu et al. 2023): Tweedie denoising + data proximal step + re-noising; "
     "likelihood=linear is seed 001's link-ignoring baseline"},
    OptionTable<O>::join(
        {{"steps", &O::steps, "outer steps = NFE", at_least(2)},
         {"timesteps", &O::timesteps, "respacing of the base schedule (default: DiffPIR's quad spacing)",
          Unset<O>{&O::spacing}},
         {"lambda", &O::lambda, "λ: data-step weight μ_t = λ ᾱ/(4(1−ᾱ)) (seed 001: 7)", positive()},
         {"zeta", &O::zeta, "ζ in [0, 1]: fresh-noise weight of the re-noising (seed 001: 1)", in_range(0, 1)},
         {"eps", &O::eps, "ε̂ of the re-noising: from the data-corrected x̂0 (DiffPIR), the denoiser's own, or the first at unit RMS (ablations)",
          hqs_eps_names()},
         {"prox", &O::prox, "data-step solver: Adam, or CG (likelihood=linear only)",
          Choice<O::Prox>{{"adam", O::Prox::kAdam}, {"cg", O::Prox::kCg}}},
         {"inner_steps", &O::inner_steps, "Adam / CG iterations per data step", at_least(0)},
         {"lr", &O::lr, "Adam learning rate", positive()},
         {"clip_denoised", &O::clip_denoised, "clamp x̂0 to [-1, 1] before the data step"},
         {"start", &O::start,
          "x_T: N(0, I) (the paper), or the code's noised measurement c·y + √(1−ᾱ_T−c²(1−ᾱ_{t_y}))·z "
          "(needs y of the image's shape or a mask operator)",
          Choice<O::Start>{{"noise", O::Start::kNoise}, {"y", O::Start::kY}}},
         {"output", &O::output,
          "returned image: the last Tweedie estimate x̂0 (ours), or the last state x_{t=0} (the code's)",
          Choice<O::Output>{{"denoised", O::Output::kDenoised}, {"state", O::Output::kState}}}},
        LikelihoodOptions::fields<O>(true)),
    [](const O& o) -> std::string {
      if (o.prox == O::Prox::kCg && o.likelihood != DataTerm::kLinear)
        return "prox=cg solves the Gaussian data step only: use it with likelihood=linear";
      return "";
    })

std::vector<int64_t> diffpir_quad_timesteps(int64_t T, int64_t K) {
  require(K >= 2 && K <= T, "diffpir: quad spacing needs 2 <= steps <= " + std::to_string(T));
  std::vector<int64_t> t;
  const double step = static_cast<double>(T) * static_cast<double>(T) / static_cast<double>(K - 1);
  for (int64_t j = 0; j < K; ++j) {
    // seq = np.sqrt(np.linspace(0, T², K)) truncated; the last one is T, lowered to T − 1
    const double lin = j == K - 1 ? static_cast<double>(T) * static_cast<double>(T) : static_cast<double>(j) * step;
    int64_t seq = static_cast<int64_t>(std::sqrt(lin));
    if (j == K - 1) seq -= 1;
    t.push_back(T - 1 - seq);  // the step whose ρ̄ is sigmas[seq] = ρ̄_{T−1−seq}
  }
  return t;
}

namespace {

// start=y: x_T from the measurement, as DiffPIR's scripts start (DiffPirOptions::start)
std::function<torch::Tensor(const torch::Tensor&)> diffpir_y_start(const SolveContext& ctx, const Schedule& s,
                                                                   double sigma) {
  const op::Operator& A = *ctx.problem.op;
  const int64_t B = ctx.y.size(0);
  const op::Shape shape = op::with_batch(B, A.in_shape());
  torch::Tensor y_image;  // ỹ: the measurement as an image
  {
    torch::NoGradGuard no_grad;
    if (ctx.y[0].sizes() == at::IntArrayRef(A.in_shape())) {
      y_image = ctx.y;
    } else {
      require(A.name() == "box-mask" || A.name() == "random-mask",
              "diffpir: start=y needs y of the image's shape or a mask operator, got " + A.name() +
                  " (use start=noise)");
      // the kept pixels, the missing ones at −1: Aᵀy − (1 − AᵀA 1)
      const torch::Tensor ones = torch::ones(shape, ctx.y.options());
      y_image = A.adjoint(ctx.y) - (ones - A.normal(ones));
    }
  }
  // t_y: the base step whose ρ̄_t = √((1 − ᾱ_t)/ᾱ_t) is nearest σ (the script's find_nearest)
  const auto& base = ctx.prior.base().alphas_cumprod;
  int64_t t_y = 0;
  for (int64_t t = 1; t < static_cast<int64_t>(base.size()); ++t)
    if (std::abs(std::sqrt((1 - base[t]) / base[t]) - sigma) < std::abs(std::sqrt((1 - base[t_y]) / base[t_y]) - sigma))
      t_y = t;
  const double ab_T = s.alphas_cumprod.back(), ab_y = base[t_y];
  const double c = std::sqrt(ab_T) / std::sqrt(ab_y);
  const double noise = std::sqrt((1 - ab_T) - c * c * (1 - ab_y));
  // x_T = c ỹ + √(1 − ᾱ_T − c²(1 − ᾱ_{t_y})) z: ỹ carried from t_y to T
  return [y_image, c, noise](const torch::Tensor& z) { return c * y_image.reshape(z.sizes()) + noise * z; };
}

}  // namespace

Result diffpir(const SolveContext& ctx, const DiffPirOptions& o) {
  const Problem lik = likelihood_problem(ctx, o, "diffpir");
  const Likelihood data(lik, ctx.y);
  const int64_t T = ctx.prior.base().size();
  const Schedule s = o.spacing() == "quad" ? diffusion::respace(ctx.prior.base(), diffpir_quad_timesteps(T, o.steps))
                                           : diffusion::respace(ctx.prior.base(), o.timesteps);
  CostMeter meter(ctx.prior);
  Result result;
  int64_t cg_products = 0;
  // The shared HQS loop (hqs.h) from x_T ~ N(0, I) (start=y: the code's noised measurement), with
  // the data step x̂0' = argmin_x L(x; y) + (μ/2)‖x − x̂0‖²,  μ = λ ᾱ/(4(1 − ᾱ)) = λ/(4 ρ̄²), by Adam
  // or CG; the last step (t = 0) returns its Tweedie estimate, no data step (DiffPIR skips it
  // there), or with output=state the state x_{t=0} it denoised.
  HqsLoop loop{"diffpir", s, *lik.op, o.zeta, o.clip_denoised, /*data_step_at_last=*/false,
               hqs_eps(o.eps),
               [&](double ab) { return o.lambda * ab / (4 * (1 - ab)); },
               [&](const torch::Tensor& x0, double mu) {
                 if (o.prox == DiffPirOptions::Prox::kAdam) return prox_adam(data, x0, torch::tensor(mu, torch::kFloat64), o.inner_steps, o.lr);
                 ActivityScope likelihood(Activity::kLikelihood);  // AᵀA products: the likelihood's
                 auto cg = gaussian_prox_cg(*lik.op, ctx.y, x0, mu, lik.channel->scale(), o.inner_steps);
                 cg_products += cg.normal_products;
                 return cg.x;
               },
               /*start=*/{}};
  if (o.start == DiffPirOptions::Start::kY) loop.start = diffpir_y_start(ctx, s, lik.channel->noise_std());
  loop.return_state = o.output == DiffPirOptions::Output::kState;
  hqs_loop(ctx, loop, meter, result);
  result.cost = meter.finish(0, cg_products + data.grads());
  return result;
}

}  // namespace tweedie::solve
