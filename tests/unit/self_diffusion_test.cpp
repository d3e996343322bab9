// Self-diffusion and Deep Image Prior (seed 004): the untrained U-Net, the noise schedule, fitting
// real and complex (MRI) measurements, and the errors for inputs the network cannot take. Small
// networks (width 8, depth ≤ 2) on 8×8 to 16×16 signals keep the whole file to seconds.
#include <gtest/gtest.h>

#include <cmath>

#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"
#include "tweedie/data/test_images.h"
#include "tweedie/data/transforms.h"
#include "tweedie/metric/bands.h"
#include "tweedie/metric/psnr.h"
#include "tweedie/op/ula.h"
#include "tweedie/problem.h"
#include "tweedie/solve/dip.h"
#include "tweedie/solve/self_diffusion.h"

namespace tweedie::solve {
namespace {

struct Case {
  Problem problem;
  torch::Tensor x, y;
};

// The Shepp–Logan phantom at n × n (piecewise constant: what an untrained U-Net fits well).
Case phantom_case(const std::string& op, const std::string& channel, int64_t n = 16, uint64_t seed = 3) {
  Case c;
  c.x = data::shepp_logan(n).unsqueeze(0);
  c.problem = make_problem(op, channel, {1, n, n}, seed);
  c.y = simulate(c.problem, c.x);
  return c;
}

Result run(const std::string& name, const std::vector<std::string>& set, const Case& c, uint64_t seed = 0,
           Monitor monitor = {}) {
  Params p = resolve_solver(name, set);
  torch::Generator gen = make_generator(seed);
  SolveContext ctx{c.problem, c.y, no_prior(), gen, std::move(monitor)};
  return solver_registry().find(name).make.run(p, ctx);
}

double psnr(const torch::Tensor& a, const torch::Tensor& b) { return metric::psnr(a, b).mean().item<double>(); }

const std::vector<std::string> kSmallNet = {"width=8", "depth=2"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- the network ---------------------------------------------------------------------------------------

TEST(UntrainedUNet, ExtraDeepUNetLayoutAndGaussianInit) {
  torch::Generator gen = make_generator(0);
  UntrainedUNetConfig c;  // the defaults are ExtraDeepUNet: 64 → 128 → 256 → 512 → 1024 → 1024
  UntrainedUNet net(c, gen);
  // channel progression of the reference, read off the parameter shapes
  auto params = net->named_parameters();
  EXPECT_EQ(params["inc.0.weight"].sizes(), (std::vector<int64_t>{64, 1, 3, 3}));
  EXPECT_EQ(params["down.3.0.weight"].sizes(), (std::vector<int64_t>{1024, 512, 3, 3}));
  EXPECT_EQ(params["down.4.0.weight"].sizes(), (std::vector<int64_t>{1024, 1024, 3, 3}));
  EXPECT_EQ(params["up.0.0.weight"].sizes(), (std::vector<int64_t>{512, 2048, 3, 3}));
  EXPECT_EQ(params["up.4.0.weight"].sizes(), (std::vector<int64_t>{64, 128, 3, 3}));
  EXPECT_EQ(params["out.weight"].sizes(), (std::vector<int64_t>{1, 64, 1, 1}));
  // init_weights_unet2d: conv N(0, 0.02²), bias 0; BN weight N(1, 0.02²), bias 0
  auto w = params["down.4.3.weight"];
  EXPECT_NEAR(w.mean().item<double>(), 0, 1e-3);
  EXPECT_NEAR(w.std().item<double>(), 0.02, 1e-3);
  EXPECT_EQ(params["down.4.3.bias"].abs().max().item<double>(), 0);
  auto bn = params["down.4.1.weight"];
  EXPECT_NEAR(bn.mean().item<double>(), 1, 0.01);
  EXPECT_NEAR(bn.std().item<double>(), 0.02, 0.01);
}

TEST(UntrainedUNet, OneDimensionalSignalsUseOneByThreeKernels) {
  torch::Generator gen = make_generator(0);
  UntrainedUNetConfig c;
  c.width = 4, c.depth = 3, c.one_d = true, c.sigmoid = true;
  UntrainedUNet net(c, gen);
  EXPECT_EQ(net->named_parameters()["inc.0.weight"].sizes(), (std::vector<int64_t>{4, 1, 1, 3}));
  auto out = net->forward(randn({1, 1, 1, 32}, gen));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 1, 1, 32}));
  EXPECT_GE(out.min().item<double>(), 0);  // sigmoid output
  EXPECT_LE(out.max().item<double>(), 1);
}

