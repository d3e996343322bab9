// Channels: conformance of every registry entry (NLL gradient vs central differences in
// float64, finiteness at extreme z, simulated statistics vs the model) and stable log Φ.
#include <gtest/gtest.h>

#include <cmath>

#include "tweedie/channel/binary.h"
#include "tweedie/channel/channel.h"
#include "tweedie/channel/gaussian.h"
#include "tweedie/channel/logprob.h"
#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"

namespace tweedie::channel {
namespace {

std::vector<std::string> all_examples() {
  std::vector<std::string> specs;
  for (auto* e : channel_registry().entries())
    for (auto& s : e->examples) specs.push_back(s);
  return specs;
}

TEST(ChannelRegistry, EveryEntryHasExamples) {
  for (auto* e : channel_registry().entries()) EXPECT_FALSE(e->examples.empty()) << e->name;
  for (auto name : {"gaussian", "sign", "logistic", "link", "cubic", "quantize", "poisson"})
    EXPECT_NO_THROW(channel_registry().find(name)) << name;
  EXPECT_THROW(make_channel("nope"), InputError);
  EXPECT_THROW(make_channel("sign"), InputError);            // sigma is required
  EXPECT_THROW(make_channel("sign:sigma=x"), InputError);
  EXPECT_THROW(make_channel("link:f=sine"), InputError);
  EXPECT_THROW(make_channel("gaussian:sigma=1|sign:sigma=1"), InputError);
}

// ∂nll/∂z against central differences, float64, at z on the scale of the channel.
TEST(ChannelConformance, NllGradientMatchesFiniteDifferences) {
  auto gen = make_generator(1);
  for (auto& spec : all_examples()) {
    SCOPED_TRACE(spec);
    auto ch = make_channel(spec, 5);
    double s = ch->scale();
    auto z0 = torch::randn({2, 12}, gen, torch::kFloat64) * (2 * s);
    auto y = ch->simulate(z0, gen);
    auto z = (z0 + torch::randn({2, 12}, gen, torch::kFloat64) * s).requires_grad_(true);
    ch->nll(z, y).sum().backward();
    auto g = z.grad();
    auto zd = z.detach();
    double h = 1e-6 * s;
    auto flat = zd.flatten();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      auto zp = flat.clone(), zm = flat.clone();
      zp[i] += h;
      zm[i] -= h;
      double fd = (ch->nll(zp.view_as(zd), y).sum() - ch->nll(zm.view_as(zd), y).sum()).item<double>() / (2 * h);
      double an = g.flatten()[i].item<double>();
      ASSERT_NEAR(an, fd, 1e-5 * (1 + std::abs(fd))) << "element " << i << " z=" << flat[i].item<double>();
    }
  }
}

// Finite NLL and gradient for |z| up to 40 scales, every possible y, float32 and float64.
TEST(ChannelConformance, ExtremeArgumentsStayFinite) {
  auto gen = make_generator(2);
  for (auto& spec : all_examples()) {
    SCOPED_TRACE(spec);
    auto ch = make_channel(spec, 5);
    double s = ch->scale();
    for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
      auto t = torch::tensor({-40.0, -20.0, -5.0, -1.0, 0.0, 1.0, 5.0, 20.0, 40.0}, torch::kFloat64) * s;
      auto ys = ch->simulate((torch::randn({4, 9}, gen, torch::kFloat64) * 3 * s).to(dtype), gen);
      // Also the measurements produced by the extreme z themselves.
      ys = torch::cat({ys, ch->simulate(t.to(dtype).expand({2, 9}).contiguous(), gen),
                       ch->simulate((-t).to(dtype).expand({2, 9}).contiguous(), gen)});
      auto z = t.to(dtype).expand({ys.size(0), 9}).contiguous().requires_grad_(true);
      auto nll = ch->nll_elements(z, ys);
      ASSERT_TRUE(torch::isfinite(nll).all().item<bool>()) << nll;
      nll.sum().backward();
      ASSERT_TRUE(torch::isfinite(z.grad()).all().item<bool>()) << z.grad();
    }
  }
}

