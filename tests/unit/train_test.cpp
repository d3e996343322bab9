// Training resumes to the same loss log: a run stopped at a checkpoint inside a log window and
// resumed logs the same rows, to the last bit, as one that never stopped.
#include <gtest/gtest.h>

#include "support/test_support.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/diffusion/train.h"
#include "tweedie/diffusion/unet.h"

namespace tweedie::diffusion {
namespace {

UNetConfig tiny_config() {
  UNetConfig c;
  c.image_size = 8;
  c.in_channels = c.out_channels = 1;
  c.model_channels = 32;
  c.num_res_blocks = 1;
  c.channel_mult = {1};
  return c;
}

TrainOptions tiny_options() {
  TrainOptions o;
  o.steps = 8;
  o.batch_size = 2;
  o.warmup_steps = 2;
  o.log_every = 2;         // a loss row every 2 steps ...
  o.checkpoint_every = 3;  // ... and checkpoints inside a row's window
  return o;
}

struct Stop {};

TEST(Trainer, ResumedInsideALogWindowLogsTheSameRows) {
  torch::Tensor data = torch::rand({6, 1, 8, 8}, torch::TensorOptions().dtype(torch::kFloat32)) * 2 - 1;
  const std::string ckpt = (test::scratch_dir() / "checkpoint.safetensors").string();

  Trainer whole(UNet(tiny_config()), data, tiny_options(), 7);
  whole.run({}, {});

  Trainer first(UNet(tiny_config()), data, tiny_options(), 7);
  try {
    first.run({}, [&](int64_t step) {
      first.save_checkpoint(ckpt);
      if (step == 3) throw Stop{};  // a kill right after the step-3 checkpoint: mid-window
    });
  } catch (const Stop&) {
  }
  ASSERT_EQ(first.step(), 3);
  Trainer resumed(UNet(tiny_config()), data, tiny_options(), 7);
  resumed.load_checkpoint(ckpt);
  resumed.run({}, {});

  ASSERT_EQ(resumed.history().size(), whole.history().size());
  for (size_t i = 0; i < whole.history().size(); ++i) {
    EXPECT_EQ(resumed.history()[i].step, whole.history()[i].step);
    EXPECT_EQ(resumed.history()[i].loss, whole.history()[i].loss) << "row " << i;  // bitwise
    EXPECT_EQ(resumed.history()[i].lr, whole.history()[i].lr);
  }
}

}  // namespace
}  // namespace tweedie::diffusion

namespace tweedie::diffusion {
namespace {

TEST(EpsilonLoss, MinSnrWeightsEachItemByMinSnrOverSnr) {
  torch::manual_seed(3);
  UNet net(tiny_config());
  const auto base = make_schedule("linear", 1000);
  const torch::Tensor x0 = torch::rand({4, 1, 8, 8}) * 2 - 1, noise = torch::randn({4, 1, 8, 8});
  const torch::Tensor t = torch::tensor({0, 10, 300, 999}, torch::kLong);
  const double plain = epsilon_loss(net, x0, t, noise, base.alphas_cumprod).item<double>();
  // γ above every SNR of the schedule: every weight is 1, the plain MSE.
  EXPECT_NEAR(epsilon_loss(net, x0, t, noise, base.alphas_cumprod, 1e9).item<double>(), plain, 1e-6 * plain);
  // γ = 5: items weighted by min(SNR, 5)/SNR, computed here from the network's own output.
  torch::Tensor expected;
  {
    torch::NoGradGuard g;
    double sum = 0;
    for (int64_t i = 0; i < 4; ++i) {
      const double a = base.alphas_cumprod[t[i].item<int64_t>()], snr = a / (1 - a);
      const auto xt = std::sqrt(a) * x0[i].unsqueeze(0) + std::sqrt(1 - a) * noise[i].unsqueeze(0);
      const double mse = (net->forward(xt, t[i].view({1})) - noise[i].unsqueeze(0)).square().mean().item<double>();
      sum += std::min(snr, 5.0) / snr * mse;
    }
    expected = torch::tensor(sum / 4);
  }
  EXPECT_NEAR(epsilon_loss(net, x0, t, noise, base.alphas_cumprod, 5.0).item<double>(), expected.item<double>(),
              1e-5 * expected.item<double>());
}

}  // namespace
}  // namespace tweedie::diffusion