TEST(UntrainedUNet, SameGeneratorSeedSameWeights) {
  UntrainedUNetConfig c;
  c.width = 4, c.depth = 2;
  torch::Generator g1 = make_generator(9), g2 = make_generator(9), g3 = make_generator(10);
  UntrainedUNet a(c, g1), b(c, g2), d(c, g3);
  auto x = torch::ones({1, 1, 8, 8});
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
  EXPECT_FALSE(torch::equal(a->forward(x), d->forward(x)));
}

// ---- self-diffusion ------------------------------------------------------------------------------------

TEST(SelfDiffusion, SigmaScheduleIsTheCodesDecreasingVeLevels) {
  auto s = self_diffusion_sigmas(40, 1e-4, 2e-2);
  ASSERT_EQ(s.size(), 40u);
  double prod = 1;
  for (int i = 0; i < 40; ++i) prod *= 1 - (1e-4 + (2e-2 - 1e-4) * i / 39.0);
  EXPECT_NEAR(s.front(), std::sqrt(1 - prod), 1e-12);  // σ_{T−1} first
  EXPECT_NEAR(s.back(), std::sqrt(1e-4), 1e-12);       // σ_0 = √β_start last
  for (size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i], s[i - 1]);
}

TEST(SelfDiffusion, InpaintingLowersTheMisfitAndBeatsZeroFilling) {
  Case c = phantom_case("random-mask:ratio=0.5", "gaussian:sigma=0.01");
  std::vector<double> misfit;
  auto r = run("self-diffusion", with(kSmallNet, {"steps=8", "iters=40", "lr=0.01"}), c, 1, [&](const StepReport& p) {
    misfit.push_back(p.misfit);
    return true;
  });
  ASSERT_EQ(misfit.size(), 8u);
  // monotone in expectation: the late levels fit better than the early ones, and the end best of all
  EXPECT_LT(misfit[6] + misfit[7], misfit[0] + misfit[1]);
  EXPECT_LT(misfit.back(), 0.2);
  const auto zero_filled = c.problem.op->adjoint(c.y);
  EXPECT_GT(psnr(r.estimate, c.x), psnr(zero_filled, c.x) + 3) << psnr(r.estimate, c.x) << " vs "
                                                                 << psnr(zero_filled, c.x);
  EXPECT_EQ(r.cost.nfe, 8 * 40 + 1);  // K per level, plus the scale probe
  EXPECT_EQ(r.cost.network_grads, 8 * 40);
}

TEST(SelfDiffusion, IdentityWithoutNoiseReproducesY) {
  Case c = phantom_case("identity", "gaussian:sigma=0", 8);
  auto r = run("self-diffusion", {"width=8", "depth=1", "steps=4", "iters=150", "lr=0.01"}, c, 2);
  const double rel = ((r.estimate - c.y).norm() / c.y.norm()).item<double>();
  EXPECT_LT(rel, 0.05) << "‖x̂ − y‖/‖y‖";
}

TEST(SelfDiffusion, FitsComplexMriKSpaceWithARealImage) {
  Case c = phantom_case("mri:accel=2,center=0.25", "gaussian:sigma=0", 16);
  ASSERT_TRUE(c.y.is_complex());
  std::vector<double> misfit;
  auto r = run("self-diffusion", with(kSmallNet, {"steps=5", "iters=30", "lr=0.01"}), c, 0, [&](const StepReport& p) {
    misfit.push_back(p.misfit);
    return true;
  });
  EXPECT_FALSE(r.estimate.is_complex());
  EXPECT_EQ(r.estimate.sizes(), c.x.sizes());
  EXPECT_LT(misfit.back(), misfit.front());
  EXPECT_LT(misfit.back(), 0.3);
}