// nll_floor(y) is inf over z of nll_elements(z, y), elementwise: never above the NLL at any z,
// and reached (to 1e-5) by the best z of a grid over ±40 scales refined around its minimum.
TEST(ChannelConformance, NllFloorIsTheInfimumOverZ) {
  auto gen = make_generator(8);
  auto specs = all_examples();
  for (const char* extra : {"link:f=relu,sigma=0.2", "link:f=square,sigma=0.2", "link:f=abs,sigma=0.2",
                            "link:f=sign,sigma=0.2", "link:f=identity,sigma=0.2"})
    specs.push_back(extra);
  for (auto& spec : specs) {
    SCOPED_TRACE(spec);
    auto ch = make_channel(spec, 5);
    const double s = ch->scale();
    auto y = ch->simulate(torch::randn({2, 12}, gen, torch::kFloat64) * (2 * s), gen);  // [2, 12]
    auto floor = ch->nll_floor(y);
    ASSERT_EQ(floor.sizes(), y.sizes());
    // the NLL of every grid value z for every element: z [G, 2, 12] (the item shape [12] kept, so
    // a dither stays the same), min over G
    auto min_over = [&](const torch::Tensor& zs) {  // zs [G, 2, 12]
      const int64_t G = zs.size(0);
      auto nll = ch->nll_elements(zs.reshape({G * 2, 12}), y.repeat({G, 1})).view({G, 2, 12});
      return nll.min(0);
    };
    auto coarse = torch::linspace(-40 * s, 40 * s, 8001, torch::kFloat64).view({-1, 1, 1}).expand({8001, 2, 12});
    auto [cmin, carg] = min_over(coarse.contiguous());
    EXPECT_TRUE((cmin >= floor - 1e-9 * (1 + floor.abs())).all().item<bool>()) << (cmin - floor).min();
    auto best = coarse.gather(0, carg.unsqueeze(0)).squeeze(0);
    auto fine = best.unsqueeze(0) + torch::linspace(-0.01 * s, 0.01 * s, 2001, torch::kFloat64).view({-1, 1, 1});
    auto fmin = std::get<0>(min_over(fine.contiguous()));
    EXPECT_TRUE((fmin >= floor - 1e-9 * (1 + floor.abs())).all().item<bool>()) << (fmin - floor).min();
    EXPECT_LT((fmin - floor).max().item<double>(), 1e-5) << "floor " << floor << "\nreached " << fmin;
  }
  // complex y (MRI k-space): the floor is the NLL at z = y, two real components
  auto ch = make_channel("gaussian:sigma=0.3");
  auto y = ch->simulate(torch::randn({1, 6}, gen, torch::kComplexDouble), gen);
  EXPECT_TRUE(torch::allclose(ch->nll_floor(y), ch->nll_elements(y, y)));
}

