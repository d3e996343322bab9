// DiffPIR against the authors' loop (tests/parity/gen/diffpir.py; yuanzhi-zhu/DiffPIR @ 111d26e,
// main_ddpir_inpainting.py executed with our prior and problem patched in): 10 quad-spaced
// steps, λ = 1, ζ = 1, AWGN σ_n = 12.75/255 on [0, 1] (their deblurring default; inpainting's is
// 0, where ρ ≈ 1e-6 would leave λ untested), box inpainting of two Fashion-MNIST images on the
// converged prior.
//
// Their data step x0' = (M y + ρ x0)/(M + ρ), ρ = λσ²ᾱ/(1 − ᾱ), is our Gaussian proximal step
// (likelihood=linear, prox=cg) at σ = 2σ_n on the [−1, 1] scale and the same λ; CG solves the
// diagonal system in one iteration. Two settings select the code's behaviour where it differs
// from the paper's Algorithm 1 (docs/parity/diffpir.md): start=y (x_T = c·y + noise, c =
// √ᾱ_999/√ᾱ_{t_y}, t_y where ρ̄ = 2σ_n) and output=state (the script returns the last state x
// at t = 0, not its x̂0).
// Their y is the whole image with the missing pixels at −1 (the zero-filled [0, 1] image); our
// box-mask operator keeps the other pixels, and start=y rebuilds that image from them. The
// network runs NCHW (parity_prior_nchw), PyTorch's operation order.
#include "parity/parity_support.h"

#include "tweedie/channel/channel.h"
#include "tweedie/solve/diffpir.h"

namespace tweedie::test {
namespace {

TEST(ParityDiffPir, BoxInpaintingMatchesAuthorsScript) {
  set_threads(1);
  const ParityFixture f = load_parity("diffpir");
  const auto& s = f.meta["settings"];
  const auto& box = f.meta["mask"];
  ASSERT_EQ(s["eta"].get<double>(), 0.0);
  ASSERT_EQ(s["guidance_scale"].get<double>(), 1.0);
  ASSERT_EQ(s["skip_type"].get<std::string>(), "quad");

  // Our box-mask removes exactly their pixels: Aᵀ A 1 is their mask; their y image is the truth
  // plus N(0, (2σ_n)²) noise on the kept pixels and −1 on the missing ones, which A drops.
  const auto A = box_mask(box);
  const torch::Tensor ones = torch::ones({1, 1, 32, 32});
  EXPECT_TRUE(torch::equal(A->normal(ones)[0], f.at("mask")));
  const torch::Tensor y = A->apply(f.at("y_image"));
  const double noise_std = (y - A->apply(f.at("x_true"))).std().item<double>();
  EXPECT_NEAR(noise_std, 2 * s["noise_level_img"].get<double>(), 0.01);
  const torch::Tensor mask = f.at("mask").expand({2, 1, 32, 32});
  EXPECT_TRUE(torch::equal(f.at("y_image").masked_select(mask == 0), -torch::ones({2 * 144})));

  Problem problem;
  problem.op = A;
  problem.channel = channel::make_channel("gaussian:sigma=0");
  // their σ on [0, 1] is max(0.001, noise_level_img): twice that on [−1, 1]
  const double sigma = 2 * s["sigma"].get<double>();
  std::vector<torch::Tensor> x0;
  const auto r = run_with_draws(
      f, "diffpir",
      {"steps=" + std::to_string(s["iter_num"].get<int>()), "lambda=" + std::to_string(s["lambda_"].get<double>()),
       "zeta=" + std::to_string(s["zeta"].get<double>()), "likelihood=linear", "sigma=" + std::to_string(sigma),
       "prox=cg", "inner_steps=3", "clip_denoised=true", "eps=corrected", "start=y", "output=state"},
      problem, y, *parity_prior_nchw().denoiser, &x0);
  // the same timesteps: our quad spacing is theirs
  const auto ts = solve::diffpir_quad_timesteps(1000, s["iter_num"].get<int>());
  const auto theirs_t = f.meta["timesteps"].get<std::vector<int64_t>>();
  EXPECT_EQ(std::vector<int64_t>(ts.begin(), ts.end()), theirs_t);

  // measured (x86-64, one thread): 5.7e-6 at step 0 (t = 999, where x̂0 = (x − √(1−ᾱ) ε̂)/√ᾱ
  // multiplies ε̂'s float rounding by ρ̄ = 158), the final state 9.8e-7; about 1.6e-5 at step 0
  // with the default (channels-last) network.
  expect_replay(f, x0, "traj_x0", r.estimate, 2e-5, 1e-5);
}

}  // namespace
}  // namespace tweedie::test
