// Slow U-Net checks: the DPS ImageNet-256 architecture (552.8M parameters, 2.2 GB of float32)
// and a full-size FFHQ-256 forward pass.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/key_listing.h"
#include "support/test_support.h"
#include "tweedie/core/fs.h"
#include "tweedie/diffusion/unet.h"

namespace tweedie::diffusion {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::gd_fixtures_dir;

json arch(const std::string& name) {
  return json::parse(read_file((gd_fixtures_dir() / "dps_reference_archs.json").string())).at(name);
}

TEST(UNetSlow, DpsImagenet256MatchesGuidedDiffusion) {
  if (!test::has_gd_fixture()) TWEEDIE_SKIP_MISSING() << "guided-diffusion fixtures not found";
  const json a = arch("dps_imagenet256");
  UNet net(UNetConfig::from_json(a));
  EXPECT_EQ(net->num_parameters(), 552814086);
  EXPECT_EQ(net->num_parameters(), a.at("num_parameters").get<int64_t>());
  const auto ref = test::read_key_listing(gd_fixtures_dir() / "dps_imagenet256_keys.txt");
  auto params = net->named_parameters(true);
  ASSERT_EQ(params.size(), ref.size());
  ASSERT_EQ(params.size(), a.at("num_state_dict_entries").get<size_t>());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(params[i].key(), ref[i].name) << "entry " << i;
    EXPECT_EQ(params[i].value().sizes().vec(), ref[i].shape) << ref[i].name;
  }
}

TEST(UNetSlow, DpsFfhq256FullSizeForward) {
  if (!test::has_gd_fixture()) TWEEDIE_SKIP_MISSING() << "guided-diffusion fixtures not found";
  UNet net(UNetConfig::from_json(arch("dps_ffhq256")));
  net->eval();
  std::printf("  FFHQ-256: %.1f GFLOPs per image\n", net->flops_per_image() / 1e9);
  torch::manual_seed(0);
  {
    torch::NoGradGuard g;
    for (auto& p : net->parameters()) p.add_(torch::randn_like(p) * 0.01);
  }
  torch::Tensor x = torch::randn({1, 3, 256, 256});
  torch::InferenceMode im;
  torch::Tensor out = net->forward(x, torch::tensor({999}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 6, 256, 256}));
  EXPECT_TRUE(out.isfinite().all().item<bool>());
  // The default layout (channels-last in inference) and NCHW agree.
  net->set_layout(UNetImpl::Layout::kNchw);
  torch::Tensor plain = net->forward(x, torch::tensor({999}));
  EXPECT_LT((out - plain).abs().max().item<double>(), 1e-3 * (1 + out.abs().max().item<double>()));
}

}  // namespace
}  // namespace tweedie::diffusion
