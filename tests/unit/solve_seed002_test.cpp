// Seed 002's solvers and what they share: RED-diff, the MO module (DPS-MO, RED-diff-MO), the EDM
// sampler, the Likelihood / optimiser module, and the declare-once option tables of every solver.
#include <gtest/gtest.h>

#include <cmath>

#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/edm.h"
#include "tweedie/diffusion/gaussian_prior.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/problem.h"
#include "tweedie/solve/dpnp.h"
#include "tweedie/solve/mo.h"
#include "tweedie/solve/optim.h"
#include "tweedie/solve/red_diff.h"
#include "tweedie/solve/solver.h"
#include "support/run_solver.h"

namespace tweedie::solve {
namespace {

using diffusion::EpsDenoiser;

constexpr double kPriorVar = 0.25;  // x0 ~ N(0, 0.25 I) per pixel

std::shared_ptr<EpsDenoiser> exact_prior(const op::Shape& item = {1, 4, 4}) {
  return test::exact_gaussian_prior(item, kPriorVar);
}

struct Measured {
  Problem problem;
  torch::Tensor x, y;
};

Measured measured(int64_t B, const std::string& op, const std::string& channel, const op::Shape& item = {1, 4, 4}) {
  Measured s;
  s.problem = make_problem(op, channel, item, 5);
  torch::Generator g = make_generator(105);
  std::vector<int64_t> shape = item;
  shape.insert(shape.begin(), B);
  s.x = randn(shape, g) * std::sqrt(kPriorVar);
  s.y = simulate(s.problem, s.x);
  return s;
}

Result solve(const std::string& name, const std::vector<std::string>& set, const Problem& problem,
             const torch::Tensor& y, const EpsDenoiser& prior, uint64_t seed = 0) {
  return test::run_solver(name, set, problem, y, prior, seed);
}

// The dense matrix of a linear operator on 1×4×4 items, float64 [M, 16].
torch::Tensor dense(const op::Operator& A) {
  return A.apply(torch::eye(16).view({16, 1, 4, 4})).flatten(1).t().to(torch::kFloat64);
}

// MO's data term in the paper's literal form f = ‖y − A x‖² (mo_likelihood=linear, mo_sigma = 1/√2).
MoOptions linear_mo() {
  MoOptions o;
  o.mo_likelihood = DataTerm::kLinear;
  return o;
}

// ---- the shared optimisers ---------------------------------------------------------------------

TEST(Optim, SgldAtZeroNoiseIsGradientDescentOnTheSquaredResidual) {
  Measured s = measured(2, "gaussian:m=12", "gaussian:sigma=0.1");
  torch::Generator gen = make_generator(1);
  SolveContext ctx{s.problem, s.y, no_prior(), gen, {}};
  const Likelihood f = mo_likelihood(ctx, linear_mo(), "test");  // f = ‖y − A x‖²
  const double eta = 0.05;
  const int64_t N = 25;
  torch::Tensor x0 = torch::zeros_like(s.x);
  torch::Tensor got = sgld(f, x0, {N, eta, 0.0}, gen);
  EXPECT_EQ(f.grads(), N);
  // x ← x − η ∇‖y − A x‖² = x − 2η Aᵀ(A x − y), in float64 with the dense matrix
  auto A = dense(*s.problem.op);
  auto x = x0.flatten(1).to(torch::kFloat64);
  auto y = s.y.flatten(1).to(torch::kFloat64);
  for (int64_t i = 0; i < N; ++i) x = x - 2 * eta * (x.matmul(A.t()) - y).matmul(A);
  const double err = (got.flatten(1).to(torch::kFloat64) - x).abs().max().item<double>();
  EXPECT_LT(err, 1e-5) << "max |SGLD(γ=0) − GD| = " << err;
  EXPECT_GT(x.abs().max().item<double>(), 0.05);  // and it moved
  // The module with mo_noise = 0 and no projection is the same descent.
  MoOptions o;
  o.mo_steps = N;
  o.mo_lr = eta;
  o.mo_noise = 0;
  o.mo_project = false;
  const Likelihood f2 = mo_likelihood(ctx, linear_mo(), "test");
  auto prior = exact_prior();
  auto mo = measurements_optimization(*prior, f2, x0, 1.0, eta, o, gen);
  EXPECT_TRUE(torch::equal(mo, got));
  EXPECT_EQ(prior->nfe(), 0);
  // With noise, the step has the SGLD spread: x − x_GD after one step is √(2η) γ z.
  torch::Generator g1 = make_generator(9), g2 = make_generator(9);
  auto noisy = sgld(f, x0, {1, eta, 0.5}, g1);
  auto z = randn(x0.sizes(), g2);
  auto want = x0 - eta * f.grad(x0) + std::sqrt(2 * eta) * 0.5 * z;
  EXPECT_LT((noisy - want).abs().max().item<double>(), 1e-6);
}

TEST(Mo, StepSizeIsMoLrOverTheLipschitzConstantOfTheGradient) {
  // f = ‖y − A x‖²: ∇f = 2Aᵀ(Ax − y) is 2‖A‖²-Lipschitz, so η = mo_lr/(2 σ_max(A)²).
  Measured s = measured(2, "gaussian:m=12", "gaussian:sigma=0.1");
  torch::Generator gen = make_generator(1);
  SolveContext ctx{s.problem, s.y, no_prior(), gen, {}};
  const Likelihood f = mo_likelihood(ctx, linear_mo(), "test");
  MoOptions o;
  o.mo_lr = 0.5;
  o.mo_likelihood = DataTerm::kLinear;
  const double eta = mo_step_size(f, o, s.x, gen);
  const double smax = torch::linalg_matrix_norm(dense(*s.problem.op), 2).item<double>();
  EXPECT_NEAR(eta, 0.5 / (2 * smax * smax), 1e-3 * eta);
  EXPECT_EQ(f.grads(), 20);
  // A nonlinear operator (phase retrieval): the Gauss–Newton norm at x, by differences and vjp,
  // against the dense Jacobian's.
  Measured pr = measured(1, "phase:oversample=2", "gaussian:sigma=0.05");
  const op::Operator& A = *pr.problem.op;
  const auto y0 = A.apply(pr.x);
  const int64_t M = y0.numel();
  std::vector<torch::Tensor> rows;  // Jᵀ e_j by the operator's vjp, one output at a time
  for (int64_t j = 0; j < M; ++j) {
    auto e = torch::zeros({M});
    e[j] = 1;
    rows.push_back(A.vjp(pr.x, e.view(y0.sizes())).flatten().to(torch::kFloat64));
  }
  const auto J = torch::stack(rows);
  const double want = torch::linalg_matrix_norm(J, 2).item<double>();
  const auto got = gauss_newton_norm(A, pr.x, 60, gen);
  EXPECT_NEAR(got.lambda_max, want * want, 0.01 * want * want);
}

TEST(Optim, AdamMatchesTorchOptimAdamArithmetic) {
  // f(x) = ½‖x − c‖²: the gradient is x − c. Three steps by hand (Kingma & Ba, Alg. 1).
  auto c = torch::tensor({1.0f, -2.0f, 0.5f});
  auto x = torch::zeros(3);
  AdamOptions o;
  o.lr = 0.1;
  o.beta2 = 0.99;
  Adam adam(o);
  auto m = torch::zeros(3, torch::kFloat64), v = torch::zeros(3, torch::kFloat64);
  auto xr = torch::zeros(3, torch::kFloat64);
  for (int t = 1; t <= 3; ++t) {
    adam.step(x, x - c);
    auto g = xr - c.to(torch::kFloat64);
    m = 0.9 * m + 0.1 * g;
    v = 0.99 * v + 0.01 * g * g;
    auto mh = m / (1 - std::pow(0.9, t)), vh = v / (1 - std::pow(0.99, t));
    xr = xr - 0.1 * mh / (vh.sqrt() + 1e-8);
  }
  EXPECT_LT((x.to(torch::kFloat64) - xr).abs().max().item<double>(), 1e-6);
  EXPECT_EQ(adam.steps(), 3);
}

// ---- RED-diff ----------------------------------------------------------------------------------

TEST(RedDiff, AtLambdaZeroItIsLeastSquares) {
  // An injective A (M = 24 > N = 16): the least-squares solution is unique, (AᵀA)⁻¹Aᵀy.
  Measured s = measured(2, "gaussian:m=24", "gaussian:sigma=0.2");
  auto prior = exact_prior();
  auto r = solve("red-diff", {"lambda=0", "init=zeros", "steps=1000", "lr=0.02"}, s.problem, s.y, *prior);
  auto A = dense(*s.problem.op);
  auto ls = torch::linalg_solve(A.t().matmul(A), s.y.flatten(1).to(torch::kFloat64).matmul(A).t()).t();
  const double err = (r.estimate.flatten(1).to(torch::kFloat64) - ls).abs().max().item<double>();
  EXPECT_LT(err, 2e-3) << "max |μ − x_LS| = " << err;
  EXPECT_GT((ls - s.x.flatten(1).to(torch::kFloat64)).abs().max().item<double>(), 0.01);  // noisy: not x itself
  EXPECT_EQ(r.cost.nfe, 1000);
  EXPECT_EQ(r.cost.likelihood_grads, 1000);
  // With λ > 0 the prior pulls μ away from the least-squares fit, towards the posterior mean.
  auto reg = solve("red-diff", {"lambda=1", "init=zeros", "steps=1000", "lr=0.02"}, s.problem, s.y, *prior);
  EXPECT_GT((reg.estimate.flatten(1).to(torch::kFloat64) - ls).abs().max().item<double>(), 10 * err);
}

TEST(RedDiff, PseudoInverseStartIsTheMinimumNormSolution) {
  // steps=1 with lr tiny: μ stays at μ₀ = A⁺y.
  Measured s = measured(1, "gaussian:m=8", "gaussian:sigma=0.05");
  auto prior = exact_prior();
  auto r = solve("red-diff", {"steps=1", "lr=1e-9"}, s.problem, s.y, *prior);
  auto A = dense(*s.problem.op);
  auto pinv = s.y.flatten(1).to(torch::kFloat64).matmul(torch::linalg_pinv(A).t());
  EXPECT_LT((r.estimate.flatten(1).to(torch::kFloat64) - pinv).abs().max().item<double>(), 1e-4);
}

TEST(RedDiff, BadInputIsOneLineNamingTheProblem) {
  auto prior = exact_prior();
  Measured pr = measured(1, "phase:oversample=2", "gaussian:sigma=0.05");
  try {
    solve("red-diff", {"steps=2"}, pr.problem, pr.y, *prior);
    FAIL() << "no error for init=pinv on phase retrieval";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("init=pinv"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no SVD view"), std::string::npos) << e.what();
  }
  EXPECT_THROW(solve("red-diff", {"steps=2", "init=adjoint"}, pr.problem, pr.y, *prior), InputError);
  EXPECT_NO_THROW(solve("red-diff", {"steps=2", "init=zeros"}, pr.problem, pr.y, *prior));
  auto describe = [](const std::vector<std::string>& set) {
    return solver_registry().find("red-diff").make.describe(resolve_solver("red-diff", set));
  };
  EXPECT_THROW(describe({"weighting=cubic"}), InputError);
  EXPECT_THROW(describe({"lr=0"}), InputError);
}

// ---- MO ----------------------------------------------------------------------------------------

TEST(Mo, BadCombinationsAreRefusedWhenParsed) {
  auto message = [](const std::string& name, const std::vector<std::string>& set) -> std::string {
    try {
      auto p = resolve_solver(name, set);
      solver_registry().find(name).make.describe(p);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message("dps-mo", {"sigma_min=90"}).find("sigma_min (90) must be below sigma_max (80)"), std::string::npos)
      << message("dps-mo", {"sigma_min=90"});
  EXPECT_NE(message("dps-mo", {"mo_steps=0"}).find("mo_steps must be at least 1 with mo=true"), std::string::npos);
  EXPECT_NE(message("red-diff-mo", {"mo_steps=0"}).find("mo_steps must be at least 1"), std::string::npos);
  EXPECT_EQ(message("dps-mo", {"mo_steps=0", "mo=false"}), "");
  EXPECT_NE(message("dps-mo", {"mo_noise=2"}).find("mo_noise must be in [0, 1]"), std::string::npos);
  // a projection floor above the first noise level would re-noise every step above the start
  EXPECT_NE(message("dps-mo", {"mo_sigma_min=90"}).find("mo_sigma_min (90) must be below sigma_max (80)"),
            std::string::npos);
  EXPECT_EQ(message("dps-mo", {"mo_sigma_min=0.5"}), "");
}

TEST(Mo, RedDiffMoRefusesAProjectionFloorAboveThePriorsNoise) {
  Measured s = measured(1, "gaussian:m=8", "gaussian:sigma=0.1");
  auto prior = exact_prior();
  try {
    solve("red-diff-mo", {"steps=2", "init=zeros", "mo_sigma_min=1e6"}, s.problem, s.y, *prior);
    FAIL() << "no error for mo_sigma_min above the prior's sigma_max";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("red-diff-mo: mo_sigma_min (1e+06) must be below"), std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(solve("red-diff-mo", {"steps=2", "init=zeros", "mo_sigma_min=1"}, s.problem, s.y, *prior));
}

TEST(Mo, CostCountsBothEvaluationsAndTheSgldGradients) {
  Measured s = measured(2, "gaussian:m=8", "gaussian:sigma=0.1");
  auto prior = exact_prior();
  auto r = solve("dps-mo", {"steps=6", "mo_steps=3"}, s.problem, s.y, *prior);
  EXPECT_EQ(r.cost.nfe, 12);  // Tweedie + projection per step
  EXPECT_EQ(r.cost.likelihood_grads, 18 + 20);  // SGLD, and the power iterations for η
  EXPECT_EQ(r.steps, 6);
  auto plain = solve("dps-mo", {"steps=6", "mo=false"}, s.problem, s.y, *prior);
  EXPECT_EQ(plain.cost.nfe, 6);
  EXPECT_EQ(plain.cost.likelihood_grads, 0);
  auto rm = solve("red-diff-mo", {"steps=5", "mo_steps=2", "init=zeros"}, s.problem, s.y, *prior);
  EXPECT_EQ(rm.cost.nfe, 10);
  EXPECT_EQ(rm.cost.likelihood_grads, 5 + 10 + 20);
}

TEST(Mo, PullsTheEstimateTowardsTheMeasurements) {
  // On a well-posed Gaussian problem MO's data steps must lower the misfit of the result
  // against plain EDM sampling with the same seed.
  Measured s = measured(8, "gaussian:m=12", "gaussian:sigma=0.05");
  auto prior = exact_prior();
  auto misfit = [&](const Result& r) {
    return (s.problem.op->apply(r.estimate) - s.y).pow(2).sum().item<double>();
  };
  auto plain = solve("dps-mo", {"steps=20", "mo=false"}, s.problem, s.y, *prior);
  auto mo = solve("dps-mo", {"steps=20", "mo_steps=20", "mo_lr=0.05", "mo_sigma_min=0"}, s.problem, s.y, *prior);
  EXPECT_LT(misfit(mo), 0.25 * misfit(plain)) << misfit(mo) << " vs " << misfit(plain);
}

// ---- the EDM sampler ---------------------------------------------------------------------------

TEST(Edm, IsTheEulerMapOfThePfOdeOnAGaussianPrior) {
  // With D(x; σ) = v x/(v + σ²) (the exact denoiser of N(0, v)), each Euler step multiplies x by
  // 1 + (σ_{i+1} − σ_i) σ_i/(v + σ_i²) and the last returns D: the sampler is x ↦ c x with c a
  // product computed here in double. As N grows, c² σ_max² → v (the PF-ODE's exact transport).
  auto prior = exact_prior({1, 8, 8});
  auto predicted = [](const diffusion::EdmOptions& o) {
    const auto s = diffusion::edm_sigmas(o);
    double c = 1;
    for (int64_t i = 0; i < o.steps; ++i)
      c *= s[i + 1] == 0 ? kPriorVar / (kPriorVar + s[i] * s[i]) : 1 + (s[i + 1] - s[i]) * s[i] / (kPriorVar + s[i] * s[i]);
    return c;
  };
  diffusion::EdmOptions o;
  o.steps = 60;
  torch::Generator g = make_generator(4);
  auto x = o.sigma_max * randn({64, 1, 8, 8}, g);
  auto r = diffusion::edm_sample(*prior, x, o);
  EXPECT_EQ(r.steps, 60);
  EXPECT_EQ(prior->nfe(), 60);
  const double c = predicted(o);
  // float32 arithmetic: x − σ ε cancels at σ = 80, so allow 1e-3 of the output's scale (a wrong
  // step coefficient is off by more than 1 %)
  const auto want = c * x.to(torch::kFloat64);
  EXPECT_LT((r.x.to(torch::kFloat64) - want).abs().max().item<double>(), 1e-3 * want.abs().max().item<double>());
  // Euler's bias shrinks with N: the variance it transports N(0, σ_max²) to tends to v.
  o.steps = 20;
  const double v20 = std::pow(predicted(o) * o.sigma_max, 2);
  o.steps = 1000;
  const double v1000 = std::pow(predicted(o) * o.sigma_max, 2);
  EXPECT_LT(std::abs(v1000 - kPriorVar), 0.01 * kPriorVar);
  EXPECT_GT(std::abs(v20 - kPriorVar), 0.2 * kPriorVar);
  diffusion::EdmOptions bad;
  bad.sigma_min = 100;
  EXPECT_THROW(diffusion::edm_sample(*prior, x, bad), InputError);
}

TEST(Edm, AncestralStepHasTheVarianceItsRecursionPredicts) {
  // With the exact denoiser of N(0, v), an ancestral step maps x to a x + σ_up z with
  // a = 1 + (σ_down − σ_i) σ_i/(v + σ_i²), so Var x_{i+1} = a² Var x_i + σ_up²; the last step
  // (σ_N = 0: σ_up = σ_down = 0) returns D. The draws' variance must match that recursion (at
  // 40 steps it is 0.21 for η = 0.5 and 0.19 for η = 1, below v = 0.25: the step's bias).
  auto prior = exact_prior({1, 8, 8});
  auto predicted = [](const diffusion::EdmOptions& o) {
    const auto s = diffusion::edm_sigmas(o);
    double var = s[0] * s[0];
    for (int64_t i = 0; i < o.steps; ++i) {
      const double up = std::min(s[i + 1], o.eta * std::sqrt(s[i + 1] * s[i + 1] * (s[i] * s[i] - s[i + 1] * s[i + 1]) / (s[i] * s[i])));
      const double down = std::sqrt(s[i + 1] * s[i + 1] - up * up);
      const double a = 1 + (down - s[i]) * s[i] / (kPriorVar + s[i] * s[i]);
      var = a * a * var + up * up;
    }
    return var;
  };
  for (double eta : {0.5, 1.0}) {
    diffusion::EdmOptions o;
    o.steps = 40;
    o.eta = eta;
    torch::Generator g = make_generator(5);
    auto x = o.sigma_max * randn({256, 1, 8, 8}, g);
    auto r = diffusion::edm_sample(*prior, x, o, {}, &g);
    const double var = r.x.to(torch::kFloat64).square().mean().item<double>();
    const double want = predicted(o);
    // 16384 draws: the variance's standard error is √(2/16384) ≈ 1.1 % of it
    EXPECT_NEAR(var, want, 0.05 * want) << "eta " << eta;
  }
  diffusion::EdmOptions o;
  o.eta = 0.5;
  EXPECT_THROW(diffusion::edm_sample(*prior, torch::zeros({1, 1, 8, 8}), o), InternalError);  // no generator
  o.eta = 1.5;
  torch::Generator g = make_generator(1);
  EXPECT_THROW(diffusion::edm_sample(*prior, torch::zeros({1, 1, 8, 8}), o, {}, &g), InputError);
}

TEST(Edm, RunsOnAnySigmaGrid) {
  // The grid form is the loop itself: on a grid that stops above 0 (DAPS's PF-ODE to σ_ode) each
  // Euler step multiplies x by 1 + (σ_{i+1} − σ_i) σ_i/(v + σ_i²) under the exact denoiser of
  // N(0, v), and the options form is the grid form on edm_sigmas(options), bit for bit.
  auto prior = exact_prior({1, 8, 8});
  const std::vector<double> grid = diffusion::karras_sigmas(10.0, 0.01, 6, 7.0);
  torch::Generator g = make_generator(6);
  auto x = 10.0 * randn({16, 1, 8, 8}, g);
  auto r = diffusion::edm_sample(*prior, x, grid, {});
  EXPECT_EQ(r.steps, 5);
  double c = 1;
  for (size_t i = 0; i + 1 < grid.size(); ++i) c *= 1 + (grid[i + 1] - grid[i]) * grid[i] / (kPriorVar + grid[i] * grid[i]);
  const auto want = c * x.to(torch::kFloat64);
  EXPECT_LT((r.x.to(torch::kFloat64) - want).abs().max().item<double>(), 1e-4 * want.abs().max().item<double>());
  diffusion::EdmOptions o;
  o.steps = 7;
  EXPECT_TRUE(torch::equal(diffusion::edm_sample(*prior, x, o).x,
                           diffusion::edm_sample(*prior, x, diffusion::edm_sigmas(o), {o.clip_denoised, o.eta}).x));
  EXPECT_THROW(diffusion::edm_sample(*prior, x, std::vector<double>{1.0}, {}), InputError);         // one point
  EXPECT_THROW(diffusion::edm_sample(*prior, x, std::vector<double>{1.0, 1.0, 0.0}, {}), InputError);  // flat
  EXPECT_THROW(diffusion::edm_sample(*prior, x, std::vector<double>{1.0, -0.5}, {}), InputError);   // below 0
}

// ---- DPnP: each half, and the whole sampler, against the exact Gaussian laws -------------------

// Mean and variance of draws [B, 16] against a Gaussian law per coordinate (mean [16], variance
// [16]): the largest |sample mean − mean| in units of its standard error √(var/B), and the mean
// ratio of sample to exact variance.
struct Moments {
  double mean_z = 0, var_ratio = 0;
};
Moments moments(const torch::Tensor& draws, const torch::Tensor& mean, const torch::Tensor& var) {
  auto d = draws.flatten(1).to(torch::kFloat64);
  const double B = static_cast<double>(d.size(0));
  Moments m;
  m.mean_z = ((d.mean(0) - mean).abs() / (var / B).sqrt()).max().item<double>();
  m.var_ratio = (d.var(0) / var).mean().item<double>();
  return m;
}

TEST(Dpnp, DenoisingSamplerDrawsTheExactGaussianPosteriorInBothForms) {
  // x0 ~ N(0, v), x_noisy = x0 + η w: x0 | x_noisy ~ N(v x_noisy/(v + η²), v η²/(v + η²)).
  auto prior = exact_prior();
  const double eta = 0.4, v = kPriorVar;
  const int64_t B = 400;
  torch::Generator g0 = make_generator(3);
  auto x_noisy = (0.5 * randn({1, 1, 4, 4}, g0)).expand({B, 1, 4, 4}).contiguous();
  auto mean = (v / (v + eta * eta)) * x_noisy[0].flatten().to(torch::kFloat64);
  auto var = torch::full({16}, v * eta * eta / (v + eta * eta), torch::kFloat64);
  for (const auto form : {DpnpOptions::Dds::kDdpm, DpnpOptions::Dds::kDdim}) {
    DpnpOptions o;
    o.dds = form;
    const char* name = form == DpnpOptions::Dds::kDdpm ? "ddpm" : "ddim";
    o.clip_denoised = false;
    torch::Generator gen = make_generator(11);
    auto draws = dpnp_dds(*prior, x_noisy, eta, o, gen);
    auto m = moments(draws, mean, var);
    // 400 draws per coordinate, 16 coordinates: the largest |z| of 16 normals is below 4 but for
    // a 1e-3 chance; the variance ratio's SE is √(2/400)/√16 ≈ 1.8 %, allow 4 SE plus 3 % bias
    // for the discretisation (the stochastic form starts at τ just below η²).
    EXPECT_LT(m.mean_z, 4.0) << name;
    EXPECT_NEAR(m.var_ratio, 1.0, 0.10) << name;
  }
}

TEST(Dpnp, ProximalConsistencySamplerDrawsItsGaussianTarget) {
  // π(x) ∝ exp(−‖y − A x‖²/(2σ_m²) − ‖x − x_c‖²/(2γ²)): precision P = AᵀA/σ_m² + I/γ²,
  // mean P⁻¹(Aᵀy/σ_m² + x_c/γ²).
  Measured s = measured(1, "gaussian:m=8", "gaussian:sigma=0.2");
  DpnpOptions o;
  o.sigma = 0.2;
  // h ≈ s min(σ_m², γ²)/√f ≈ 1.4e-3: the likelihood's Euler step v L ≈ 0.1 (L = ‖A‖²/σ_m² ≈ 70)
  // keeps the unadjusted sampler's bias small, and 3000 steps are ~45 relaxation times γ²/h.
  o.pcs_scale = 0.02;
  o.reg = 0;
  o.pcs_steps = 3000;
  const double gamma = 0.3;
  const int64_t B = 400;
  auto y = s.y.expand({B, s.y.size(1)}).contiguous();
  torch::Generator g0 = make_generator(5);
  auto xc = (0.5 * randn({1, 1, 4, 4}, g0)).expand({B, 1, 4, 4}).contiguous();
  const Likelihood data(gaussian_problem(s.problem, o.sigma), y);
  torch::Generator gen = make_generator(6);
  auto draws = dpnp_pcs(PcsMisfit(data, o.sigma), xc, gamma, o, gen);
  EXPECT_EQ(data.grads(), 3000);
  auto A = dense(*s.problem.op);
  const double sm2 = o.sigma * o.sigma, g2 = gamma * gamma;
  auto P = A.t().matmul(A) / sm2 + torch::eye(16, torch::kFloat64) / g2;
  auto cov = torch::inverse(P);
  auto mean = cov.matmul(A.t().matmul(s.y[0].to(torch::kFloat64)) / sm2 + xc[0].flatten().to(torch::kFloat64) / g2);
  auto m = moments(draws, mean, cov.diagonal());
  EXPECT_LT(m.mean_z, 4.0);
  EXPECT_NEAR(m.var_ratio, 1.0, 0.10);
}

TEST(Dpnp, AtAFixedCouplingItSamplesTheSmoothedPosterior) {
  // Split Gibbs at a fixed η leaves π(x, z) ∝ exp(−‖y − A x‖²/(2σ_m²)) N(x; z, η²) p(z)
  // invariant: its z-marginal, what DDS returns, is the posterior of z under
  // y = A z + N(0, σ_m² I + η² AAᵀ). Every chain sees the same y.
  Measured s = measured(1, "gaussian:m=8", "gaussian:sigma=0.2");
  auto prior = exact_prior();
  const int64_t B = 400;
  auto y = s.y.expand({B, s.y.size(1)}).contiguous();
  const double eta = 0.3, sm = 0.2, v = kPriorVar;
  // the code's orders: ddpm-pnp runs DDS then PCS and ends on its 12th DDS (11 PCS runs);
  // ddim-pnp runs PCS then DDS (12 PCS runs); both leave the same law invariant
  struct Form { const char* dds; const char* order; int64_t pcs_runs; };
  for (const Form& f : {Form{"ddpm", "auto", 11}, Form{"ddim", "auto", 12}, Form{"ddpm", "pcs-dds", 12}}) {
    const std::string form = std::string(f.dds) + " " + f.order;
    std::vector<std::string> set = {"eta_max=0.3", "eta_min=0.3", "k_start=12", "k=0", "pcs_steps=400",
                                    "pcs_scale=0.5", "reg=0", "sigma=0.2", "clip_denoised=false",
                                    std::string("dds=") + f.dds, std::string("order=") + f.order};
    auto r = solve("dpnp", set, s.problem, y, *prior, 21);
    EXPECT_EQ(r.cost.likelihood_grads, f.pcs_runs * 400) << form;
    auto A = dense(*s.problem.op);
    auto noise = sm * sm * torch::eye(A.size(0), torch::kFloat64) + eta * eta * A.matmul(A.t());
    auto ninv = torch::inverse(noise);
    auto cov = torch::inverse(A.t().matmul(ninv).matmul(A) + torch::eye(16, torch::kFloat64) / v);
    auto mean = cov.matmul(A.t().matmul(ninv).matmul(s.y[0].to(torch::kFloat64)));
    auto m = moments(r.estimate, mean, cov.diagonal());
    EXPECT_LT(m.mean_z, 4.0) << form;
    EXPECT_NEAR(m.var_ratio, 1.0, 0.12) << form;
  }
}

TEST(Dpnp, PcsMisfitVanishesAtAPerfectFitAndIsTheSquaredResidualForGaussians) {
  // issue 27: f must be ≥ 0 and 0 at a perfect fit (the channel NLL's normalising constant made
  // it negative); for a Gaussian channel it is the code's ‖y − A x‖², in both forms, and
  // ∇ℓ = ∇‖y − A x‖²/(2σ²); for another channel σ_c² × its deviance, ℓ its NLL at σ = σ_c.
  Measured s = measured(2, "gaussian:m=8", "gaussian:sigma=0.05");
  torch::Generator gen = make_generator(9);
  auto x = torch::randn({2, 1, 4, 4}, gen);
  auto r2 = (s.y - s.problem.op->apply(x)).square().sum(1).to(torch::kFloat64);
  const Likelihood channel(s.problem, s.y), linear(gaussian_problem(s.problem, 0.3), s.y);
  for (const Likelihood* d : {&channel, &linear}) {
    auto [f, g] = PcsMisfit(*d, 0.3)(x);
    EXPECT_TRUE(torch::allclose(f, r2, 1e-5, 1e-6)) << f << r2;
    auto xg = x.clone().requires_grad_(true);
    (s.y - s.problem.op->apply(xg)).square().sum().backward();
    EXPECT_TRUE(torch::allclose(g, xg.grad() / (2 * 0.3 * 0.3), 1e-4, 1e-5));
  }
  // y = A x exactly: f = 0 although the NLL is −Σ log(2πσ²)/2 < 0
  const Likelihood exact(s.problem, s.problem.op->apply(x));
  EXPECT_LT(exact.nll(x).max().item<double>(), 0);
  EXPECT_LT(std::get<0>(PcsMisfit(exact, 0.05)(x)).max().item<double>(), 1e-4);
  // logistic (T = 0.1): f = 2T² Σ softplus(−y z/T) ≥ 0; ∇ℓ = (T/σ)² ∇nll
  Measured q = measured(2, "identity", "logistic:temperature=0.1");
  auto xq = torch::randn({2, 1, 4, 4}, gen);
  const Likelihood lq(q.problem, q.y);
  auto [f, g] = PcsMisfit(lq, 0.2)(xq);
  EXPECT_TRUE(torch::allclose(f, 2 * 0.01 * lq.nll(xq).to(torch::kFloat64), 1e-5));
  EXPECT_TRUE(torch::allclose(g, lq.grad(xq) * (0.01 / 0.04), 1e-5));
  // a noiseless channel has no deviance scale
  Measured n = measured(1, "gaussian:m=8", "gaussian:sigma=0");
  EXPECT_THROW(PcsMisfit(Likelihood(n.problem, n.y), 0.1), InputError);
}

TEST(Dpnp, AnnealingScheduleAndBadInput) {
  DpnpOptions o;
  auto e = dpnp_etas(o);
  ASSERT_EQ(e.size(), 16u);
  EXPECT_DOUBLE_EQ(e[0], 0.4);
  EXPECT_DOUBLE_EQ(e[4], 0.4);
  EXPECT_NEAR(e[15], 0.16, 1e-12);
  EXPECT_NEAR(e[10] / e[9], e[5] / e[4], 1e-12);  // geometric
  try {
    solver_registry().find("dpnp").make.describe(resolve_solver("dpnp", {"eta_min=0.5"}));
    FAIL() << "eta_min above eta_max accepted";
  } catch (const InputError& err) {
    EXPECT_NE(std::string(err.what()).find("eta_min (0.5) must not exceed eta_max (0.4)"), std::string::npos) << err.what();
  }
}

// ---- declare-once options: describe → --set → describe is the identity for every solver ------

TEST(SolverOptions, DescribeThenSetThenDescribeIsIdentity) {
  for (const auto* e : solver_registry().entries()) {
    const auto first = e->make.describe(resolve_solver(e->name, {}));
    std::vector<std::string> set;
    for (auto& [k, v] : first.items()) {
      bool known = false;
      for (auto& p : e->params) known = known || p.name == k;
      if (!known) continue;  // derived report fields (none should be, see below)
      set.push_back(k + "=" + (v.is_string() ? v.get<std::string>()
                               : v.is_number_float() ? format_number(v.get<double>()) : v.dump()));
    }
    nlohmann::json second;
    try {
      second = e->make.describe(resolve_solver(e->name, set));
    } catch (const InputError& err) {
      ADD_FAILURE() << e->name << ": its own report does not parse back: " << err.what();
      continue;
    }
    EXPECT_EQ(first, second) << e->name;
    // every parameter appears in the report, and the report has nothing else
    for (auto& p : e->params) EXPECT_TRUE(first.contains(p.name)) << e->name << ": " << p.name << " not reported";
    EXPECT_EQ(first.size(), e->params.size()) << e->name << ": " << first.dump();
  }
}

// An enum field (Choice<E>): its words are the registry's choices, it parses each word to its value
// and reports the word back, refuses other words in one line listing them, and fills a member of a
// base struct through a derived one.
struct ChoiceBase {
  enum class Mode { kFast, kExact };
  Mode mode = Mode::kExact;
};
struct WithChoice : ChoiceBase {
  int64_t n = 3;
};

TEST(SolverOptions, AnEnumFieldTakesItsWordsAndRefusesOthers) {
  using O = WithChoice;
  const OptionTable<O> t({{"mode", &O::mode, "how", Choice<O::Mode>{{"fast", O::Mode::kFast}, {"exact", O::Mode::kExact}}},
                          {"n", &O::n, "count", at_least(1)}});
  const auto params = t.params();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "mode");
  EXPECT_EQ(params[0].fallback, "exact");
  EXPECT_EQ(params[0].help, "how (fast | exact)");
  for (const auto& [word, value] : {std::pair{"fast", O::Mode::kFast}, std::pair{"exact", O::Mode::kExact}}) {
    const O o = t.parse(Params("m", {{"mode", word}, {"n", "3"}}, {"mode"}));
    EXPECT_EQ(o.mode, value) << word;
    EXPECT_EQ(t.to_json(o).at("mode"), word);
  }
  try {
    t.parse(Params("m", {{"mode", "slow"}, {"n", "3"}}, {"mode"}));
    ADD_FAILURE() << "mode=slow was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "m: parameter mode='slow' is not one of fast, exact");
  }
}

}  // namespace
}  // namespace tweedie::solve