TEST(SelfDiffusion, SameSeedSameOutputOtherSeedOtherOutput) {
  Case c = phantom_case("random-mask:ratio=0.5", "gaussian:sigma=0.01", 8);
  auto set = with(kSmallNet, {"steps=2", "iters=3"});
  auto a = run("self-diffusion", set, c, 4), b = run("self-diffusion", set, c, 4), d = run("self-diffusion", set, c, 5);
  EXPECT_TRUE(torch::equal(a.estimate, b.estimate));
  EXPECT_FALSE(torch::equal(a.estimate, d.estimate));
  // without resampling the run differs from the resampled one (same seed)
  auto e = run("self-diffusion", with(set, {"resample=false"}), c, 4);
  EXPECT_FALSE(torch::equal(a.estimate, e.estimate));
}

TEST(SelfDiffusion, OneDimensionalCompressedSensing) {
  // a length-32 piecewise-constant signal, 24 Gaussian measurements: the 1-D U-Net fits y
  Case c;
  c.x = torch::zeros({1, 32});
  c.x.slice(1, 8, 16).fill_(1.0);
  c.x.slice(1, 20, 26).fill_(-0.5);
  c.problem = make_problem("gaussian:m=24", "gaussian:sigma=0", {32}, 1);
  c.y = simulate(c.problem, c.x);
  std::vector<double> misfit;
  auto r = run("self-diffusion", {"width=8", "depth=2", "steps=4", "iters=50", "lr=0.01"}, c, 0,
               [&](const StepReport& p) {
                 misfit.push_back(p.misfit);
                 return true;
               });
  EXPECT_EQ(r.estimate.sizes(), c.x.sizes());
  EXPECT_LT(misfit.back(), 0.2);
}

// ---- DIP -----------------------------------------------------------------------------------------------

TEST(Dip, FitsInpaintingAndStopsEarlyOnAPlateau) {
  Case c = phantom_case("random-mask:ratio=0.5", "gaussian:sigma=0.01");
  std::vector<double> misfit;
  auto r = run("dip", with(kSmallNet, {"iters=300", "lr=0.01", "report_every=50"}), c, 1, [&](const StepReport& p) {
    misfit.push_back(p.misfit);
    return true;
  });
  ASSERT_EQ(misfit.size(), 6u);
  EXPECT_LT(misfit.back(), misfit.front());
  EXPECT_GT(psnr(r.estimate, c.x), psnr(c.problem.op->adjoint(c.y), c.x) + 3);
  // a large tolerance: no step improves the loss by 90 %, so the run ends after patience + 1 steps
  auto s = run("dip", with(kSmallNet, {"iters=300", "patience=5", "tol=0.9", "report_every=100"}), c, 1);
  EXPECT_EQ(s.cost.network_grads, 6);
  EXPECT_EQ(s.steps, 1);
}

// ---- bad inputs ----------------------------------------------------------------------------------------

