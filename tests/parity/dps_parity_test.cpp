// DPS against the authors' loop (tests/parity/gen/dps.py; DPS2022/diffusion-posterior-sampling
// @ effbde7): DDPM respaced to 10 steps, PosteriorSampling with scale 0.5, box inpainting of two
// Fashion-MNIST images with σ = 0.05 Gaussian noise, on the converged prior (fixed_small).
// Their operator is A x = mask ⊙ x on the whole image, and their y carries noise inside the box
// too; ‖y − A x̂0‖ (whose inverse scales every step) includes that noise, so the test uses their
// operator as a dense diag(mask), and checks separately that our box-mask operator removes the
// same pixels. Their script runs one image per loop call; our batch of two with per-item norms
// is the same computation (the fixture stacks each draw over the two calls).
#include "parity/parity_support.h"

#include "tweedie/channel/channel.h"

namespace tweedie::test {
namespace {

TEST(ParityDps, BoxInpaintingMatchesAuthorsLoop) {
  set_threads(1);
  const ParityFixture f = load_parity("dps");
  const auto& s = f.meta["settings"];
  const int64_t steps = std::stoll(s["diffusion"]["timestep_respacing"].get<std::string>());
  const double scale = s["conditioning"]["scale"].get<double>();
  const double noise = s["noise"]["sigma"].get<double>();
  const auto& box = s["operator"]["box"];

  // Their operator, exactly: A = diag(mask) on the flattened image.
  const torch::Tensor mask = f.at("mask").flatten();
  const auto A = dense_operator(torch::diag(mask), {1, 32, 32});
  const auto& probe = f.at("probe");
  EXPECT_TRUE(torch::allclose(A->adjoint(A->apply(probe)), f.at("A_probe"), 0, 0));
  // Ours removes the same pixels: box-mask's zero-filled Aᵀ A x equals their mask ⊙ x.
  const auto box_op = box_mask(box);
  EXPECT_TRUE(torch::equal(box_op->adjoint(box_op->apply(probe)), f.at("A_probe")));

  Problem problem;
  problem.op = A;
  problem.channel = channel::make_channel("gaussian:sigma=" + std::to_string(noise));
  const torch::Tensor y = f.at("y").flatten(1);
  std::vector<torch::Tensor> x0;
  const auto r = run_with_draws(f, "dps",
                                {"steps=" + std::to_string(steps), "zeta=" + std::to_string(scale),
                                 "clip_denoised=true", "likelihood=channel"},
                                problem, y, *parity_prior().denoiser, &x0);
  // measured: 1.29e-5 (step 0, where x̂0 = (x − √(1−ᾱ) ε)/√ᾱ magnifies the two U-Nets' float32
  // differences by 1/√ᾱ ≈ 156); final estimate 2.6e-7
  expect_replay(f, x0, "traj_x0", r.estimate, 1e-4, 1e-4);
}

}  // namespace
}  // namespace tweedie::test
