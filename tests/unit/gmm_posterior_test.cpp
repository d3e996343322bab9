// The exact posterior of the Gaussian-mixture prior under a linear Gaussian channel
// (tweedie/diffusion/gmm_posterior.h) against self-normalised importance sampling from the prior,
// its exact draws against its own moments, and the `exact` solver (tweedie/solve/exact.h).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "support/random_gmm.h"
#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/gmm_gibbs.h"
#include "tweedie/diffusion/gmm_mala.h"
#include "tweedie/diffusion/gmm_posterior.h"
#include "tweedie/experiment/posterior_scores.h"
#include "tweedie/problem.h"
#include "tweedie/solve/solver.h"

namespace tweedie::diffusion {
namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// Component k of `g` alone (weight 1).
GaussianMixture component(const GaussianMixture& g, int64_t k) {
  GaussianMixture c = g;
  c.log_weights = torch::zeros({1}, kF64);
  c.means = g.means.slice(0, k, k + 1).clone();
  c.eigvals = g.eigvals.slice(0, k, k + 1).clone();
  c.eigvecs = g.eigvecs.slice(0, k, k + 1).clone();
  c.residual = g.residual.slice(0, k, k + 1).clone();
  return c;
}

struct Linear {
  GaussianMixture g;
  torch::Tensor A, x, y;
  double sigma;
};

// y = A x + σ n for two draws x of the mixture.
Linear linear_case(std::vector<int64_t> item, int64_t K, int64_t d, int64_t M, double sigma, uint64_t seed) {
  Linear c{test::random_gmm(item, K, d, seed), {}, {}, {}, sigma};
  torch::Generator gen = make_generator(seed + 1);
  const int64_t D = c.g.item_numel();
  c.A = at::randn({M, D}, gen, kF64) / std::sqrt(static_cast<double>(M));
  c.x = c.g.sample(2, gen).reshape({2, D});
  c.y = at::matmul(c.x, c.A.t()) + sigma * at::randn({2, M}, gen, kF64);
  return c;
}

// Importance sampling: per component k, N draws x ~ N(μ_k, Σ_k) weighted by p(y | x) give
// p(y | k) ≈ mean w and E[x | y, k] ≈ Σ w x / Σ w; the weights w_k ∝ π_k p(y | k).
struct Estimate {
  torch::Tensor weights, mean, second;  // [B, K], [B, D], [B, D] (E[x²])
};
Estimate importance(const Linear& c, int64_t N, uint64_t seed) {
  torch::Generator gen = make_generator(seed);
  const int64_t K = c.g.components(), B = c.y.size(0), D = c.g.item_numel();
  auto log_ev = torch::empty({B, K}, kF64);
  auto mk = torch::empty({B, K, D}, kF64), sk = torch::empty({B, K, D}, kF64);
  for (int64_t k = 0; k < K; ++k) {
    const auto xs = component(c.g, k).sample(N, gen).reshape({N, D});
    const auto r = c.y.unsqueeze(1) - at::matmul(xs, c.A.t()).unsqueeze(0);  // [B, N, M]
    const auto logw = -r.square().sum(2) / (2 * c.sigma * c.sigma);           // [B, N] (constants cancel)
    log_ev.select(1, k).copy_(at::logsumexp(logw, 1) - std::log(static_cast<double>(N)));
    const auto w = at::softmax(logw, 1);
    mk.select(1, k).copy_(at::matmul(w, xs));
    sk.select(1, k).copy_(at::matmul(w, xs.square()));
  }
  const auto lw = at::softmax(log_ev + c.g.log_weights.unsqueeze(0), 1);
  return {lw, (lw.unsqueeze(2) * mk).sum(1), (lw.unsqueeze(2) * sk).sum(1)};
}

TEST(GmmPosterior, MatchesImportanceSamplingFromThePrior) {
  // with an isotropic residual (d < Da) and without one (d = Da)
  for (const auto& [item, d] : std::vector<std::pair<std::vector<int64_t>, int64_t>>{{{1, 3, 3}, 3}, {{1, 2, 2}, 3}}) {
    SCOPED_TRACE(d);
    const Linear c = linear_case(item, 3, d, 4, 0.3, 17);
    const GmmPosterior post(c.g, c.A, c.y, c.sigma);
    const Estimate is = importance(c, 400000, 5);
    const int64_t D = c.g.item_numel();
    const auto w = post.log_weights().exp();
    EXPECT_LT((w - is.weights).abs().max().item<double>(), 0.01) << w << is.weights;
    const auto mean = post.mean().reshape({2, D});
    EXPECT_LT((mean - is.mean).abs().max().item<double>(), 0.01) << mean << is.mean;
    const auto var = post.variance().reshape({2, D});
    EXPECT_LT((var - (is.second - is.mean.square())).abs().max().item<double>(), 0.01);
    // and the posterior is informative: far from the prior's mean and tighter than the prior
    const auto prior_mean = (c.g.log_weights.exp().unsqueeze(1) * c.g.means).sum(0);
    EXPECT_GT((mean.index_select(1, c.g.active) - prior_mean).abs().max().item<double>(), 0.2);
    // inactive pixels are their fixed value with no variance
    EXPECT_TRUE(torch::allclose(mean.select(1, 0), torch::full({2}, 0.25, kF64)));
    EXPECT_EQ(var.select(1, 0).abs().max().item<double>(), 0.0);
  }
}

TEST(GmmPosterior, ExactDrawsHaveItsMomentsAndComponentWeights) {
  const Linear c = linear_case({1, 3, 3}, 3, 3, 4, 0.3, 23);
  const GmmPosterior post(c.g, c.A, c.y, c.sigma);
  torch::Generator gen = make_generator(9);
  torch::Tensor comp;
  const int64_t n = 20000, D = c.g.item_numel();
  const auto xs = post.sample(n, gen, &comp).reshape({2, n, D});
  EXPECT_EQ(comp.sizes(), (std::vector<int64_t>{2, n}));
  EXPECT_LT((xs.mean(1) - post.mean().reshape({2, D})).abs().max().item<double>(), 0.02);
  EXPECT_LT((xs.var(1) - post.variance().reshape({2, D})).abs().max().item<double>(), 0.02);
  const auto freq = torch::stack({(comp == 0).to(kF64).mean(1), (comp == 1).to(kF64).mean(1),
                                  (comp == 2).to(kF64).mean(1)}, 1);
  EXPECT_LT((freq - post.log_weights().exp()).abs().max().item<double>(), 0.015);
  // the same generator seed gives the same draws
  torch::Generator again = make_generator(9);
  EXPECT_TRUE(torch::equal(post.sample(n, again).reshape({2, n, D}), xs));
}

TEST(GmmPosterior, BadInputsAreOneLineErrors) {
  const Linear c = linear_case({1, 3, 3}, 2, 3, 4, 0.3, 3);
  EXPECT_THROW(GmmPosterior(c.g, c.A, c.y, 0.0), InputError);
  EXPECT_THROW(GmmPosterior(c.g, c.A.slice(1, 0, 5), c.y, 0.3), InputError);
  EXPECT_THROW(GmmPosterior(c.g, c.A, c.y.slice(1, 0, 2), 0.3), InputError);
}

// ---- the gold standard for 1-bit measurements (diffusion/gmm_gibbs.h) -------------------------------

TEST(ProbitGibbs, TruncatedNormalHasTheClosedFormMeanIncludingFarTails) {
  torch::Generator gen = make_generator(1);
  const double sigma = 0.5;
  for (double m : {1.0, -1.0, -2.5, -20.0}) {  // a = −m/σ = −2, 2, 5, 40 (the last past Φ's underflow)
    SCOPED_TRACE(m);
    const auto mm = torch::full({200000}, m, kF64), y = torch::ones({200000}, kF64);
    const auto w = truncated_normal(mm, y, sigma, gen);
    EXPECT_GT(w.min().item<double>(), 0.0);
    const double a = -m / sigma;
    // E[w] = m + σ φ(a)/Q(a) (the inverse Mills ratio; its tail form a + 1/a past a = 30)
    const double mills = a > 30 ? a + 1 / a : std::exp(-a * a / 2) / std::sqrt(2 * M_PI) / (0.5 * std::erfc(a / std::sqrt(2.0)));
    EXPECT_NEAR(w.mean().item<double>(), m + sigma * mills, 0.01 * sigma * std::max(1.0, mills));
    // and the sign folds: y = −1 mirrors it
    const auto wn = truncated_normal(-mm, -y, sigma, gen);
    EXPECT_NEAR(wn.mean().item<double>(), -(m + sigma * mills), 0.01 * sigma * std::max(1.0, mills));
  }
}

TEST(ProbitGibbs, MatchesImportanceSamplingOnOneBitMeasurementsAndConverges) {
  const Linear c = linear_case({1, 3, 3}, 3, 3, 12, 0.3, 53);
  const auto y = c.y.sign();  // 1-bit: y = sign(A x + σ e)
  // importance sampling from the prior: weights Π_i Φ(y_i (A x)_i / σ)
  torch::Generator g = make_generator(7);
  const int64_t N = 400000, D = c.g.item_numel();
  const auto xs = c.g.sample(N, g).reshape({N, D});
  const auto logw = at::special_log_ndtr(y.unsqueeze(1) * at::matmul(xs, c.A.t()).unsqueeze(0) / c.sigma).sum(2);
  const auto w = at::softmax(logw, 1);  // [2, N]
  const auto is_mean = at::matmul(w, xs), is_second = at::matmul(w, xs.square());
  ProbitGibbsOptions o;
  o.chains = 8;
  o.iterations = 2000;
  o.warmup = 200;
  torch::Generator gen = make_generator(8);
  const auto run = probit_gibbs(c.g, c.A, y, c.sigma, o, gen);
  EXPECT_EQ(run.draws.sizes(), (std::vector<int64_t>{2, 8, 2000, 1, 3, 3}));
  const auto d = run.draws.reshape({2, -1, D});
  EXPECT_LT((d.mean(1) - is_mean).abs().max().item<double>(), 0.03) << d.mean(1) << is_mean;
  EXPECT_LT((d.var(1) - (is_second - is_mean.square())).abs().max().item<double>(), 0.03);
  EXPECT_LT(run.rhat.max().item<double>(), 1.02);
  EXPECT_GT(run.ess.min().item<double>(), 500);
  // the posterior is informative: away from the prior mean
  const auto prior_mean = (c.g.log_weights.exp().unsqueeze(1) * c.g.means).sum(0);
  EXPECT_GT((is_mean.index_select(1, c.g.active) - prior_mean).abs().max().item<double>(), 0.2);
}

TEST(ProbitGibbs, DiagnosticsFlagChainsThatDisagree) {
  // four chains stuck at different levels: R̂ far above 1; four independent white-noise chains: R̂ ≈ 1,
  // ESS ≈ all the draws
  torch::Generator g = make_generator(2);
  const auto noise = at::randn({1, 4, 1000, 3}, g, kF64);
  auto [rhat_ok, ess_ok] = chain_diagnostics(noise);
  EXPECT_LT(rhat_ok.max().item<double>(), 1.01);
  EXPECT_GT(ess_ok.min().item<double>(), 3000);
  const auto stuck = noise * 0.1 + torch::arange(4, kF64).view({1, 4, 1, 1});
  auto [rhat_bad, ess_bad] = chain_diagnostics(stuck);
  EXPECT_GT(rhat_bad.min().item<double>(), 2.0);
  EXPECT_LT(ess_bad.max().item<double>(), 100);
}

// ---- the gold standard for any differentiable channel (diffusion/gmm_mala.h) -------------------------

TEST(Mala, MatchesTheClosedFormOnALinearGaussianChannel) {
  // the check item 3 asks for: the sampler on the exact log-posterior of y = A x + σ n against the
  // closed form. The posterior has several modes (M = 6 < D = 9, three components): without mode
  // jumps the chains stay in the modes they start in (R̂ says so); with jumps from a deliberately
  // wrong surrogate (the posterior at 1.5 σ, so the Metropolis–Hastings ratios have work to do) it
  // matches.
  const Linear c = linear_case({1, 3, 3}, 3, 3, 6, 0.3, 53);
  const GmmPosterior post(c.g, c.A, c.y, c.sigma);
  MalaOptions o;
  o.chains = 8;
  o.warmup = 1000;
  o.iterations = 6000;
  o.thin = 2;
  const torch::Tensor yr = c.y.repeat_interleave(o.chains, 0);
  const LogLikelihood loglik = [&](const torch::Tensor& x) {
    return -(yr - at::matmul(x, c.A.t())).square().sum(1) / (2 * c.sigma * c.sigma);
  };
  const GmmPosterior wide(c.g, c.A, c.y, 1.5 * c.sigma);
  torch::Generator gen = make_generator(9);
  MalaOptions local = o;
  local.jump_every = 0;
  EXPECT_GT(gmm_mala(c.g, loglik, wide, local, gen).rhat.max().item<double>(), 1.5);  // chains in different modes
  const auto run = gmm_mala(c.g, loglik, wide, o, gen);
  EXPECT_EQ(run.draws.sizes(), (std::vector<int64_t>{2, 8, 3000, 1, 3, 3}));
  const auto d = run.draws.reshape({2, -1, 9});
  const auto var = post.variance().reshape({2, 9});
  const auto active = c.g.active;
  // means within 0.05 posterior sd, variances within 5 %, on the pixels the prior lets vary
  EXPECT_LT(((d.mean(1) - post.mean().reshape({2, 9})).abs() / var.sqrt().clamp_min(1e-12)).index_select(1, active)
                .max().item<double>(),
            0.05);
  EXPECT_LT((d.var(1) / var - 1).index_select(1, active).abs().max().item<double>(), 0.05);
  EXPECT_LT(run.rhat.max().item<double>(), 1.02);
  EXPECT_GT(run.ess.min().item<double>(), 1000);
  EXPECT_NEAR(run.accept.mean().item<double>(), o.target_accept, 0.1);
  EXPECT_GT(run.jump_accept.min().item<double>(), 0.05);
  // the sampled component weights agree with the exact ones
  const auto w = at::softmax(c.g.component_logits(d.reshape({-1, 9})), 1).view({2, -1, 3}).mean(1);
  EXPECT_LT((w - post.log_weights().exp()).abs().max().item<double>(), 0.03);
  // the posterior's own densities: its draws are likelier under it than prior draws; the joint
  // density with the drawn component sums over components to the marginal
  torch::Generator g2 = make_generator(4);
  torch::Tensor k;
  const auto xs = post.sample(64, g2, &k);
  EXPECT_GT(post.log_density(xs).mean().item<double>(),
            post.log_density(c.g.sample(128, g2).reshape({2, 64, 1, 3, 3})).mean().item<double>());
  std::vector<torch::Tensor> joint;
  for (int64_t j = 0; j < 3; ++j) joint.push_back(post.component_log_density(xs, torch::full({2, 64}, j, torch::kLong)));
  EXPECT_LT((at::logsumexp(torch::stack(joint), 0) - post.log_density(xs)).abs().max().item<double>(), 1e-9);
}

TEST(Mala, MatchesImportanceSamplingOnALogisticChannel) {
  // y_i = ±1 with P(+1) = sigmoid(z_i / T) (the logistic channel): against importance sampling, with
  // the surrogate of the linearisation at z = 0 (a Gaussian of variance 4T² around 2T y)
  const Linear c = linear_case({1, 3, 3}, 3, 3, 12, 0.3, 57);
  const double T = 0.3;
  const auto y = c.y.sign();
  torch::Generator g = make_generator(7);
  const int64_t N = 400000, D = c.g.item_numel();
  const auto xs = c.g.sample(N, g).reshape({N, D});
  const auto logw = at::log_sigmoid(y.unsqueeze(1) * at::matmul(xs, c.A.t()).unsqueeze(0) / T).sum(2);
  const auto w = at::softmax(logw, 1);
  const auto is_mean = at::matmul(w, xs), is_var = at::matmul(w, xs.square()) - is_mean.square();
  MalaOptions o;
  o.chains = 8;
  o.warmup = 1000;
  o.iterations = 6000;
  o.thin = 2;
  const torch::Tensor yr = y.repeat_interleave(o.chains, 0);
  const LogLikelihood loglik = [&](const torch::Tensor& x) {
    return at::log_sigmoid(yr * at::matmul(x, c.A.t()) / T).sum(1);
  };
  const GmmPosterior surrogate(c.g, c.A, 2 * T * y, 2 * T);
  torch::Generator gen = make_generator(10);
  const auto run = gmm_mala(c.g, loglik, surrogate, o, gen);
  const auto d = run.draws.reshape({2, -1, D});
  EXPECT_LT((d.mean(1) - is_mean).abs().max().item<double>(), 0.03) << d.mean(1) << is_mean;
  EXPECT_LT((d.var(1) - is_var).abs().max().item<double>(), 0.03);
  EXPECT_LT(run.rhat.max().item<double>(), 1.02);
  // chains too short to meet: R̂ says so
  o.warmup = 0;
  o.iterations = 8;
  o.thin = 1;
  o.initial_step = 1e-6;
  o.jump_every = 0;
  EXPECT_GT(gmm_mala(c.g, loglik, surrogate, o, gen).rhat.min().item<double>(), 1.5);
}

// ---- scoring draws against the exact posterior (experiment/posterior_scores.h) ----------------------

TEST(PosteriorScores, ExactDrawsAreCalibratedAndTheMeanRepeatedIsNot) {
  const Linear c = linear_case({1, 4, 4}, 3, 4, 6, 0.3, 41);
  // more measurements: 40 items, so the scores' means are tight
  torch::Generator g = make_generator(3);
  const int64_t B = 40, K = 16, D = c.g.item_numel();
  const auto x = c.g.sample(B, g).reshape({B, D});
  const auto y = at::matmul(x, c.A.t()) + c.sigma * at::randn({B, c.A.size(0)}, g, kF64);
  const GmmPosterior post(c.g, c.A, y, c.sigma);
  auto mean_of = [](const torch::Tensor& t) { return t.mean().item<double>(); };
  // a perfect sampler: K exact draws score like the floor (K other exact draws)
  torch::Generator gen = make_generator(5), ref_gen = make_generator(6);
  const auto ref = experiment::exact_reference(post, 200, K, ref_gen);
  const auto exact_scores = experiment::score_draws(c.g, ref, post.sample(K, gen));
  EXPECT_NEAR(mean_of(exact_scores.coverage90), mean_of(exact_scores.floor_coverage90), 0.03);
  EXPECT_NEAR(mean_of(exact_scores.coverage50), mean_of(exact_scores.floor_coverage50), 0.03);
  EXPECT_NEAR(mean_of(exact_scores.mmse_gap), 1.0 / K, 0.03);  // E‖mean_K − E[x|y]‖² = tr Cov / K
  EXPECT_LT(std::abs(mean_of(exact_scores.energy)), 0.1);
  EXPECT_LT(mean_of(exact_scores.mode_tv), mean_of(exact_scores.floor_mode_tv) + 0.05);
  // K draws' 90 % central interval covers a little less than 90 % (their 5–95 % quantiles)
  EXPECT_GT(mean_of(exact_scores.floor_coverage90), 0.75);
  EXPECT_LT(mean_of(exact_scores.floor_coverage90), 0.9);
  // the posterior mean repeated K times: no spread, so no coverage, a large energy distance
  const auto repeated = post.mean().reshape({B, 1, 1, 4, 4}).expand({B, K, 1, 4, 4});
  const auto bad = experiment::score_draws(c.g, ref, repeated);
  EXPECT_LT(mean_of(bad.coverage90), 0.05);
  EXPECT_GT(mean_of(bad.energy), 10 * std::abs(mean_of(exact_scores.energy)) + 0.1);
  EXPECT_LT(mean_of(bad.mmse_gap), 1e-12);  // its mean is exact: the gap alone cannot tell
  // an over-dispersed sampler (exact draws spread 2x around the mean) covers too much
  const auto mean_b = post.mean().reshape({B, 1, D});
  torch::Generator gen2 = make_generator(5);
  const auto wide = mean_b + 2 * (post.sample(K, gen2).reshape({B, K, D}) - mean_b);
  const auto over = experiment::score_draws(c.g, ref, wide.reshape({B, K, 1, 4, 4}));
  EXPECT_GT(mean_of(over.coverage50), mean_of(over.floor_coverage50) + 0.15);
}

TEST(PosteriorScores, OneBitDrawsAreScoredAgainstTheGibbsReference) {
  // 1-bit: another Gibbs run's draws score like the reference's own floor; the mean repeated does not
  const Linear c = linear_case({1, 3, 3}, 3, 3, 12, 0.3, 61);
  torch::Generator gy = make_generator(4);
  const int64_t B = 24;  // enough items for the coverages' means to settle
  const auto xb = c.g.sample(B, gy).reshape({B, -1});
  const auto y = (at::matmul(xb, c.A.t()) + c.sigma * at::randn({B, c.A.size(0)}, gy, kF64)).sign();
  ProbitGibbsOptions o;
  o.chains = 4;
  o.iterations = 4000;
  torch::Generator g = make_generator(1);
  const int64_t K = 8;
  const auto ref = experiment::gibbs_reference(c.g, c.A, y, c.sigma, 200, K, o, g);
  EXPECT_EQ(ref.draws.size(1), 200);
  EXPECT_EQ(ref.floor.size(1), K);
  EXPECT_LT(ref.rhat_max, 1.05);
  // the per-measurement diagnostics are recorded, their worst is the one reported
  const auto described = ref.describe();
  ASSERT_EQ(described["rhat"].size(), static_cast<size_t>(B));
  double worst = 0;
  for (const auto& v : described["rhat"]) worst = std::max(worst, v.get<double>());
  EXPECT_DOUBLE_EQ(worst, ref.rhat_max);
  o.chains = K;
  o.iterations = 4;
  const auto other = probit_gibbs(c.g, c.A, y, c.sigma, o, g).draws.select(2, 3);  // K chains' last states
  const auto good = experiment::score_draws(c.g, ref, other);
  auto mean_of = [](const torch::Tensor& t) { return t.mean().item<double>(); };
  EXPECT_NEAR(mean_of(good.coverage90), mean_of(good.floor_coverage90), 0.05);
  const auto repeated = ref.mean.view({B, 1, 1, 3, 3}).expand({B, K, 1, 3, 3});
  const auto bad = experiment::score_draws(c.g, ref, repeated);
  EXPECT_LT(mean_of(bad.coverage90), 0.1);
  EXPECT_GT(mean_of(bad.energy), mean_of(good.energy) + 0.1);
}

// ---- the `exact` solver ------------------------------------------------------------------------------

solve::Result run_exact(const Problem& problem, const torch::Tensor& y, const EpsDenoiser& prior,
                        const std::vector<std::string>& set, uint64_t seed = 0) {
  torch::Generator gen = make_generator(seed);
  solve::SolveContext ctx{problem, y, prior, gen, {}};
  return solve::solver_registry().find("exact").make.run(solve::resolve_solver("exact", set), ctx);
}

TEST(ExactSolver, GivesThePosteriorMeanAndSeededDrawsOnAMixturePriorAndRefusesElsewhere) {
  const auto base = make_schedule("linear", 1000);
  auto gmm = std::make_shared<const GaussianMixture>(test::random_gmm({1, 4, 4}, 3, 4, 31, 2));
  EpsDenoiserOptions options;
  options.mixture = gmm;
  const EpsDenoiser prior(gmm_eps_model(base, gmm), base, options);
  const Problem problem = make_problem("gaussian:m=8", "gaussian:sigma=0.2", {1, 4, 4}, 4);
  torch::Generator g = make_generator(2);
  const auto x = gmm->sample(3, g).to(torch::kFloat32);
  const auto y = simulate(problem, x);

  // A of the problem as a matrix, for the reference
  const auto A = problem.op->apply(torch::eye(16).reshape({16, 1, 4, 4})).reshape({16, -1}).t().to(torch::kFloat64);
  const GmmPosterior post(*gmm, A, y.to(torch::kFloat64), 0.2);
  const auto mean = run_exact(problem, y, prior, {"output=mean"});
  EXPECT_EQ(mean.cost.nfe, 0);
  EXPECT_TRUE(torch::allclose(mean.estimate, post.mean().to(torch::kFloat32), 1e-5, 1e-5));
  const auto a = run_exact(problem, y, prior, {}, 7), b = run_exact(problem, y, prior, {}, 7),
             other = run_exact(problem, y, prior, {}, 8);
  EXPECT_TRUE(torch::equal(a.estimate, b.estimate));
  EXPECT_FALSE(torch::equal(a.estimate, other.estimate));
  EXPECT_EQ(a.estimate.sizes(), x.sizes());

  // where the posterior is not exact: one-line InputErrors naming the cause
  auto message = [&](const std::string& channel, const EpsDenoiser& pr) -> std::string {
    try {
      const Problem p = make_problem("gaussian:m=8", channel, {1, 4, 4}, 4);
      run_exact(p, simulate(p, x), pr, {});
    } catch (const InputError& e) {
      return e.what();
    }
    return "accepted";
  };
  const EpsDenoiser no_mixture(gmm_eps_model(base, gmm), base);
  EXPECT_NE(message("gaussian:sigma=0.2", no_mixture).find("needs a Gaussian-mixture prior"), std::string::npos);
  EXPECT_NE(message("logistic:temperature=0.5", prior).find("got gaussian with logistic"), std::string::npos);
  EXPECT_NE(message("sign:sigma=0.2,dither=0.3,seed=1", prior).find("without dither"), std::string::npos);
  // 1-bit: the Gibbs chain, seeded, its states consistent with y more often than not
  const Problem one_bit = make_problem("gaussian:m=24", "sign:sigma=0.2", {1, 4, 4}, 4);
  const auto y1 = simulate(one_bit, x);
  const auto s1 = run_exact(one_bit, y1, prior, {"gibbs_steps=50"}, 3), s2 = run_exact(one_bit, y1, prior, {"gibbs_steps=50"}, 3);
  EXPECT_TRUE(torch::equal(s1.estimate, s2.estimate));
  const auto agree = (one_bit.op->apply(s1.estimate).sign() == y1).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(agree, 0.8);
  EXPECT_NE(message("gaussian:sigma=0", prior).find("sigma > 0"), std::string::npos);
}

TEST(PosteriorScores, ASampledReferenceIsKeptUnderItsKeyOnly) {
  // save_reference/load_reference: the same key gives the same tensors and diagnostics back;
  // another key, a missing file or a damaged one gives nothing (the caller samples anew)
  const Linear c = linear_case({1, 3, 3}, 3, 3, 12, 0.3, 62);
  torch::Generator gy = make_generator(7);
  const auto xb = c.g.sample(3, gy).reshape({3, -1});
  const auto y = (at::matmul(xb, c.A.t()) + c.sigma * at::randn({3, c.A.size(0)}, gy, kF64)).sign();
  ProbitGibbsOptions o;
  o.chains = 2;
  o.iterations = 40;
  torch::Generator g = make_generator(2);
  const auto ref = experiment::gibbs_reference(c.g, c.A, y, c.sigma, 20, 4, o, g);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tweedie-ref-" + std::to_string(::getpid())) / "references" / "p.safetensors")
                               .string();
  experiment::save_reference(path, ref, "key-1");
  const auto back = experiment::load_reference(path, "key-1");
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(torch::equal(back->draws, ref.draws));
  EXPECT_TRUE(torch::equal(back->floor, ref.floor));
  EXPECT_TRUE(torch::equal(back->rhat, ref.rhat));
  EXPECT_EQ(back->kind, "gibbs");
  EXPECT_EQ(back->rhat_max, ref.rhat_max);
  EXPECT_FALSE(experiment::load_reference(path, "key-2").has_value());
  EXPECT_FALSE(experiment::load_reference(path + ".none", "key-1").has_value());
  { std::ofstream(path, std::ios::trunc) << "not a safetensors file"; }
  EXPECT_FALSE(experiment::load_reference(path, "key-1").has_value());
  std::filesystem::remove_all(std::filesystem::path(path).parent_path().parent_path());
}

}  // namespace
}  // namespace tweedie::diffusion