std::string error_of(const std::string& name, const std::vector<std::string>& set, const Case& c) {
  try {
    run(name, set, c);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(UntrainedSolvers, BadInputsAreOneLineInputErrors) {
  for (const char* name : {"self-diffusion", "dip"}) {
    SCOPED_TRACE(name);
    // complex measurements for a real-only operator
    Case c = phantom_case("random-mask:ratio=0.5", "gaussian:sigma=0.01", 8);
    Case complex_y{c.problem, c.x, torch::complex(c.y, torch::zeros_like(c.y))};
    EXPECT_NE(error_of(name, kSmallNet, complex_y).find("y: complex measurements, but random-mask gives real ones"), std::string::npos);
    // real measurements for a complex operator
    Case m = phantom_case("mri:accel=2", "gaussian:sigma=0", 8);
    Case real_y{m.problem, m.x, torch::view_as_real(m.y).select(-1, 0).contiguous()};
    EXPECT_NE(error_of(name, kSmallNet, real_y).find("y: real measurements, but mri gives complex ones"), std::string::npos);
    // sizes the U-Net cannot take
    Case odd = phantom_case("random-mask:ratio=0.5", "gaussian:sigma=0.01", 10);
    auto msg = error_of(name, kSmallNet, odd);
    EXPECT_NE(msg.find("divisible by 4"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
    EXPECT_NE(error_of(name, {"width=4", "depth=3"}, c).find("too small"), std::string::npos);
    // NaN in y
    Case nan_y{c.problem, c.x, c.y.clone()};
    nan_y.y.view(-1)[0] = NAN;
    EXPECT_NE(error_of(name, kSmallNet, nan_y).find("NaN or Inf"), std::string::npos);  // the registry's check
    // options
    EXPECT_THROW(solver_registry().find(name).make.describe(resolve_solver(name, {"loss=l1"})), InputError);
    EXPECT_THROW(solver_registry().find(name).make.describe(resolve_solver(name, {"depth=-1"})), InputError);
  }
  EXPECT_THROW(
      SelfDiffusionOptions::table().parse(resolve_solver("self-diffusion", {"beta_start=0.1", "beta_end=0.01"})),
      InputError);
}


// ---- radar: angle of arrival with a uniform linear array -----------------------------------------------

TEST(Ula, LagsOfTheSampleCovarianceMatchTheOperatorAndMusicFindsTheSources) {
  const std::vector<double> grid = op::ula_grid(64, 60);
  const std::vector<double> angles = {grid[20], grid[40]};  // on the grid
  torch::Generator gen = make_generator(1);
  auto snap = op::simulate_ula_snapshots(angles, {1.0, 1.0}, 12, 4000, 1e-3, gen);
  // y_k ≈ Σ_g p_g e^{jπ k sin θ_g}: the operator on the true spectrum reproduces the lags
  auto A = op::make_ula({64}, {12, 60});
  auto p = torch::zeros({1, 64});
  p[0][20] = 1, p[0][40] = 1;
  auto Ap = A->apply(p)[0].to(torch::kComplexDouble);
  EXPECT_LT((Ap - snap.lags).abs().max().item<double>(), 0.1);
  EXPECT_EQ(op::peak_angles(op::music_spectrum(snap.covariance, 2, grid), grid, 2), angles);
  EXPECT_DOUBLE_EQ(op::angle_rmse({1, 4}, {0, 2}, 120), std::sqrt((1.0 + 4.0) / 2));
  EXPECT_DOUBLE_EQ(op::angle_rmse({1}, {0, 2}, 120), std::sqrt((1.0 + 120.0 * 120.0) / 2));
}

TEST(Ula, SelfDiffusionWithSigmoidOutputPeaksAtTheSources) {
  Case c;
  c.problem = make_problem("ula:elements=16", "gaussian:sigma=0", {64}, 0);
  c.x = torch::zeros({1, 64});
  c.x[0][16] = 1, c.x[0][45] = 1;
  c.y = simulate(c.problem, c.x);
  auto r = run("self-diffusion",
               {"width=8", "depth=2", "steps=6", "iters=60", "lr=0.01", "sigmoid=true", "normalize=false"}, c, 0);
  const auto grid = op::ula_grid(64, 60);
  auto peaks = op::peak_angles(r.estimate[0], grid, 2);
  EXPECT_LT(op::angle_rmse(peaks, {grid[16], grid[45]}, 120), 2 * (grid[1] - grid[0])) << peaks[0] << " " << peaks[1];
}

// ---- error by frequency band ---------------------------------------------------------------------------

TEST(BandErrors, SeparateLowFromHighFrequencyErrors) {
  torch::Generator gen = make_generator(0);
  auto x = randn({2, 64}, gen);
  auto n = torch::arange(64, torch::kFloat32);
  auto low = 0.5 * torch::cos(2 * M_PI * n / 64), high = 0.5 * torch::cos(M_PI * n);  // |f| = 1/64 and 1/2
  auto e_low = metric::band_errors(x + low, x, 4), e_high = metric::band_errors(x + high, x, 4);
  EXPECT_GT(e_low[0], 0.05);
  EXPECT_NEAR(e_low[3], 0, 1e-6);
  EXPECT_NEAR(e_high[0], 0, 1e-6);
  EXPECT_GT(e_high[3], 0.05);
  // images: the same through the radial frequency
  auto img = randn({1, 1, 16, 16}, gen);
  auto e = metric::band_errors(img, img, 3);
  for (double v : e) EXPECT_NEAR(v, 0, 1e-9);
  // Σ_b e_b² = ‖x̂ − x‖²/‖x‖²
  auto noisy = img + 0.3 * randn({1, 1, 16, 16}, gen);
  double sum = 0;
  for (double v : metric::band_errors(noisy, img, 5)) sum += v * v;
  EXPECT_NEAR(std::sqrt(sum), ((noisy - img).norm() / img.norm()).item<double>(), 1e-5);
  EXPECT_THROW(metric::band_errors(img, x, 2), InputError);
}

}  // namespace
}  // namespace tweedie::solve
