// Solvers: the shared contract for every registered solver (shapes, cost, determinism, option
// validation), and per-solver checks against closed forms with an analytic Gaussian prior.
#include <gtest/gtest.h>

#include <cmath>

#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/gaussian_prior.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/problem.h"
#include "tweedie/solve/diff_onebit.h"
#include "tweedie/solve/optim.h"
#include "tweedie/solve/sim.h"
#include "tweedie/solve/solver.h"
#include "support/quadratic_prox.h"
#include "support/random_gmm.h"

namespace tweedie::solve {
namespace {

using diffusion::EpsDenoiser;

// An exact ε-network for x0 ~ N(mean, var) per pixel, on the linear 1000-step schedule.
std::shared_ptr<EpsDenoiser> gaussian_prior(const op::Shape& item, double mean = 0.0, double var = 0.25) {
  auto base = diffusion::make_schedule("linear", 1000);
  auto m = torch::full(item, mean, torch::kFloat64), v = torch::full(item, var, torch::kFloat64);
  return std::make_shared<EpsDenoiser>(diffusion::gaussian_eps_model(base, m, v), base);
}

// ε ≡ 0: Tweedie's x̂0 = x_t/√ᾱ, so samplers only rescale.
std::shared_ptr<EpsDenoiser> zero_prior() {
  auto base = diffusion::make_schedule("linear", 1000);
  return std::make_shared<EpsDenoiser>(
      [](const torch::Tensor& x, const torch::Tensor&) { return torch::zeros_like(x); }, base);
}

struct Case {
  Problem problem;
  torch::Tensor x, y;
};

Case one_bit_case(int64_t B = 2, const std::string& op = "gaussian:m=48", const std::string& ch = "sign:sigma=0.3") {
  Case c;
  op::Shape item{1, 8, 8};
  c.problem = make_problem(op, ch, item, 3);
  torch::Generator g = make_generator(11);
  c.x = (randn(op::with_batch(B, item), g) * 0.5).clamp(-1, 1);
  c.y = simulate(c.problem, c.x);
  return c;
}

Result run(const std::string& name, const std::vector<std::string>& set, const Case& c, const EpsDenoiser& prior,
           uint64_t seed = 0, Monitor monitor = {}) {
  Params p = resolve_solver(name, set);
  torch::Generator gen = make_generator(seed);
  SolveContext ctx{c.problem, c.y, prior, gen, std::move(monitor)};
  return solver_registry().find(name).make.run(p, ctx);
}

// ---- the shared contract, for every enrolled solver ------------------------------------------------

// The --set settings of an example spec.
std::vector<std::string> example_settings(const std::string& example) {
  std::vector<std::string> set;
  for (auto& [k, v] : parse_spec(example, "example").args) set.push_back(k + "=" + v);
  return set;
}

// Defaults for prior-based solvers; solvers that train their own network (uses_prior = false)
// run their first (cheap) example, since their defaults train for minutes.
std::vector<std::string> cheap_settings(const SolverRegistry::Entry& e) {
  return e.make.uses_prior ? std::vector<std::string>{} : example_settings(e.examples.at(0));
}

// The contract holds on any prior: the Gaussian's closed form and the exact-score mixture.
void check_every_example(const EpsDenoiser& prior_ref) {
  Case c = one_bit_case();
  const EpsDenoiser* prior = &prior_ref;
  for (const auto* e : solver_registry().entries()) {
    SCOPED_TRACE(e->name);
    ASSERT_FALSE(e->examples.empty()) << "enrol at least one small example";
    if (e->make.reference) continue;  // exact: its own tests (gmm_posterior_test.cpp)
    for (const auto& example : e->examples) {
      Spec spec = parse_spec(example, "example");
      std::vector<std::string> set = example_settings(example);
      int64_t reports = 0, last_nfe = -1;
      bool increasing = true;
      auto r1 = run(spec.name, set, c, *prior, 5, [&](const StepReport& p) {
        ++reports;
        increasing = increasing && p.nfe >= last_nfe && p.step >= 1 && p.step <= p.num_steps;
        last_nfe = p.nfe;
        return true;
      });
      auto r2 = run(spec.name, set, c, *prior, 5);
      ASSERT_TRUE(r1.estimate.defined());
      EXPECT_EQ(r1.estimate.sizes(), c.x.sizes());
      EXPECT_TRUE(torch::isfinite(r1.estimate).all().item<bool>());
      EXPECT_TRUE(torch::equal(r1.estimate, r2.estimate)) << "same seed, same inputs, same output";
      EXPECT_GT(r1.cost.nfe, 0);
      EXPECT_GE(r1.cost.seconds, 0.0);
      EXPECT_EQ(reports, r1.steps);
      EXPECT_TRUE(increasing);
      // options print themselves, with every default resolved
      auto j = e->make.describe(resolve_solver(spec.name, set));
      EXPECT_TRUE(j.is_object() && !j.empty());
    }
  }
}

TEST(SolverRegistry, EveryExampleRunsDeterministicallyWithCostAndProgress) {
  check_every_example(*gaussian_prior({1, 8, 8}));
}

TEST(SolverRegistry, EveryExampleRunsOnTheExactScoreMixturePrior) {
  auto base = diffusion::make_schedule("linear", 1000);
  auto gmm = std::make_shared<const diffusion::GaussianMixture>(test::random_gmm({1, 8, 8}, 3, 6, 21, 4));
  check_every_example(EpsDenoiser(diffusion::gmm_eps_model(base, gmm), base));
}

TEST(SolverRegistry, MonitorCanStopEarly) {
  Case c = one_bit_case();
  auto prior = gaussian_prior({1, 8, 8});
  for (const auto* e : solver_registry().entries()) {
    if (e->make.reference) continue;  // one step, no network
    SCOPED_TRACE(e->name);
    int64_t calls = 0;
    auto r = run(e->name, cheap_settings(*e), c, *prior, 0, [&](const StepReport&) { return ++calls < 2; });
    EXPECT_EQ(calls, 2);
    EXPECT_TRUE(r.stopped_early);
    EXPECT_EQ(r.estimate.sizes(), c.x.sizes());
  }
}

TEST(SolverRegistry, BadOptionsAreInputErrors) {
  EXPECT_THROW(resolve_solver("no-such-method", {}), InputError);
  EXPECT_THROW(resolve_solver("diff-onebit", {"nope=1"}), InputError);
  EXPECT_THROW(resolve_solver("diff-onebit", {"lambda"}), InputError);
  auto bad = [](const std::string& name, const std::string& kv) {
    Params p = resolve_solver(name, {kv});
    return solver_registry().find(name).make.describe(p);
  };
  EXPECT_THROW(bad("diff-onebit", "lambda=-1"), InputError);
  EXPECT_THROW(bad("diff-onebit", "zeta=1.5"), InputError);
  EXPECT_THROW(bad("diff-onebit", "steps=0"), InputError);
  EXPECT_THROW(bad("diff-onebit", "lr=abc"), InputError);
  EXPECT_THROW(bad("sim-dmis", "t_star=-3"), InputError);
  EXPECT_THROW(bad("sim-dms", "sampling_steps=0"), InputError);
  EXPECT_THROW(bad("sim-dms", "inversion_steps=3"), InputError);  // SIM-DMS does not invert
}

TEST(SolverRegistry, EveryRunChecksItsMeasurementsFirst) {
  // a C++ caller's wrong y: one line from the registry's run, never a LibTorch backtrace
  Case c = one_bit_case();
  auto base = diffusion::make_schedule("linear", 1000);
  EpsDenoiser prior([](const torch::Tensor& x, const torch::Tensor&) { return torch::zeros_like(x); }, base);
  auto message = [&](const torch::Tensor& y) {
    Case bad = c;
    bad.y = y;
    try {
      run("dps", {"steps=2"}, bad, prior);
    } catch (const InputError& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
      return m;
    }
    return std::string("accepted");
  };
  EXPECT_NE(message(torch::zeros({2, 5})).find("measurement has shape [2, 5], expected [B, 48]"), std::string::npos);
  EXPECT_NE(message(torch::Tensor()).find("no measurements"), std::string::npos);
  EXPECT_NE(message(c.y.to(torch::kLong)).find("integer type"), std::string::npos);
  EXPECT_NE(message(torch::full_like(c.y, NAN)).find("NaN or Inf"), std::string::npos);
  EXPECT_NE(message(torch::full_like(c.y, 0.5)).find("-1 or +1"), std::string::npos);
  EXPECT_NE(message(torch::complex(c.y, c.y)).find("complex measurements"), std::string::npos);
}

TEST(SolverRegistry, NonFiniteNetworkStopsWithAMessage) {
  Case c = one_bit_case();
  auto base = diffusion::make_schedule("linear", 1000);
  EpsDenoiser nan_prior([](const torch::Tensor& x, const torch::Tensor&) { return torch::full_like(x, NAN); }, base);
  for (const auto* e : solver_registry().entries()) {
    if (!e->make.uses_prior || e->make.reference) continue;  // no network to poison; their divergence test is in self_diffusion_test
    SCOPED_TRACE(e->name);
    try {
      run(e->name, {}, c, nan_prior);
      ADD_FAILURE() << "expected an InputError";
    } catch (const InputError& err) {
      EXPECT_NE(std::string(err.what()).find("no longer finite"), std::string::npos) << err.what();
    }
  }
}

// ---- Diff-OneBit -------------------------------------------------------------------------------------

// With a Gaussian channel the x-subproblem is a quadratic whose minimiser is
//   x* = (AᵀA/σ² + μ I)⁻¹ (Aᵀy/σ² + μ z).
TEST(DiffOneBit, InnerSolverReachesTheClosedFormMinimiserOfAQuadratic) {
  const test::QuadraticProxCase c;
  const Likelihood lik(c.problem, c.y);
  auto x = prox_adam(lik, c.z, torch::tensor(c.kMu), 3000, 0.01);
  EXPECT_EQ(lik.grads(), 3000);
  auto want = c.minimiser();
  double err = (x.to(torch::kFloat64) - want).abs().max().item<double>();
  EXPECT_LT(err, 2e-3) << "max |x − x*| = " << err;
  // and it really moved: x* is far from the start z
  EXPECT_GT((want - c.z.to(torch::kFloat64)).abs().max().item<double>(), 0.1);
}

TEST(DiffOneBit, CostCountsOneNfePerStepAndInnerGradients) {
  Case c = one_bit_case();
  auto prior = gaussian_prior({1, 8, 8});
  auto r = run("diff-onebit", {"steps=5", "inner_steps=7"}, c, *prior);
  EXPECT_EQ(r.cost.nfe, 5);
  EXPECT_EQ(r.cost.likelihood_grads, 35);
  EXPECT_EQ(r.steps, 5);
}

TEST(DiffOneBit, BeatsTheLinearSpectralEstimateOnOneBitMeasurements) {
  // Many measurements and an exact prior: the estimate must point closer to the truth than
  // Aᵀy (the linear estimate's direction), on average over the items, and its misfit must
  // fall over the run.
  Case c = one_bit_case(4, "gaussian:m=256", "sign:sigma=0.1");
  auto prior = gaussian_prior({1, 8, 8});
  std::vector<double> misfit;
  auto r = run("diff-onebit", {"clip_denoised=false"}, c, *prior, 0, [&](const StepReport& p) {
    misfit.push_back(p.misfit);
    return true;
  });
  auto cos = torch::cosine_similarity(r.estimate.flatten(1), c.x.flatten(1), 1);
  auto linear = torch::cosine_similarity(c.problem.op->adjoint(c.y).flatten(1), c.x.flatten(1), 1);
  EXPECT_GT(cos.mean().item<double>(), linear.mean().item<double>() + 0.02) << cos << linear;
  ASSERT_EQ(misfit.size(), 20u);
  EXPECT_LT(misfit.back(), misfit.front());
}

// The re-noising's ε ablations (hqs.h, issue 13): at ζ = 1 the deterministic direction has
// weight √(1 − ζ) = 0, so every choice gives the same bits; at ζ = 0 each gives its own path.
// An unknown choice is an InputError when parsed.
TEST(DiffOneBit, EpsAblationsOnlyMatterBelowZetaOne) {
  Case c = one_bit_case();
  auto prior = gaussian_prior({1, 8, 8});
  const std::vector<std::string> common{"steps=6", "inner_steps=5"};
  auto with = [&](const std::string& zeta, const std::string& eps) {
    auto set = common;
    set.push_back("zeta=" + zeta);
    set.push_back("eps=" + eps);
    return run("diff-onebit", set, c, *prior, 7).estimate;
  };
  auto ref1 = with("1", "corrected");
  EXPECT_TRUE(torch::equal(ref1, with("1", "denoiser")));
  EXPECT_TRUE(torch::equal(ref1, with("1", "rescaled")));
  auto ref0 = with("0", "corrected");
  for (const std::string eps : {"denoiser", "rescaled"}) {
    auto other = with("0", eps);
    EXPECT_TRUE(torch::isfinite(other).all().item<bool>()) << eps;
    EXPECT_GT((other - ref0).abs().max().item<double>(), 1e-4) << eps;
  }
  // the default is the paper's choice
  EXPECT_TRUE(torch::equal(ref0, run("diff-onebit", {"steps=6", "inner_steps=5", "zeta=0"}, c, *prior, 7).estimate));
  for (const std::string name : {"diff-onebit", "diffpir"})
    EXPECT_THROW(solver_registry().find(name).make.describe(resolve_solver(name, {"eps=noise"})), InputError) << name;
}

// ---- SIM-DMIS family ---------------------------------------------------------------------------------

TEST(Sim, StartScalesAᵀyByTheEntryScaleOfA) {
  // A ~ N(0, 1/M): √v = 1/√M, so x̃ = Aᵀy/(m √v) = Aᵀy/√m, i.e. the N(0, 1) matrix's Aᵀy/m.
  const int64_t M = 4000;
  const double sigma = 0.05;
  Case c = one_bit_case(3, "gaussian:m=4000", "sign:sigma=0.05");
  auto prior = zero_prior();
  torch::Generator gen = make_generator(0);
  SolveContext ctx{c.problem, c.y, *prior, gen, {}};
  SimOptions o;
  o.scale_probes = 64;
  SimStart st = sim_start(ctx, o);
  EXPECT_NEAR(st.entry_scale * std::sqrt(double(M)), 1.0, 0.05);
  EXPECT_NEAR(st.c_s, 55.0 * std::sqrt(64.0 / 3072.0), 1e-12);
  // Lemma (seed 000): x̃ = μ u + noise of size 1/√m per direction, u = x*/‖x*‖, with
  // μ = E[sign(s g + σ e) g] = √(2/π) s/√(s² + σ²), s = ‖x*‖/√M the spread of aᵢᵀx*.
  auto norms = c.x.flatten(1).norm(2, 1);
  auto u = c.x.flatten(1) / norms.unsqueeze(1);
  auto proj = (st.spectral.flatten(1) * u).sum(1);
  for (int64_t b = 0; b < 3; ++b) {
    double s = norms[b].item<double>() / std::sqrt(double(M));
    double mu = std::sqrt(2 / M_PI) * s / std::sqrt(s * s + sigma * sigma);
    EXPECT_NEAR(proj[b].item<double>(), mu, 4 / std::sqrt(double(M))) << "item " << b;
  }
}

TEST(Sim, TStarSolvesEq26OnTheDiscreteSchedule) {
  Case c = one_bit_case(1, "gaussian:m=100");
  auto prior = zero_prior();
  torch::Generator gen = make_generator(0);
  SolveContext ctx{c.problem, c.y, *prior, gen, {}};
  SimOptions o;
  o.c_s = 20;  // C_s/√m = 2
  SimStart st = sim_start(ctx, o);
  auto rho = diffusion::ve_sigmas(prior->base());
  EXPECT_LE(rho[st.t_star - 1], 2.0);
  EXPECT_GE(rho[st.t_star + 1], 2.0);
  EXPECT_LE(std::abs(rho[st.t_star] - 2.0), std::min(std::abs(rho[st.t_star - 1] - 2.0), std::abs(rho[st.t_star + 1] - 2.0)));
}

TEST(Sim, DmsFromTStarZeroReturnsTheScaledSpectralEstimate) {
  Case c = one_bit_case();
  auto prior = zero_prior();
  auto r = run("sim-dms", {"t_star=0", "clip_denoised=false", "c_s_prime=7"}, c, *prior, 1);
  torch::Generator gen = make_generator(1);
  SolveContext ctx{c.problem, c.y, *prior, gen, {}};
  SimOptions o;
  o.c_s_prime = 7;
  auto st = sim_start(ctx, o);
  EXPECT_TRUE(torch::allclose(r.estimate, 7 * st.spectral, 1e-5, 1e-6));
  EXPECT_EQ(r.cost.nfe, 1);
}

TEST(Sim, DmisFromTStarZeroCoincidesWithDmfis) {
  Case c = one_bit_case();
  auto prior = gaussian_prior({1, 8, 8});
  auto a = run("sim-dmis", {"t_star=0", "inversion_steps=20", "sampling_steps=10"}, c, *prior, 1);
  auto b = run("sim-dmfis", {"inversion_steps=20", "sampling_steps=10"}, c, *prior, 1);
  EXPECT_EQ(a.cost.nfe, 30);
  EXPECT_EQ(b.cost.nfe, 30);
  // they differ only by the factor √ᾱ_0 = 0.99995 on the start
  EXPECT_LT((a.estimate - b.estimate).abs().max().item<double>(), 1e-3);
}

TEST(Sim, NeverReadsTheChannel) {
  Case c = one_bit_case();
  auto prior = gaussian_prior({1, 8, 8});
  Problem no_channel{c.problem.op, nullptr, c.problem.seed, c.problem.noise_seed};
  Case d{no_channel, c.x, c.y};
  for (const char* name : {"sim-dmis", "sim-dmfis", "sim-dms"}) {
    auto a = run(name, {}, c, *prior), b = run(name, {}, d, *prior);
    EXPECT_TRUE(torch::equal(a.estimate, b.estimate)) << name;
  }
}

TEST(Sim, RecoversTheDirectionUnderOneBitAndCubicLinks) {
  // The same code path, two links: the estimate correlates with the truth in both.
  auto prior = gaussian_prior({1, 8, 8});
  for (const char* ch : {"sign:sigma=0.05", "cubic:sigma=0.05"}) {
    Case c = one_bit_case(4, "gaussian:m=512,var=1", ch);  // var 1: the cubic link's signal dwarfs σ
    auto r = run("sim-dmis", {"sampling_steps=20", "inversion_steps=20"}, c, *prior);
    auto cos = torch::cosine_similarity(r.estimate.flatten(1), c.x.flatten(1), 1);
    EXPECT_GT(cos.min().item<double>(), 0.7) << ch << " " << cos;
  }
}

}  // namespace
}  // namespace tweedie::solve
