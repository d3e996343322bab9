// RED-diff against the authors' sampler (tests/parity/gen/red_diff.py; NVlabs/RED-diff @ 66482f2,
// algos/reddiff.py REDDIFF.sample with their Diffusion, ClassifierGuidanceModel and Inpainting
// degradation): the shipped reddiff.yaml (λ = grad_term_weight 0.25, v = obs_weight 1, linear
// SNR weighting, lr 0.1, Adam betas (0.9, 0.99), σ_x0 = 0, pseudo-inverse start) at 10 steps,
// box inpainting of two Fashion-MNIST images on the converged prior.
//
// Their loss is w_t·mean((ε̂ − ε)·μ) + v·mean((y − Hμ)²)/2 with both means over the whole batch
// (B·n and B·m entries); ours takes them per item, so their weights on a batch of B = 2 are our
// lambda = 0.25/2 and obs_weight = 1/2 (at σ = 1, the code's ‖y − Hμ‖²/2). That factor is not
// optional: Adam's ε = 1e-8 is not negligible against gradients of order 1e-6, so the unscaled
// run differs. Their returned x0_pred is μ before the last Adam step (output=x0_pred). The
// network runs NCHW (parity_prior_nchw), PyTorch's operation order.
#include "parity/parity_support.h"

#include "tweedie/channel/channel.h"
#include "tweedie/solve/spectral.h"

namespace tweedie::test {
namespace {

TEST(ParityRedDiff, BoxInpaintingMatchesAuthorsSampler) {
  set_threads(1);
  const ParityFixture f = load_parity("red-diff");
  const auto& s = f.meta["settings"];
  const auto& algo = s["algo"];
  const auto& box = f.meta["mask"];
  ASSERT_EQ(algo["sigma_x0"].get<double>(), 0.0);
  ASSERT_EQ(algo["eta"].get<double>(), 0.0);
  ASSERT_TRUE(algo["awd"].get<bool>());
  ASSERT_FALSE(algo["cond_awd"].get<bool>());
  ASSERT_EQ(algo["denoise_term_weight"].get<std::string>(), "linear");

  // Our box-mask is their Inpainting H: the same kept pixels in the same (ascending) order.
  const auto A = box_mask(box);
  EXPECT_TRUE(torch::equal(A->normal(torch::ones({1, 1, 32, 32}))[0], f.at("mask")));
  const torch::Tensor& y = f.at("y");
  EXPECT_TRUE(torch::equal(A->apply(f.at("x_true")), y));
  EXPECT_TRUE(torch::equal(A->adjoint(y), f.at("mu0")));  // their H_pinv(y) is our A⁺y = Aᵀy
  // the same grid: ts = range(0, 1000, 1000/S)
  const int64_t steps = s["exp"]["num_steps"].get<int64_t>();
  EXPECT_EQ(solve::uniform_skip_timesteps(1000, steps), s["ts"].get<std::vector<int64_t>>());

  Problem problem;
  problem.op = A;
  problem.channel = channel::make_channel("gaussian:sigma=0");
  const double B = s["batch"].get<double>();
  std::vector<torch::Tensor> mu;
  const auto r = run_with_draws(
      f, "red-diff",
      {"steps=" + std::to_string(steps), "lr=" + exact(algo["lr"].get<double>()),
       "lambda=" + exact(algo["grad_term_weight"].get<double>() / B),
       "obs_weight=" + exact(algo["obs_weight"].get<double>() / B),
       "weighting=linear", "init=pinv", "likelihood=linear", "sigma=1", "output=x0_pred"},
      problem, y, *parity_prior_nchw().denoiser, &mu);
  // measured (x86-64, one thread): 2.1e-6 at step 7 of 10, final 1.8e-6. With the default
  // (channels-last) network 2.6e-4: Adam's first step is lr·g/(|g| + ε), nearly sign(g), and
  // amplifies ~1e-6 differences in ε̂ at entries whose g is near 0; with λ and v not divided by
  // the batch 4.5e-4 (Adam's ε).
  expect_replay(f, mu, "traj_mu", r.estimate, 1e-5, 1e-5);
}

}  // namespace
}  // namespace tweedie::test
