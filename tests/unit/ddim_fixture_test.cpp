// Golden replay of guided-diffusion's samplers on the perturbed config-A U-Net
// (shared/fixtures/guided-diffusion): ddim_sample_loop (clip / no clip), the DDIB-style loop of
// ddim_reverse_sample (clip / no clip) and SpacedDiffusion.p_mean_variance with learned-range
// variance. Tolerances follow the fixtures' README: the reference ran with 1 thread and differs
// from a 2-thread run by up to 1e-5 (samples), 1.3e-4 (x̂0 trajectories) and 1.1e-3 (reverse x̂0
// at late steps, amplified by 1/√ᾱ ≈ 100), so bitwise equality is not expected.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <iostream>

#include "support/test_support.h"
#include "tweedie/diffusion/denoiser.h"
#include "tweedie/diffusion/samplers.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/diffusion/unet.h"
#include "tweedie/io/npy.h"

namespace tweedie::diffusion {
namespace {

using test::gd_fixtures_dir;

torch::Tensor fixture(const std::string& name) { return io::read_npy((gd_fixtures_dir() / name).string()); }

// One network for the whole suite (loading is the slow part).
class DdimFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::has_gd_fixture("gd_A.pt")) return;
    net_ = new UNet(load_unet((gd_fixtures_dir() / "gd_A.pt").string(), (gd_fixtures_dir() / "gd_A.json").string()));
    (*net_)->eval();
  }
  static void TearDownTestSuite() {
    delete net_;
    net_ = nullptr;
  }
  void SetUp() override {
    if (!net_) TWEEDIE_SKIP_MISSING() << "guided-diffusion fixtures not found";
  }

  // DPS / the fixtures: linear 1000 base, ε prediction, learned-range variance.
  EpsDenoiser denoiser() const {
    UNet net = *net_;
    EpsModel model = [net](const torch::Tensor& x, const torch::Tensor& t) mutable {
      return net->forward(x, t);
    };
    return EpsDenoiser(model, make_schedule("linear", 1000), {VarianceType::kLearnedRange});
  }

  static UNet* net_;
};
UNet* DdimFixture::net_ = nullptr;

// Elementwise |a − b| ≤ atol + rtol·|b|; reports the worst excess so failures are readable.
void expect_close(const torch::Tensor& got, const torch::Tensor& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const auto diff = (got.to(torch::kFloat64) - want.to(torch::kFloat64)).abs();
  const auto bound = atol + rtol * want.to(torch::kFloat64).abs();
  const double worst = (diff - bound).max().item<double>();
  std::cout << "[ fixture ] " << what << ": max abs diff " << diff.max().item<double>()
            << " (|ref| max " << want.abs().max().item<double>() << ")\n";
  EXPECT_LE(worst, 0.0) << what << ": max abs diff " << diff.max().item<double>();
}

struct Trajectory {
  std::vector<torch::Tensor> x, pred_x0;
  StepMonitor monitor() {
    return [this](const StepInfo& info) {
      x.push_back(info.x.clone());
      pred_x0.push_back(info.pred_x0.clone());
      return true;
    };
  }
  torch::Tensor xs() const { return torch::stack(x); }
  torch::Tensor x0s() const { return torch::stack(pred_x0); }
};

torch::Generator gen0() { return at::make_generator<at::CPUGeneratorImpl>(0); }

TEST_F(DdimFixture, SampleLoopClipped) {
  const EpsDenoiser model = denoiser();
  const Schedule s = respace(model.base(), "ddim20");
  Trajectory traj;
  auto gen = gen0();
  const auto out =
      ddim_sample(model, s, fixture("ddim_noise.npy"), DdimOptions{}, gen, traj.monitor());
  EXPECT_EQ(out.nfe, 20);
  expect_close(out.x, fixture("ddim_sample.npy"), 1e-3, 1e-3, "ddim_sample");
  expect_close(traj.xs(), fixture("ddim_traj_sample.npy"), 1e-3, 1e-3, "ddim_traj_sample");
  expect_close(traj.pred_x0[0], fixture("ddim_pred_xstart_step0.npy"), 1e-3, 1e-3,
               "ddim_pred_xstart_step0");
  expect_close(traj.x0s(), fixture("ddim_traj_pred_xstart.npy"), 1e-3, 1e-2,
               "ddim_traj_pred_xstart");
}

