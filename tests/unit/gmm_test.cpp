// The Gaussian-mixture control prior (tweedie/diffusion/gmm_prior.h): its closed-form denoiser
// against Monte-Carlo posterior means, against the diagonal Gaussian's, against the gradient of
// its own log-density (Tweedie's formula), the ε-model view, EM, and the file format.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "support/random_gmm.h"
#include "support/test_support.h"
#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/gaussian_prior.h"
#include "tweedie/diffusion/prior.h"
#include "tweedie/io/safetensors.h"

namespace tweedie::diffusion {
namespace {

using test::random_gmm;
const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// Self-normalised importance sampling with the prior as proposal: E[x0 | x̃] ≈ Σ w_j x0_j / Σ w_j,
// w_j = N(x̃; x0_j, σ²I), with its delta-method standard error per pixel.
struct McEstimate {
  torch::Tensor mean, se;
  double ess;
};
McEstimate monte_carlo_mean(const GaussianMixture& g, const torch::Tensor& x_tilde, double sigma,
                            int64_t draws, torch::Generator& gen) {
  const auto x0 = g.sample(draws, gen).reshape({draws, -1});
  const auto xt = x_tilde.reshape({1, -1});
  auto logw = -(x0 - xt).square().sum(1) / (2 * sigma * sigma);
  auto w = (logw - logw.max()).exp();
  w = w / w.sum();
  McEstimate e;
  e.mean = (w.unsqueeze(1) * x0).sum(0);
  e.se = ((w.square().unsqueeze(1) * (x0 - e.mean).square()).sum(0)).sqrt();
  e.ess = 1.0 / w.square().sum().item<double>();
  return e;
}

TEST(GmmPrior, DenoiserMatchesMonteCarloPosteriorMean) {
  const auto g = random_gmm({1, 2, 3}, 3, 2, 1);
  torch::Generator gen = make_generator(7);
  for (double sigma : {0.3, 0.8}) {
    for (int trial = 0; trial < 3; ++trial) {
      SCOPED_TRACE("sigma " + std::to_string(sigma) + " trial " + std::to_string(trial));
      const auto x_tilde = g.sample(1, gen) + sigma * at::randn({1, 1, 2, 3}, gen, kF64);
      const auto exact = g.posterior_mean(x_tilde, torch::tensor(sigma)).reshape({-1});
      const auto mc = monte_carlo_mean(g, x_tilde, sigma, 400000, gen);
      ASSERT_GT(mc.ess, 2000) << "too few effective draws for a meaningful check";
      const auto z = ((exact - mc.mean).abs() / (mc.se + 1e-12));
      EXPECT_LT(z.max().item<double>(), 4.5) << "exact " << exact << "\nmc " << mc.mean << "\nse " << mc.se;
      // the check has power: a mixture with other covariances is told apart
      auto wrong = g;
      wrong.eigvals = g.eigvals * 3;
      const auto off = wrong.posterior_mean(x_tilde, torch::tensor(sigma)).reshape({-1});
      EXPECT_GT(((off - mc.mean).abs() / (mc.se + 1e-12)).max().item<double>(), 4.5);
    }
  }
}

TEST(GmmPrior, OneFullRankComponentIsTheGaussianDenoiser) {
  // K = 1, d = D (no residual directions), axis-aligned: N(μ, diag(v)).
  GaussianMixture g;
  g.item_shape = {1, 2, 2};
  g.fixed = torch::zeros({4}, kF64);
  g.active = torch::arange(4, torch::kInt64);
  g.log_weights = torch::zeros({1}, kF64);
  g.means = torch::tensor({0.1, -0.2, 0.3, 0.0}, kF64).view({1, 4});
  g.basis = torch::eye(4, kF64);
  g.eigvals = torch::tensor({0.5, 0.1, 0.02, 1.5}, kF64).view({1, 4});
  g.eigvecs = torch::eye(4, kF64).unsqueeze(0);
  g.residual = torch::ones({1}, kF64);
  g.validate("test");
  GaussianDenoiser ref(g.means.view({1, 2, 2}), g.eigvals.view({1, 2, 2}));
  torch::Generator gen = make_generator(3);
  const auto x = at::randn({5, 1, 2, 2}, gen, kF64);
  const auto sigma = torch::tensor({0.01, 0.1, 1.0, 10.0, 100.0}, kF64);
  EXPECT_TRUE(torch::allclose(g.posterior_mean(x, sigma), ref.denoise(x, sigma), 1e-12, 1e-12));
}

TEST(GmmPrior, DenoiserIsTweediesFormulaOnItsOwnDensity) {
  // log_density and the denoiser are computed by separate formulas; x̃ + σ² ∇ log p_σ(x̃) must
  // equal E[x0 | x̃] (Tweedie), and inactive pixels must denoise to their fixed value.
  const auto g = random_gmm({1, 3, 3}, 4, 3, 2, /*inactive=*/2);
  torch::Generator gen = make_generator(5);
  for (double sigma : {0.05, 0.5, 5.0}) {
    auto x = (g.sample(3, gen) + sigma * at::randn({3, 1, 3, 3}, gen, kF64)).requires_grad_(true);
    const auto s = torch::tensor(sigma, kF64);
    auto grad = torch::autograd::grad({g.log_density(x, s).sum()}, {x})[0];
    const auto d = g.posterior_mean(x, s).detach();
    const auto tweedie = (x + sigma * sigma * grad).detach().reshape({3, -1}).index_select(1, g.active);
    EXPECT_TRUE(torch::allclose(d.reshape({3, -1}).index_select(1, g.active), tweedie, 1e-9, 1e-9)) << sigma;
    EXPECT_TRUE(torch::allclose(d.reshape({3, -1}).slice(1, 0, 2), torch::full({3, 2}, 0.25, kF64)));
    // the ε view: E[n | x̃] = (x̃ − E[x0 | x̃]) / σ
    const auto eps = g.posterior_noise(x.detach(), s);
    EXPECT_TRUE(torch::allclose(eps, (x.detach() - d) / sigma, 1e-9, 1e-9));
  }
}

TEST(GmmPrior, EpsModelDrivesTheEpsDenoiser) {
  auto g = std::make_shared<const GaussianMixture>(random_gmm({1, 4, 4}, 3, 4, 4));
  const auto base = make_schedule("linear", 1000);
  EpsDenoiser den(gmm_eps_model(base, g), base);
  torch::Generator gen = make_generator(9);
  const auto x0 = g->sample(4, gen);
  for (double sigma : {0.02, 0.3, 3.0}) {
    const auto xt = x0 + sigma * at::randn(x0.sizes(), gen, kF64);
    const auto d = den.denoise(xt.to(torch::kFloat32), sigma).to(torch::kFloat64);
    EXPECT_TRUE(torch::allclose(d, g->posterior_mean(xt, torch::tensor(sigma)), 1e-4, 1e-4)) << sigma;
  }
  EXPECT_EQ(den.nfe(), 3);
}

TEST(GmmPrior, EmIncreasesLikelihoodAndRecoversTheTruth) {
  // A truth the fitted family holds: means inside span(U) (PCA then finds U), components apart.
  auto truth = random_gmm({1, 4, 4}, 4, 3, 11, /*inactive=*/1);
  torch::Generator gen = make_generator(12);
  truth.means = at::matmul(at::randn({4, 3}, gen, kF64) * 1.5, truth.basis.t());
  truth.validate("truth");
  const int64_t n = 6000;
  const auto x = truth.sample(n, gen);
  // labels: the true component of each draw is unknown here, so use none (k-means over all)
  GmmFitOptions o;
  o.components_per_class = 4;
  o.dims = 3;
  o.iterations = 25;
  o.variance_floor = 1e-6;
  auto fit = fit_gmm(x, torch::Tensor(), o, gen);
  const auto& ll = fit.log_likelihood;
  ASSERT_EQ(ll.size(), 26u);
  for (size_t i = 1; i < ll.size(); ++i) EXPECT_GE(ll[i], ll[i - 1] - 1e-6) << "EM step " << i;
  const double true_ll = truth.log_density(x, torch::tensor(0.0)).mean().item<double>();
  EXPECT_GT(ll.back(), true_ll - 0.05) << "fitted " << ll.back() << " vs truth " << true_ll;
  EXPECT_TRUE(torch::equal(fit.model.active, truth.active));
  EXPECT_TRUE(torch::allclose(fit.model.fixed, truth.fixed));
}

TEST(GmmPrior, FileRoundTripAndBadFiles) {
  const auto dir = test::scratch_dir();
  const auto g = random_gmm({1, 2, 3}, 3, 2, 1);
  const std::string path = (dir / "gmm.safetensors").string();
  save_gmm(path, g);
  const auto back = load_gmm(path);
  EXPECT_EQ(back.item_shape, g.item_shape);
  EXPECT_TRUE(torch::equal(back.means, g.means));
  EXPECT_TRUE(torch::equal(back.eigvecs, g.eigvecs));

  auto expect_error = [&](const io::TensorMap& t, const std::map<std::string, std::string>& meta,
                          const std::string& needle) {
    const std::string bad = (dir / "bad.safetensors").string();
    io::write_safetensors(bad, t, meta);
    try {
      load_gmm(bad);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(bad), std::string::npos) << what;
      EXPECT_NE(what.find(needle), std::string::npos) << what;
    }
  };
  auto st = io::read_safetensors(path);
  auto t = st.tensors;
  t.erase("eigvals");
  expect_error(t, st.metadata, "missing tensor 'eigvals'");
  t = st.tensors;
  t["extra"] = torch::zeros({1});
  expect_error(t, st.metadata, "unexpected tensor 'extra'");
  t = st.tensors;
  t["means"] = torch::zeros({3, 4}, kF64);
  expect_error(t, st.metadata, "'means'");
  t = st.tensors;
  t["eigvals"] = -st.tensors["eigvals"];
  expect_error(t, st.metadata, "'eigvals' must be positive");
  t = st.tensors;
  t["basis"] = st.tensors["basis"] * 2;
  expect_error(t, st.metadata, "orthonormal");
  expect_error(st.tensors, {}, "not a GMM prior");
  expect_error(st.tensors, {{"tweedie.gmm", "{\"item_shape\": [1, 2, 7]}"}}, "'fixed'");
  // through load_prior, as --prior gmm:FILE
  EXPECT_THROW(load_prior(std::string(kGmmPrefix) + (dir / "bad.safetensors").string()), InputError);
  auto prior = load_prior(std::string(kGmmPrefix) + path);
  EXPECT_EQ(prior.item_shape(), g.item_shape);
  EXPECT_EQ(prior.describe().at("components"), 3);
}

// A prior by name: load_prior("gaussian:...") builds the registry's entry, whose denoiser is the
// exact one of N(0, var I) (D = v/(v + σ²) x̃), reports its spec and shape, and refuses bad settings
// and an architecture file in one line.
TEST(PriorRegistry, AGaussianPriorByNameIsTheExactDenoiser) {
  const Prior p = load_prior("gaussian:var=0.5,channels=2,size=4");
  EXPECT_EQ(p.path, "gaussian:var=0.5,channels=2,size=4");
  EXPECT_EQ(p.item_shape(), (std::vector<int64_t>{2, 4, 4}));
  EXPECT_EQ(p.describe().at("kind"), "by name");
  auto x = torch::randn({3, 2, 4, 4}, torch::kFloat64);
  for (double sigma : {0.1, 1.0, 10.0}) {
    const auto d = p.denoiser->denoise(x, sigma).to(torch::kFloat64);
    const auto want = (0.5 / (0.5 + sigma * sigma)) * x;
    EXPECT_LT((d - want).abs().max().item<double>(), 1e-4 * (1 + want.abs().max().item<double>())) << sigma;
  }
  EXPECT_THROW(load_prior("gaussian:var=-1"), InputError);
  EXPECT_THROW(load_prior("gaussian:mean=1"), InputError);  // unknown setting
  EXPECT_THROW(load_prior("gaussian", torch::kCPU, "model.json"), InputError);
  try {
    load_prior("gaussian:var=0");
    ADD_FAILURE() << "var=0 was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "prior gaussian: var must be positive, got 0");
  }
}

}  // namespace
}  // namespace tweedie::diffusion