// Discrete channels: over 10⁵ draws at heterogeneous z, the count of each observed value c
// matches Σ_i P(y_i = c | z_i) = Σ_i exp(−nll(z_i, c)) within 4 standard errors.
TEST(ChannelConformance, SimulatedFrequenciesMatchTheLikelihood) {
  auto gen = make_generator(3);
  int checked = 0;
  for (auto& spec : all_examples()) {
    auto ch = make_channel(spec, 5);
    if (!ch->discrete()) continue;
    SCOPED_TRACE(spec);
    const int64_t n = 100000;
    auto z = torch::randn({1, n}, gen, torch::kFloat64) * (1.5 * ch->scale());
    if (ch->name() == "poisson") z = z.abs();  // keep the rate above its floor
    auto y = ch->simulate(z, gen);
    auto values = std::get<0>(at::_unique(y.flatten(), /*sorted=*/true));
    ASSERT_LE(values.numel(), 200);
    auto total = torch::zeros({1, n}, torch::kFloat64);
    for (int64_t k = 0; k < values.numel(); ++k) {
      auto c = torch::full_like(z, values[k].item<double>());
      auto p = torch::exp(-ch->nll_elements(z, c));
      total += p;
      double expected = p.sum().item<double>(), se = std::sqrt((p * (1 - p)).sum().item<double>());
      double observed = (y == values[k]).sum().item<double>();
      EXPECT_LE(std::abs(observed - expected), 4 * se + 1e-9) << "y=" << values[k].item<double>();
    }
    EXPECT_LE(total.max().item<double>(), 1 + 1e-9);  // probabilities of distinct values
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

TEST(ChannelStatistics, OneBitMatchesProbitAndLogistic) {
  auto gen = make_generator(4);
  const int64_t n = 100000;
  const double sigma = 0.5, z = 0.3;
  auto sign = make_channel("sign:sigma=0.5");
  auto y = sign->simulate(torch::full({1, n}, z, torch::kFloat64), gen);
  double p = 0.5 * std::erfc(-z / sigma / std::sqrt(2.0));  // Φ(z/σ)
  double se = std::sqrt(n * p * (1 - p));
  EXPECT_NEAR((y == 1).sum().item<double>(), n * p, 4 * se);
  auto logistic = make_channel("logistic");
  y = logistic->simulate(torch::full({1, n}, z, torch::kFloat64), gen);
  p = 1 / (1 + std::exp(-z));
  EXPECT_NEAR((y == 1).sum().item<double>(), n * p, 4 * std::sqrt(n * p * (1 - p)));
  // Noiseless sign: sign(0) = +1.
  auto s0 = make_channel("sign:sigma=0");
  EXPECT_TRUE(torch::equal(s0->simulate(torch::tensor({{-1.0, 0.0, 2.0}}), gen), torch::tensor({{-1.0, 1.0, 1.0}})));
  EXPECT_THROW(s0->nll(torch::zeros({1, 3}), torch::ones({1, 3})), InputError);
}

TEST(ChannelStatistics, GaussianAndLinkResidualsHaveTheNoiseMoments) {
  auto gen = make_generator(5);
  const int64_t n = 100000;
  for (auto link : {Link::kIdentity, Link::kCubic, Link::kTanh}) {
    auto ch = make_gaussian({0.2, link});
    auto z = torch::randn({1, n}, gen, torch::kFloat64);
    auto r = ch->simulate(z, gen) - apply_link(link, z);
    EXPECT_NEAR(r.mean().item<double>(), 0.0, 4 * 0.2 / std::sqrt(n));
    EXPECT_NEAR(r.var().item<double>(), 0.04, 4 * 0.04 * std::sqrt(2.0 / (n - 1)));
  }
  // Complex z: N(0, σ²) in each of the real and imaginary parts.
  auto ch = make_gaussian({0.2, Link::kIdentity});
  auto z = torch::zeros({1, n}, torch::kComplexDouble);
  auto y = ch->simulate(z, gen);
  EXPECT_NEAR(torch::real(y).var().item<double>(), 0.04, 4 * 0.04 * std::sqrt(2.0 / (n - 1)));
  EXPECT_NEAR(torch::imag(y).var().item<double>(), 0.04, 4 * 0.04 * std::sqrt(2.0 / (n - 1)));
}

TEST(ChannelStatistics, DitherIsFixedAndKnownToTheLikelihood) {
  auto gen = make_generator(6);
  auto ch = make_channel("sign:sigma=0.01,dither=1,seed=4");
  auto z = torch::zeros({2, 1000}, torch::kFloat64);
  auto y = ch->simulate(z, gen);
  // Same dither for every item of the batch and every call; nearly noiseless, so y = sign(d).
  EXPECT_GT((y[0] == y[1]).to(torch::kFloat64).mean().item<double>(), 0.97);
  EXPECT_NEAR((y == 1).to(torch::kFloat64).mean().item<double>(), 0.5, 0.06);
  EXPECT_LT(ch->nll(z, y).mean().item<double>(), ch->nll(z, -y).mean().item<double>());
}

TEST(ChannelStatistics, QuantizerLevelsAndDataDrivenDelta) {
  auto gen = make_generator(7);
  auto q = make_channel("quantize:bits=2,sigma=0");
  auto z = torch::linspace(-1, 1, 101, torch::kFloat64).view({1, -1});
  auto y = q->simulate(z, gen);
  // δ = (max − min)/2^b = 0.5; levels ±0.25, ±0.75.
  EXPECT_NE(q->spec().find("delta=0.5"), std::string::npos) << q->spec();
  auto levels = std::get<0>(at::_unique(y.flatten(), true));
  EXPECT_TRUE(torch::allclose(levels, torch::tensor({-0.75, -0.25, 0.25, 0.75}, torch::kFloat64)));
  EXPECT_NO_THROW(q->validate(y));
  EXPECT_THROW(q->validate(y + 0.1), InputError);
}

TEST(StableMath, LogNdtrAndIntervalProbabilities) {
  // log Φ(−40) from the asymptotic series −x²/2 − log(−x√(2π)) + log(1 − 1/x² + 3/x⁴ − 15/x⁶)
  double x = -40;
  double ref = -x * x / 2 - std::log(-x * std::sqrt(2 * M_PI)) + std::log(1 - 1 / (x * x) + 3 / std::pow(x, 4) - 15 / std::pow(x, 6));
  EXPECT_NEAR(log_ndtr(torch::tensor({x}, torch::kFloat64)).item<double>(), ref, 1e-9);
  EXPECT_NEAR(log_ndtr(torch::tensor({40.0}, torch::kFloat64)).item<double>(), 0.0, 1e-300);
  // log(Φ(b) − Φ(a)) against the direct formula where it is accurate, and the tails.
  auto Phi = [](double v) { return 0.5 * std::erfc(-v / std::sqrt(2.0)); };
  for (auto [a, b] : std::vector<std::pair<double, double>>{{-1, 0.5}, {0.2, 0.7}, {-3, -2}, {1, 4}}) {
    double got = log_diff_ndtr(torch::tensor({a}, torch::kFloat64), torch::tensor({b}, torch::kFloat64)).item<double>();
    EXPECT_NEAR(got, std::log(Phi(b) - Phi(a)), 1e-12) << a << "," << b;
  }
  double inf = std::numeric_limits<double>::infinity();
  auto v = log_diff_ndtr(torch::tensor({30.0, -inf, 2.0, -41.0}, torch::kFloat64),
                         torch::tensor({31.0, -35.0, inf, -40.0}, torch::kFloat64));
  EXPECT_TRUE(torch::isfinite(v).all().item<bool>()) << v;
  // Φ(31) − Φ(30) ≈ Φ(−30) when the bins are far in the tail.
  EXPECT_NEAR(v[0].item<double>(), log_ndtr(torch::tensor({-30.0}, torch::kFloat64)).item<double>(), 1e-6);
  EXPECT_NEAR(v[2].item<double>(), std::log(Phi(-2.0)), 1e-12);
}

}  // namespace
}  // namespace tweedie::channel