TEST_F(DdimFixture, SampleLoopUnclipped) {
  const EpsDenoiser model = denoiser();
  const Schedule s = respace(model.base(), "ddim20");
  Trajectory traj;
  auto gen = gen0();
  DdimOptions opt;
  opt.clip_denoised = false;
  const auto out = ddim_sample(model, s, fixture("ddim_noise.npy"), opt, gen, traj.monitor());
  // Values reach ±470: relative tolerance, with an absolute floor for entries near zero.
  expect_close(out.x, fixture("ddim_sample_noclip.npy"), 1e-3, 1e-3, "ddim_sample_noclip");
  expect_close(traj.xs(), fixture("ddim_traj_sample_noclip.npy"), 1e-3, 1e-3,
               "ddim_traj_sample_noclip");
  expect_close(traj.pred_x0[0], fixture("ddim_pred_xstart_step0_noclip.npy"), 1e-3, 1e-3,
               "ddim_pred_xstart_step0_noclip");
}

TEST_F(DdimFixture, ReverseLoopClipped) {
  const EpsDenoiser model = denoiser();
  const Schedule s = respace(model.base(), "ddim20");
  Trajectory traj;
  DdimInversionOptions opt;
  opt.reference_loop = true;  // 20 ddim_reverse_sample calls, i = 0..19
  opt.clip_denoised = true;
  const auto x0 = fixture("ddim_reverse_x0.npy");
  const auto out = ddim_invert(model, s, x0, opt, traj.monitor());
  EXPECT_EQ(out.steps, 20);
  expect_close(out.x, fixture("ddim_reverse_latent.npy"), 1e-3, 1e-3, "ddim_reverse_latent");
  expect_close(traj.xs(), fixture("ddim_reverse_traj_latent.npy"), 1e-3, 1e-3,
               "ddim_reverse_traj_latent");
  expect_close(traj.x0s(), fixture("ddim_reverse_traj_pred_xstart.npy"), 1e-3, 1e-2,
               "ddim_reverse_traj_pred_xstart");
  // The latent at ᾱ(950) is the 19th step (target_index semantics), not the reference's last.
  DdimInversionOptions to_last;
  to_last.clip_denoised = true;
  const auto latent = ddim_invert(model, s, x0, to_last);
  EXPECT_EQ(latent.steps, 19);
  expect_close(latent.x, fixture("ddim_reverse_traj_latent.npy")[18], 1e-3, 1e-3,
               "latent at alpha_bar(950)");
}

TEST_F(DdimFixture, ReverseLoopUnclipped) {
  const EpsDenoiser model = denoiser();
  const Schedule s = respace(model.base(), "ddim20");
  Trajectory traj;
  DdimInversionOptions opt;
  opt.reference_loop = true;
  opt.clip_denoised = false;
  const auto out = ddim_invert(model, s, fixture("ddim_reverse_x0.npy"), opt, traj.monitor());
  expect_close(out.x, fixture("ddim_reverse_latent_noclip.npy"), 1e-3, 1e-3,
               "ddim_reverse_latent_noclip");
  expect_close(traj.xs(), fixture("ddim_reverse_traj_latent_noclip.npy"), 1e-3, 1e-3,
               "ddim_reverse_traj_latent_noclip");
}

TEST_F(DdimFixture, PMeanVarianceLearnedRange) {
  torch::NoGradGuard no_grad;
  const EpsDenoiser model = denoiser();
  const Schedule s = respace(model.base(), "1000");  // SpacedDiffusion(linear, '1000')
  const auto mv = model.p_mean_variance(s, fixture("gd_A_x.npy"), fixture("gd_A_t.npy"));
  expect_close(mv.pred_x0, fixture("pmv_A_pred_xstart.npy"), 1e-4, 1e-4, "pmv_A_pred_xstart");
  expect_close(mv.mean, fixture("pmv_A_mean.npy"), 1e-4, 1e-4, "pmv_A_mean");
  expect_close(mv.log_variance, fixture("pmv_A_log_variance.npy"), 1e-4, 1e-4,
               "pmv_A_log_variance");
}

// The continuous view of the same network: at σ = σ_k the interpolated t is k, so
// D(x_t/√ᾱ_k, σ_k) equals the discrete unclipped x̂0 up to float rounding of x_t.
TEST_F(DdimFixture, ContinuousDenoiserMatchesDiscreteAtTableSigmas) {
  torch::NoGradGuard no_grad;
  const EpsDenoiser model = denoiser();
  const Schedule& base = model.base();
  const auto x = fixture("gd_A_x.npy");
  for (int64_t k : {10, 300, 737}) {
    const auto idx = index_tensor(k, x.size(0));
    const auto x0 = model.pred_x0(base, x, idx, /*clip_denoised=*/false);
    const double ab = base.alphas_cumprod[k];
    const double sigma = std::sqrt((1 - ab) / ab);
    const auto d = model.denoise(x / std::sqrt(ab), sigma);
    expect_close(d, x0, 1e-4, 1e-4 * (1 + sigma), "D vs pred_x0 at k=" + std::to_string(k));
  }
}

}  // namespace
}  // namespace tweedie::diffusion
