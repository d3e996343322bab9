// Tests of the ADM U-Net port against guided-diffusion oracle fixtures
// (shared/fixtures/guided-diffusion, see its README.md).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/key_listing.h"
#include "support/test_support.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/diffusion/group_norm_silu.h"
#include "tweedie/diffusion/unet.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/safetensors.h"

namespace tweedie::diffusion {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::gd_fixtures_dir;

#define REQUIRE_FIXTURES()                                                           \
  do {                                                                               \
    if (!test::has_gd_fixture("gd_A.json")) TWEEDIE_SKIP_MISSING() << "guided-diffusion fixtures not found"; \
  } while (0)

json read_json(const fs::path& p) { return json::parse(read_file(p.string())); }

using test::KeyLine;

// The listing, every entry float32 (the reference checkpoints' dtype).
std::vector<KeyLine> read_keys(const fs::path& p) {
  auto keys = test::read_key_listing(p);
  for (const auto& k : keys) EXPECT_EQ(k.dtype, "float32") << k.name;
  return keys;
}

// Every parameter name, shape and their order equal the reference state_dict listing.
void expect_keys_match(UNetImpl& net, const std::vector<KeyLine>& ref) {
  auto params = net.named_parameters(true);
  EXPECT_EQ(net.named_buffers(true).size(), 0u);  // UNetModel has no buffers
  ASSERT_EQ(params.size(), ref.size());
  std::map<std::string, std::vector<int64_t>> ours;
  size_t i = 0;
  for (const auto& p : params) {
    EXPECT_EQ(p.key(), ref[i].name) << "entry " << i;
    ours[p.key()] = p.value().sizes().vec();
    ++i;
  }
  for (const auto& k : ref) {
    auto it = ours.find(k.name);
    ASSERT_NE(it, ours.end()) << "missing " << k.name;
    EXPECT_EQ(it->second, k.shape) << k.name;
  }
}

// Max |a - b|, and whether |a - b| <= atol + rtol |b| everywhere (numpy.allclose).
double max_abs_err(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

void expect_allclose(const std::string& what, const torch::Tensor& actual,
                     const torch::Tensor& expected, double atol, double rtol) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double err = max_abs_err(actual, expected);
  const bool ok = torch::allclose(actual.to(torch::kDouble), expected.to(torch::kDouble), rtol, atol);
  EXPECT_TRUE(ok) << what << ": max abs error " << err;
  ::testing::Test::RecordProperty("max_abs_err_" + what, std::to_string(err));
  std::printf("  %-28s max abs error %.3g\n", what.c_str(), err);
}

class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(at::get_num_threads()) { at::set_num_threads(n); }
  ~ThreadCount() { at::set_num_threads(saved_); }

 private:
  int saved_;
};

UNetConfig config_a() { return UNetConfig::from_json(read_json(gd_fixtures_dir() / "gd_A.json")); }

// A small config exercising most options (32 px, 2 levels).
UNetConfig small_config() {
  UNetConfig c;
  c.image_size = 16;
  c.in_channels = 3;
  c.out_channels = 6;
  c.model_channels = 32;
  c.num_res_blocks = 1;
  c.channel_mult = {1, 2};
  c.attention_resolutions = {2};
  c.num_heads = 2;
  c.use_scale_shift_norm = true;
  c.resblock_updown = true;
  return c;
}

// Randomises every parameter (zero-initialised layers would hide mistakes).
void randomize(UNetImpl& net, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard g;
  for (auto& p : net.parameters()) p.add_(torch::randn_like(p) * 0.05);
}

// ---- configuration -------------------------------------------------------------------------

TEST(UNetConfig, JsonRoundTripAndWrapper) {
  UNetConfig c = small_config();
  c.num_classes = 10;
  c.use_new_attention_order = true;
  json j = c.to_json();
  EXPECT_TRUE(j["num_classes"] == 10);
  UNetConfig back = UNetConfig::from_json(j);
  EXPECT_EQ(back.to_json(), j);
  UNetConfig wrapped = UNetConfig::from_json(json{{"unet_kwargs", j}, {"learn_sigma", true},
                                                  {"attention_at_pixel_resolutions", {8}}});
  EXPECT_EQ(wrapped.to_json(), j);
  c.num_classes = 0;
  EXPECT_TRUE(c.to_json()["num_classes"].is_null());
}

TEST(UNetConfig, RejectsBadKwargs) {
  json j = small_config().to_json();
  auto expect_error = [](const json& bad, const std::string& needle) {
    try {
      UNetConfig::from_json(bad);
      ADD_FAILURE() << "no error for " << bad.dump();
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  json unknown = j;
  unknown["learn_sigma"] = true;  // only allowed in the wrapper
  expect_error(unknown, "learn_sigma");
  json typo = j;
  typo["num_head"] = 4;
  expect_error(typo, "num_head");
  json missing = j;
  missing.erase("model_channels");
  expect_error(missing, "model_channels");
  json dims = j;
  dims["dims"] = 3;
  expect_error(dims, "dims");
  json fp16 = j;
  fp16["use_fp16"] = true;
  expect_error(fp16, "not supported");
  json heads = j;
  heads["num_heads"] = 3;
  expect_error(heads, "num_heads");
  json gn = j;
  gn["model_channels"] = 48;
  expect_error(gn, "GroupNorm32");
  json type = j;
  type["resblock_updown"] = 1;
  expect_error(type, "resblock_updown");
  expect_error(json{{"unet_kwargs", j}, {"learn_sigma", false}}, "learn_sigma");
}

TEST(UNetConfig, CommaStringsAreCreateModelForms) {
  json j = small_config().to_json();
  j["image_size"] = 256;
  j["channel_mult"] = "1,1,2,2,4,4";
  j["attention_resolutions"] = "32,16,8";  // pixels, as create_model() takes them
  j["num_heads"] = 4;
  UNetConfig c = UNetConfig::from_json(j);
  EXPECT_EQ(c.channel_mult, (std::vector<int64_t>{1, 1, 2, 2, 4, 4}));
  EXPECT_EQ(c.attention_resolutions, (std::vector<int64_t>{8, 16, 32}));
}

// ---- structure -----------------------------------------------------------------------------

TEST(UNetKeys, ConfigAMatchesGuidedDiffusion) {
  REQUIRE_FIXTURES();
  UNet net(config_a());
  expect_keys_match(*net, read_keys(gd_fixtures_dir() / "gd_A_keys.txt"));
  EXPECT_EQ(net->num_parameters(), 1370242);
  EXPECT_EQ(state_dict(*net).size(), 198u);
}

TEST(UNetKeys, DpsFfhq256MatchesGuidedDiffusion) {
  REQUIRE_FIXTURES();
  json archs = read_json(gd_fixtures_dir() / "dps_reference_archs.json");
  UNet net(UNetConfig::from_json(archs["dps_ffhq256"]));
  expect_keys_match(*net, read_keys(gd_fixtures_dir() / "dps_ffhq256_keys.txt"));
  EXPECT_EQ(net->num_parameters(), 93563910);
  EXPECT_EQ(net->num_parameters(), archs["dps_ffhq256"]["num_parameters"].get<int64_t>());
}

TEST(UNetKeys, ClassConditionalHasLabelEmbedding) {
  UNetConfig c = small_config();
  c.num_classes = 7;
  UNet net(c);
  auto params = net->named_parameters(true);
  ASSERT_TRUE(params.contains("label_emb.weight"));
  EXPECT_EQ(params["label_emb.weight"].sizes(), (std::vector<int64_t>{7, 128}));
  // guided-diffusion registers label_emb right after time_embed.
  EXPECT_EQ(params.keys()[4], "label_emb.weight");
}

TEST(UNetKeys, ConvResampleFalseHasNoResampleWeights) {
  UNetConfig c = small_config();
  c.resblock_updown = false;
  c.conv_resample = false;
  UNet net(c);
  for (const auto& p : net->named_parameters(true)) {
    EXPECT_EQ(p.key().find(".op."), std::string::npos) << p.key();
    EXPECT_EQ(p.key().find(".conv."), std::string::npos) << p.key();
  }
  c.conv_resample = true;
  UNet with_conv(c);
  auto params = with_conv->named_parameters(true);
  EXPECT_TRUE(params.contains("input_blocks.2.0.op.weight"));
  EXPECT_TRUE(params.contains("output_blocks.1.2.conv.weight"));
}

TEST(UNetFlops, CountsConvLinearAndAttentionMacs) {
  UNetConfig c;
  c.image_size = 8;
  c.in_channels = 1;
  c.out_channels = 1;
  c.model_channels = 32;
  c.num_res_blocks = 0;
  c.channel_mult = {1};
  c.attention_resolutions = {};
  UNet net(c);
  const double px = 64;
  double macs = 32 * 128 + 128 * 128;                                   // time_embed
  macs += 1 * 32 * 9 * px;                                              // input conv
  const double res = 2 * 32 * 32 * 9 * px + 128 * 32;                   // ResBlock 32->32
  macs += 2 * res + (4 * 32 * 32 * px + 2 * px * px * 32);              // middle block
  macs += 64 * 32 * 9 * px + 32 * 32 * 9 * px + 128 * 32 + 64 * 32 * px;  // ResBlock 64->32
  macs += 32 * 1 * 9 * px;                                              // out conv
  EXPECT_DOUBLE_EQ(net->flops_per_image(), 2 * macs);
}

// ---- numerics against guided-diffusion -----------------------------------------------------

TEST(Timestep, EmbeddingMatchesGuidedDiffusion) {
  REQUIRE_FIXTURES();
  torch::Tensor t = io::read_npy((gd_fixtures_dir() / "timestep_embedding_t.npy").string());
  for (int dim : {32, 33, 128}) {
    torch::Tensor ref =
        io::read_npy((gd_fixtures_dir() / ("timestep_embedding_dim" + std::to_string(dim) + ".npy")).string());
    torch::Tensor ours = timestep_embedding(t, dim);
    EXPECT_EQ(ours.scalar_type(), torch::kFloat32);
    expect_allclose("timestep_embedding_dim" + std::to_string(dim), ours, ref, 1e-6, 1e-6);
  }
}

class UNetReplay : public ::testing::TestWithParam<std::tuple<int, UNetImpl::Layout>> {};

TEST_P(UNetReplay, ConfigAOutputAndEveryBlock) {
  REQUIRE_FIXTURES();
  const auto [threads, layout] = GetParam();
  ThreadCount tc(threads);
  // The JSON beside gd_A.pt is found automatically.
  UNet net = load_unet((gd_fixtures_dir() / "gd_A.pt").string());
  net->set_layout(layout);
  torch::Tensor x = io::read_npy((gd_fixtures_dir() / "gd_A_x.npy").string());
  torch::Tensor t = io::read_npy((gd_fixtures_dir() / "gd_A_t.npy").string());
  ASSERT_EQ(t.scalar_type(), torch::kInt64);
  std::vector<std::pair<std::string, torch::Tensor>> trace;
  torch::Tensor out;
  {
    torch::NoGradGuard g;
    out = net->forward_traced(x, t, &trace);
  }
  expect_allclose("out", out, io::read_npy((gd_fixtures_dir() / "gd_A_out.npy").string()), 1e-4, 1e-4);
  int compared = 0;
  for (const auto& [name, value] : trace) {
    std::string file = name;
    const auto dot = file.find('.');
    if (dot != std::string::npos) {  // input_blocks.3 -> input_blocks_03
      const int index = std::stoi(file.substr(dot + 1));
      char buf[8];
      std::snprintf(buf, sizeof buf, "%02d", index);
      file = file.substr(0, dot) + "_" + buf;
    }
    const fs::path p = gd_fixtures_dir() / "gd_A_inter" / (file + ".npy");
    ASSERT_TRUE(fs::exists(p)) << p;
    expect_allclose(name, value, io::read_npy(p.string()), 1e-4, 1e-4);
    ++compared;
  }
  // timestep_embedding, time_embed, 6 input blocks, middle, 6 output blocks, out.
  EXPECT_EQ(compared, 16);
  EXPECT_EQ(std::distance(fs::directory_iterator(gd_fixtures_dir() / "gd_A_inter"), fs::directory_iterator()),
            compared);
  // forward() and forward_traced() agree exactly.
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::equal(net->forward(x, t), out));
}

INSTANTIATE_TEST_SUITE_P(Threads, UNetReplay,
                         ::testing::Combine(::testing::Values(1, 2),
                                            ::testing::Values(UNetImpl::Layout::kNchw, UNetImpl::Layout::kChannelsLast,
                                                              UNetImpl::Layout::kAuto)));

TEST(UNetReplay, InputGradient) {
  REQUIRE_FIXTURES();
  ThreadCount tc(1);
  UNet net = load_unet((gd_fixtures_dir() / "gd_A.pt").string());
  torch::Tensor x = io::read_npy((gd_fixtures_dir() / "gd_A_x.npy").string()).requires_grad_();
  torch::Tensor t = io::read_npy((gd_fixtures_dir() / "gd_A_t.npy").string());
  torch::Tensor w = io::read_npy((gd_fixtures_dir() / "gd_A_grad_w.npy").string());
  torch::Tensor ref = io::read_npy((gd_fixtures_dir() / "gd_A_grad_x.npy").string());
  (net->forward(x, t) * w).sum().backward();
  const double scale = ref.abs().max().item<double>();
  const double err = max_abs_err(x.grad(), ref);
  std::printf("  %-28s max abs error %.3g (max |ref| %.3g)\n", "gd_A_grad_x", err, scale);
  EXPECT_LE(err, 1e-4 * std::max(1.0, scale));
  // The output without grad equals the output with grad.
  torch::NoGradGuard g;
  expect_allclose("out (grad mode)", net->forward(x.detach(), t),
                  io::read_npy((gd_fixtures_dir() / "gd_A_out.npy").string()), 1e-4, 1e-4);
}

// ---- loading and saving --------------------------------------------------------------------

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(UNetLoad, StrictErrorsListEveryName) {
  UNet net(small_config());
  io::TensorMap good = state_dict(*net);

  io::TensorMap missing = good;
  missing.erase("out.2.bias");
  missing.erase("input_blocks.1.0.in_layers.2.weight");
  std::string e = error_of([&] { load_state_dict_strict(*net, missing, "m.pt"); });
  EXPECT_NE(e.find("m.pt"), std::string::npos) << e;
  EXPECT_NE(e.find("2 missing"), std::string::npos) << e;
  EXPECT_NE(e.find("out.2.bias"), std::string::npos) << e;
  EXPECT_NE(e.find("input_blocks.1.0.in_layers.2.weight"), std::string::npos) << e;

  io::TensorMap extra = good;
  extra["input_blocks.9.0.weight"] = torch::zeros({3});
  e = error_of([&] { load_state_dict_strict(*net, extra, "x.pt"); });
  EXPECT_NE(e.find("1 unexpected [input_blocks.9.0.weight]"), std::string::npos) << e;

  io::TensorMap shape = good;
  shape["middle_block.1.qkv.weight"] = torch::zeros({192, 64});  // Linear-shaped, not Conv1d
  e = error_of([&] { load_state_dict_strict(*net, shape, "s.pt"); });
  EXPECT_NE(e.find("middle_block.1.qkv.weight [192, 64] (model [192, 64, 1])"), std::string::npos)
      << e;

  // Everything at once, and a long list is truncated.
  io::TensorMap all;
  for (int i = 0; i < 25; ++i) all["junk." + std::to_string(i)] = torch::zeros({1});
  e = error_of([&] { load_state_dict_strict(*net, all, "all.pt"); });
  EXPECT_NE(e.find("unexpected"), std::string::npos) << e;
  EXPECT_NE(e.find("(+15 more)"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;

  // A failed load leaves the model untouched.
  EXPECT_TRUE(torch::equal(state_dict(*net)["out.0.weight"], good["out.0.weight"]));
}

TEST(UNetLoad, SaveLoadRoundTripGivesIdenticalOutputs) {
  UNetConfig c = small_config();
  c.num_classes = 5;
  UNet net(c);
  randomize(*net, 1);
  net->eval();
  const std::string path = (test::scratch_dir() / "net.safetensors").string();
  save_unet(path, net, {{"note", "hello"}});
  io::SafeTensors st = io::read_safetensors(path);
  EXPECT_EQ(st.metadata.at("note"), "hello");
  EXPECT_EQ(UNetConfig::from_json(json::parse(st.metadata.at("tweedie.unet"))).to_json(),
            c.to_json());

  UNet back = load_unet(path);  // config from the metadata
  torch::manual_seed(2);
  torch::Tensor x = torch::randn({2, 3, 16, 16});
  torch::Tensor t = torch::tensor({3.5, 900.0});
  torch::Tensor y = torch::tensor({0, 4});
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::equal(net->forward(x, t, y), back->forward(x, t, y)));
}

TEST(UNetLoad, ConfigBesideWeightsAndConflicts) {
  UNetConfig c = small_config();
  UNet net(c);
  randomize(*net, 3);
  const fs::path dir = test::scratch_dir();
  // Plain safetensors without metadata + JSON beside it.
  io::write_safetensors((dir / "plain.safetensors").string(), state_dict(*net));
  EXPECT_NE(error_of([&] { load_unet((dir / "plain.safetensors").string()); }).find("no U-Net config"),
            std::string::npos);
  atomic_write_file((dir / "plain.json").string(), json{{"unet_kwargs", c.to_json()}}.dump());
  UNet a = load_unet((dir / "plain.safetensors").string());
  EXPECT_TRUE(torch::equal(state_dict(*a)["out.2.weight"], state_dict(*net)["out.2.weight"]));
  // An explicit config path.
  atomic_write_file((dir / "cfg.json").string(), c.to_json().dump());
  UNet b = load_unet((dir / "plain.safetensors").string(), (dir / "cfg.json").string());
  EXPECT_EQ(b->num_parameters(), net->num_parameters());

  // A stale JSON beside a self-describing file is an error, not silently preferred.
  save_unet((dir / "self.safetensors").string(), net);
  UNetConfig other = c;
  other.use_new_attention_order = true;  // same shapes, different network
  atomic_write_file((dir / "self.json").string(), other.to_json().dump());
  EXPECT_NE(error_of([&] { load_unet((dir / "self.safetensors").string()); }).find("disagrees"),
            std::string::npos);
  // A config whose shapes do not fit the weights.
  UNetConfig wrong = c;
  wrong.model_channels = 64;
  atomic_write_file((dir / "wrong.json").string(), wrong.to_json().dump());
  std::string e = error_of([&] {
    load_unet((dir / "plain.safetensors").string(), (dir / "wrong.json").string());
  });
  EXPECT_NE(e.find("wrong shape"), std::string::npos) << e;
}

TEST(UNetLoad, TruncatedFilesAreInputErrors) {
  UNet net(small_config());
  const fs::path dir = test::scratch_dir();
  save_unet((dir / "full.safetensors").string(), net);
  const std::string bytes = read_file((dir / "full.safetensors").string());
  atomic_write_file((dir / "cut.safetensors").string(), bytes.substr(0, bytes.size() - 100));
  EXPECT_THROW(load_unet((dir / "cut.safetensors").string()), InputError);
  if (test::has_gd_fixture("gd_A.pt")) {
    const std::string pt = read_file((gd_fixtures_dir() / "gd_A.pt").string());
    atomic_write_file((dir / "gd_A.pt").string(), pt.substr(0, pt.size() / 2));
    fs::copy_file(gd_fixtures_dir() / "gd_A.json", dir / "gd_A.json");
    EXPECT_THROW(load_unet((dir / "gd_A.pt").string()), InputError);
  }
  EXPECT_THROW(load_unet((dir / "absent.safetensors").string()), InputError);
}

// ---- options and inputs --------------------------------------------------------------------

// The new attention order (QKVAttention) splits q/k/v before heads. Reordering the qkv rows
// from the legacy per-head interleaving [h: q k v] to [q | k | v] makes the two equal.
TEST(UNetOptions, NewAttentionOrderIsAPermutationOfLegacy) {
  UNetConfig legacy_cfg = small_config();
  UNetConfig new_cfg = legacy_cfg;
  new_cfg.use_new_attention_order = true;
  UNet legacy(legacy_cfg), fresh(new_cfg);
  randomize(*legacy, 5);
  io::TensorMap sd = state_dict(*legacy);
  legacy->eval();
  fresh->eval();
  load_state_dict_strict(*fresh, sd, "legacy");
  torch::manual_seed(6);
  torch::Tensor x = torch::randn({2, 3, 16, 16});
  torch::Tensor t = torch::tensor({10, 500});
  torch::NoGradGuard g;
  torch::Tensor a = legacy->forward(x, t);
  torch::Tensor b = fresh->forward(x, t);
  EXPECT_EQ(b.sizes(), (std::vector<int64_t>{2, 6, 16, 16}));
  EXPECT_GT(max_abs_err(a, b), 1e-3) << "the attention order has no effect";

  // Permute every qkv weight/bias: legacy row (h, j, i) -> new row (j, h, i).
  io::TensorMap permuted = sd;
  for (auto& [name, v] : permuted) {
    if (name.find(".qkv.") == std::string::npos) continue;
    const int64_t c3 = v.size(0), heads = 2, ch = c3 / 3 / heads;
    auto rest = v.sizes().slice(1).vec();
    std::vector<int64_t> split{heads, 3, ch};
    split.insert(split.end(), rest.begin(), rest.end());
    v = v.reshape(split).transpose(0, 1).reshape(v.sizes()).contiguous();
  }
  load_state_dict_strict(*fresh, permuted, "permuted");
  expect_allclose("new order (permuted)", fresh->forward(x, t), a, 1e-5, 1e-5);
}

TEST(UNetOptions, VariantsConstructAndRun) {
  struct Variant {
    const char* name;
    std::function<void(UNetConfig&)> edit;
  };
  const std::vector<Variant> variants = {
      {"default", [](UNetConfig&) {}},
      {"conv_resample=false", [](UNetConfig& c) { c.resblock_updown = false; c.conv_resample = false; }},
      {"conv resample", [](UNetConfig& c) { c.resblock_updown = false; }},
      {"no scale-shift", [](UNetConfig& c) { c.use_scale_shift_norm = false; }},
      {"head channels", [](UNetConfig& c) { c.num_head_channels = 32; }},
      {"heads upsample", [](UNetConfig& c) { c.num_heads_upsample = 4; }},
      {"two res blocks", [](UNetConfig& c) { c.num_res_blocks = 2; c.attention_resolutions = {1, 2}; }},
      {"zero res blocks", [](UNetConfig& c) { c.num_res_blocks = 0; }},
      {"dropout", [](UNetConfig& c) { c.dropout = 0.1; }},
      {"three levels", [](UNetConfig& c) { c.channel_mult = {1, 1, 2}; c.out_channels = 3; }},
  };
  ThreadCount one(1);  // small tensors: threading only adds overhead on a busy machine
  for (const auto& v : variants) {
    SCOPED_TRACE(v.name);
    UNetConfig c = small_config();
    v.edit(c);
    UNet net(c);
    randomize(*net, 7);
    net->eval();
    torch::manual_seed(8);
    torch::Tensor x = torch::randn({2, 3, 16, 16});
    torch::Tensor out;
    {
      torch::NoGradGuard g;
      out = net->forward(x, torch::tensor({1, 999}));
    }
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, c.out_channels, 16, 16}));
    EXPECT_TRUE(out.isfinite().all().item<bool>());
    // The default layout (channels-last in this no-grad call) and NCHW agree; grad mode (no
    // in-place ops, NCHW) agrees with no-grad mode.
    net->set_layout(UNetImpl::Layout::kNchw);
    torch::Tensor plain;
    {
      torch::NoGradGuard g;
      plain = net->forward(x, torch::tensor({1, 999}));
    }
    EXPECT_LT(max_abs_err(out, plain), 1e-5);
    torch::Tensor xg = x.clone().requires_grad_();
    torch::Tensor graded = net->forward(xg, torch::tensor({1, 999}));
    EXPECT_LT(max_abs_err(graded.detach(), plain), 1e-5);
    graded.sum().backward();
    EXPECT_TRUE(xg.grad().defined());
  }
}

// Layout::kAuto (the default) runs an inference call channels-last on cached channels-last
// copies of the conv weights, and a call under autograd NCHW: the same values, bit for bit, as
// the fixed layouts running the same kernels; and a changed weight is never served stale.
TEST(UNetLayout, AutoPicksTheLayoutPerCallAndFollowsWeightChanges) {
  ThreadCount one(1);
  UNet net(small_config());
  randomize(*net, 7);
  net->eval();
  ASSERT_EQ(net->layout(), UNetImpl::Layout::kAuto);
  torch::manual_seed(8);
  const torch::Tensor x = torch::randn({2, 3, 16, 16});
  const torch::Tensor t = torch::tensor({10, 500});
  auto infer = [&] {
    torch::NoGradGuard no_grad;
    return net->forward(x, t);
  };
  auto input_grad = [&] {
    torch::Tensor xg = x.clone().requires_grad_();
    torch::Tensor out = net->forward(xg, t);
    out.square().sum().backward();
    return std::make_pair(out.detach(), xg.grad());
  };
  const torch::Tensor auto_out = infer();
  const auto [auto_graded, auto_grad] = input_grad();
  // The 4-D weights stay NCHW in kAuto (the copies are the cache's).
  for (const auto& p : net->parameters()) {
    if (p.dim() == 4) {
      EXPECT_TRUE(p.is_contiguous());
    }
  }

  net->set_layout(UNetImpl::Layout::kChannelsLast);
  EXPECT_TRUE(torch::equal(infer(), auto_out)) << "kAuto inference is not the channels-last computation";
  net->set_layout(UNetImpl::Layout::kNchw);
  const torch::Tensor nchw_out = infer();
  const auto [nchw_graded, nchw_grad] = input_grad();
  EXPECT_TRUE(torch::equal(nchw_graded, auto_graded)) << "kAuto under autograd is not the NCHW computation";
  EXPECT_TRUE(torch::equal(nchw_grad, auto_grad));
  EXPECT_LT(max_abs_err(nchw_out, auto_out), 1e-5);

  // A weight written in place (an optimiser step, loading) and a weight given new storage
  // (set_data) are picked up by the next inference call.
  net->set_layout(UNetImpl::Layout::kAuto);
  infer();  // fills the cache
  torch::nn::Conv2d conv{nullptr};
  for (const auto& m : net->modules(/*include_self=*/false))
    if (auto c = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(m)) conv = torch::nn::Conv2d(c);
  ASSERT_TRUE(conv);
  {
    torch::NoGradGuard no_grad;
    conv->weight.mul_(1.5);
  }
  const torch::Tensor scaled = infer();
  net->set_layout(UNetImpl::Layout::kChannelsLast);
  EXPECT_TRUE(torch::equal(infer(), scaled)) << "stale weight after an in-place write";
  net->set_layout(UNetImpl::Layout::kAuto);
  EXPECT_FALSE(torch::equal(scaled, auto_out));
  infer();
  {
    torch::NoGradGuard no_grad;
    conv->weight.set_data(conv->weight * 0.5);
  }
  const torch::Tensor replaced = infer();
  net->set_layout(UNetImpl::Layout::kChannelsLast);
  EXPECT_TRUE(torch::equal(infer(), replaced)) << "stale weight after set_data";
  EXPECT_FALSE(torch::equal(replaced, scaled));

  // One input channel, as the shipped prior has: the input's layout is ambiguous, and the call
  // must still run channels-last from the first convolution on.
  UNetConfig c1 = small_config();
  c1.in_channels = 1;
  c1.out_channels = 2;
  UNet net1(c1);
  randomize(*net1, 9);
  net1->eval();
  const torch::Tensor x1 = torch::randn({2, 1, 16, 16});
  torch::NoGradGuard no_grad;
  const torch::Tensor auto1 = net1->forward(x1, t);
  net1->set_layout(UNetImpl::Layout::kChannelsLast);
  EXPECT_TRUE(torch::equal(net1->forward(x1, t), auto1)) << "one-channel input: kAuto did not run channels-last";
}

// Float32 runs convolutions through oneDNN directly; float64 takes ATen's generic path. Input and
// parameter gradients (training, DPS guidance) must agree between the two.
TEST(UNetOptions, GradientsMatchFloat64) {
  ThreadCount one(1);
  UNetConfig c = small_config();
  c.num_classes = 4;
  UNet f32(c), f64(c);
  randomize(*f32, 11);
  f64->to(torch::kFloat64);
  load_state_dict_strict(*f64, state_dict(*f32), "f32");
  torch::manual_seed(12);
  torch::Tensor x = torch::randn({2, 3, 16, 16}, torch::kFloat64);
  torch::Tensor w = torch::randn({2, 6, 16, 16}, torch::kFloat64);
  torch::Tensor t = torch::tensor({3, 700});
  torch::Tensor y = torch::tensor({1, 3});
  torch::Tensor x32 = x.to(torch::kFloat32).requires_grad_();
  torch::Tensor x64 = x.clone().requires_grad_();
  (f32->forward(x32, t, y) * w.to(torch::kFloat32)).sum().backward();
  (f64->forward(x64, t, y) * w).sum().backward();
  auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
    return max_abs_err(a, b) / std::max(1e-12, b.abs().max().item<double>());
  };
  EXPECT_LT(rel(x32.grad(), x64.grad()), 1e-4);
  auto p64 = f64->named_parameters(true);
  // Some gradients are exactly zero in exact arithmetic (a conv bias followed by GroupNorm), so
  // errors are measured against the overall gradient scale as well.
  double scale = 0;
  for (const auto& p : p64) scale = std::max(scale, p.value().grad().abs().max().item<double>());
  int checked = 0;
  for (const auto& p : f32->named_parameters(true)) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    const torch::Tensor& ref = p64[p.key()].grad();
    const double denom = std::max(ref.abs().max().item<double>(), 1e-2 * scale);
    EXPECT_LT(max_abs_err(p.value().grad(), ref) / denom, 1e-3) << p.key();
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(p64.size()));
}

TEST(UNetOptions, DropoutOnlyInTraining) {
  UNetConfig c = small_config();
  c.dropout = 0.5;
  UNet net(c);
  randomize(*net, 9);
  torch::Tensor x = torch::randn({1, 3, 16, 16});
  torch::Tensor t = torch::tensor({5});
  torch::NoGradGuard g;
  net->eval();
  EXPECT_TRUE(torch::equal(net->forward(x, t), net->forward(x, t)));
  net->train();
  EXPECT_FALSE(torch::equal(net->forward(x, t), net->forward(x, t)));
}

TEST(UNetOptions, ClassConditional) {
  UNetConfig c = small_config();
  c.num_classes = 3;
  UNet net(c);
  randomize(*net, 10);
  net->eval();
  torch::Tensor x = torch::randn({2, 3, 16, 16});
  torch::Tensor t = torch::tensor({5, 5});
  torch::NoGradGuard g;
  torch::Tensor a = net->forward(x, t, torch::tensor({0, 1}));
  torch::Tensor b = net->forward(x, t, torch::tensor({2, 1}));
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2, 6, 16, 16}));
  EXPECT_GT(max_abs_err(a[0], b[0]), 1e-4);  // label changes the output
  EXPECT_TRUE(torch::equal(a[1], b[1]));
  EXPECT_THROW(net->forward(x, t), InputError);
  EXPECT_THROW(net->forward(x, t, torch::tensor({0, 3})), InputError);
}

TEST(UNetOptions, BadInputsAreInputErrors) {
  UNet net(small_config());
  torch::NoGradGuard g;
  torch::Tensor t = torch::tensor({1, 2});
  EXPECT_THROW(net->forward(torch::zeros({2, 1, 16, 16}), t), InputError);  // channels
  EXPECT_THROW(net->forward(torch::zeros({2, 3, 15, 16}), t), InputError);  // not divisible
  EXPECT_THROW(net->forward(torch::zeros({3, 16, 16}), t), InputError);     // rank
  EXPECT_THROW(net->forward(torch::zeros({2, 3, 16, 16}), torch::tensor({1, 2, 3})), InputError);
  EXPECT_THROW(net->forward(torch::zeros({2, 3, 16, 16}), t, torch::tensor({0, 0})), InputError);
  // A scalar timestep is broadcast over the batch.
  EXPECT_TRUE(torch::equal(net->forward(torch::ones({2, 3, 16, 16}), torch::tensor(7)),
                           net->forward(torch::ones({2, 3, 16, 16}), torch::tensor({7, 7}))));
  // Non-square inputs work.
  EXPECT_EQ(net->forward(torch::zeros({2, 3, 8, 16}), t).sizes(),
            (std::vector<int64_t>{2, 6, 8, 16}));
}

TEST(UNetShipped, FashionMnistArchitectureIsConfigAWithoutLearnedSigma) {
  UNetConfig c = fashion_mnist_config();
  c.validate();
  EXPECT_FALSE(c.learn_sigma());
  UNet net(c);
  // Config A (1,370,242 parameters) has out_channels 2: the shipped net drops one output
  // channel of out.2 (32*9 weights + 1 bias).
  EXPECT_EQ(net->num_parameters(), 1370242 - 32 * 9 - 1);
  EXPECT_EQ(net->forward(torch::zeros({2, 1, 32, 32}), torch::tensor({3, 999})).sizes(),
            (std::vector<int64_t>{2, 1, 32, 32}));
}

// The fused inference kernel against LibTorch's ops in the reference's order, both measured
// against float64: the kernel may round differently, not worse (a few float32 ulp).
// The fused norm's test cases: shapes, with and without scale-shift and SiLU; an offset mean per
// channel tests the variance's cancellation, a large spread SiLU's tails.
struct NormCase {
  std::vector<int64_t> shape;
  bool scale_shift, silu;
  double spread;
};
const std::vector<NormCase>& norm_cases() {
  static const std::vector<NormCase> cases = {{{2, 64, 16, 16}, true, true, 1.0},  {{1, 32, 5, 7}, false, true, 1.0},
                                              {{3, 96, 8, 8}, true, false, 1.0},   {{2, 64, 9, 9}, true, true, 60.0},
                                              {{1, 128, 32, 32}, false, false, 1.0}};
  return cases;
}

// The training node (group_norm_silu_autograd): its gradients with respect to x, γ, β, scale and
// shift against LibTorch's ops differentiated in float64, next to the same ops in float32.
TEST(GroupNormSilu, TrainingGradientsMatchLibTorchAutograd) {
  for (const auto& c : norm_cases()) {
    SCOPED_TRACE(::testing::PrintToString(c.shape) + (c.scale_shift ? " scale-shift" : "") + (c.silu ? " silu" : ""));
    torch::manual_seed(12);
    const int64_t B = c.shape[0], C = c.shape[1];
    const torch::Tensor x0 = torch::randn(c.shape) * c.spread + torch::randn({1, C, 1, 1}) * 3;
    const torch::Tensor g0 = torch::randn({C}) * c.spread, b0 = torch::randn({C});
    const torch::Tensor s0 = torch::randn({B, C, 1, 1}) * 0.5, t0 = torch::randn({B, C, 1, 1});
    const torch::Tensor w = torch::randn(c.shape);  // loss = Σ w·y
    // Gradients of Σ w·y for inputs of `dtype`; fused: the training node, else LibTorch's ops.
    auto grads = [&](torch::Dtype dtype, bool fused) {
      auto leaf = [&](const torch::Tensor& t) { return t.to(dtype).detach().clone(); };  // fresh leaves each call
      std::vector<torch::Tensor> in = {leaf(x0), leaf(g0), leaf(b0)};
      if (c.scale_shift) in.push_back(leaf(s0)), in.push_back(leaf(t0));
      for (auto& t : in) t.requires_grad_(true);
      const torch::Tensor s = c.scale_shift ? in[3] : torch::Tensor(), t = c.scale_shift ? in[4] : torch::Tensor();
      torch::Tensor y;
      if (fused) {
        EXPECT_TRUE(group_norm_silu_trains(in[0], in[1], s));
        y = group_norm_silu_autograd(in[0], 32, in[1], in[2], 1e-5, s, t, c.silu);
      } else {
        y = at::group_norm(in[0], 32, in[1], in[2], 1e-5);
        if (s.defined()) y = y * (s + 1) + t;
        if (c.silu) y = at::silu(y);
      }
      (y * w.to(dtype)).sum().backward();
      std::vector<torch::Tensor> out;
      for (auto& v : in) {
        EXPECT_TRUE(v.grad().defined());
        out.push_back(v.grad().defined() ? v.grad().to(torch::kFloat64) : torch::zeros_like(v, torch::kFloat64));
      }
      return out;
    };
    const auto fused = grads(torch::kFloat32, true), ops = grads(torch::kFloat32, false),
               exact = grads(torch::kFloat64, false);
    const char* names[] = {"x", "gamma", "beta", "scale", "shift"};
    for (size_t i = 0; i < exact.size(); ++i) {
      SCOPED_TRACE(names[i]);
      ASSERT_EQ(fused[i].sizes(), exact[i].sizes());
      const double scale = exact[i].abs().max().item<double>() + 1e-12;
      const double e_fused = (fused[i] - exact[i]).abs().max().item<double>() / scale;
      const double e_ops = (ops[i] - exact[i]).abs().max().item<double>() / scale;
      std::printf("  d%-5s error vs float64: fused %.2e, LibTorch ops %.2e\n", names[i], e_fused, e_ops);
      EXPECT_LT(e_fused, 1e-4);
      EXPECT_LT(e_fused, 10 * e_ops + 1e-6);
    }
  }
  // Not for inference, other layouts, or a network differentiated only in its input.
  const torch::Tensor x = torch::randn({1, 32, 4, 4}), g = torch::ones({32}, torch::requires_grad());
  EXPECT_FALSE(group_norm_silu_trains(x.contiguous(at::MemoryFormat::ChannelsLast), g, {}));
  EXPECT_FALSE(group_norm_silu_trains(x.requires_grad_(), torch::ones({32}), {}));
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(group_norm_silu_trains(x, g, {}));
  }
}

TEST(GroupNormSilu, MatchesLibTorchOpsToFloat32Rounding) {
  for (const auto& c : norm_cases()) {
    SCOPED_TRACE(::testing::PrintToString(c.shape) + (c.scale_shift ? " scale-shift" : "") + (c.silu ? " silu" : ""));
    torch::manual_seed(11);
    const int64_t B = c.shape[0], C = c.shape[1];
    // An offset mean per channel tests the variance's cancellation; a large spread, SiLU's tails.
    torch::Tensor x = torch::randn(c.shape) * c.spread + torch::randn({1, C, 1, 1}) * 3;
    torch::Tensor gamma = torch::randn({C}) * c.spread, beta = torch::randn({C});
    torch::Tensor scale, shift;
    if (c.scale_shift) scale = torch::randn({B, C, 1, 1}) * 0.5, shift = torch::randn({B, C, 1, 1});
    auto reference = [&](const torch::Tensor& x_, const torch::Tensor& g_, const torch::Tensor& b_,
                         const torch::Tensor& s_, const torch::Tensor& t_) {
      torch::Tensor n = at::group_norm(x_, 32, g_, b_, 1e-5);
      if (s_.defined()) n = n * (s_ + 1) + t_;
      return c.silu ? at::silu(n) : n;
    };
    auto d = [](const torch::Tensor& t) { return t.defined() ? t.to(torch::kFloat64) : t; };
    torch::NoGradGuard no_grad;
    ASSERT_TRUE(group_norm_silu_applies(x, gamma, scale));
    const torch::Tensor fused = group_norm_silu(x, 32, gamma, beta, 1e-5, scale, shift, c.silu);
    // Channels-last input: its own kernel, the same values to float32 rounding, in its layout.
    const torch::Tensor x_cl = x.contiguous(at::MemoryFormat::ChannelsLast);
    ASSERT_TRUE(group_norm_silu_applies(x_cl, gamma, scale));
    const torch::Tensor fused_cl = group_norm_silu(x_cl, 32, gamma, beta, 1e-5, scale, shift, c.silu);
    EXPECT_TRUE(fused_cl.is_contiguous(at::MemoryFormat::ChannelsLast));
    const torch::Tensor ops = reference(x, gamma, beta, scale, shift);
    const torch::Tensor exact = reference(d(x), d(gamma), d(beta), d(scale), d(shift));
    EXPECT_TRUE(fused.is_contiguous());
    EXPECT_EQ(fused.sizes(), x.sizes());
    // Relative to the output's scale: ulps of |y| + 1.
    auto err = [&](const torch::Tensor& t) {
      return ((t.to(torch::kFloat64) - exact).abs() / (exact.abs() + 1)).max().item<double>();
    };
    const double e_fused = err(fused), e_cl = err(fused_cl), e_ops = err(ops);
    std::printf("  error vs float64: fused %.2e, channels-last %.2e, LibTorch ops %.2e\n", e_fused, e_cl, e_ops);
    for (double e : {e_fused, e_cl}) {
      EXPECT_LT(e, 2e-6) << "LibTorch's ops: " << e_ops;
      EXPECT_LT(e, 8 * e_ops + 1e-7) << "LibTorch's ops: " << e_ops;
    }
  }
}

TEST(GroupNormSilu, AppliesOnlyToNchwOrChannelsLastFloat32InferenceOnCpu) {
  torch::Tensor x = torch::randn({2, 64, 8, 8}), gamma = torch::ones({64}), scale = torch::zeros({2, 64});
  EXPECT_TRUE(group_norm_silu_applies(x, gamma, scale));
  EXPECT_TRUE(group_norm_silu_applies(x.contiguous(at::MemoryFormat::ChannelsLast), gamma, scale));
  EXPECT_FALSE(group_norm_silu_applies(x.transpose(2, 3), gamma, scale)) << "neither layout";
  EXPECT_FALSE(group_norm_silu_applies(x.to(torch::kFloat64), gamma, scale));
  EXPECT_FALSE(group_norm_silu_applies(x.flatten(2), gamma, scale));
  torch::Tensor g = gamma.clone().requires_grad_(true);
  EXPECT_FALSE(group_norm_silu_applies(x, g, scale)) << "autograd would lose the parameters' gradient";
  EXPECT_FALSE(group_norm_silu_applies(x.clone().requires_grad_(true), gamma, scale));
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(group_norm_silu_applies(x, g, scale));
  }
  {
    c10::InferenceMode inference;
    EXPECT_TRUE(group_norm_silu_applies(x, g, scale));
  }
  EXPECT_THROW(group_norm_silu(x, 48, gamma, gamma, 1e-5, {}, {}), InputError);
}

// The network's output does not depend on which path ran: the fused kernel (inference) and
// LibTorch's ops (grad mode, the same weights) agree to float32 rounding.
TEST(GroupNormSilu, NetworkOutputIsTheSameWithAndWithoutTheFusedKernel) {
  UNet net(small_config());
  randomize(*net, 7);
  net->eval();
  torch::manual_seed(8);
  torch::Tensor x = torch::randn({2, 3, 16, 16});
  torch::Tensor t = torch::tensor({10, 500});
  torch::Tensor fused;
  {
    torch::NoGradGuard no_grad;
    fused = net->forward(x, t);
  }
  const torch::Tensor ops = net->forward(x, t);  // parameters require grad: LibTorch's ops
  ASSERT_TRUE(ops.requires_grad());
  expect_allclose("fused vs ops", fused, ops.detach(), 1e-5, 1e-5);
  net->set_layout(UNetImpl::Layout::kChannelsLast);  // the channels-last kernel inside the network
  torch::NoGradGuard no_grad;
  expect_allclose("fused channels-last vs ops", net->forward(x, t), ops.detach(), 1e-5, 1e-5);
}

}  // namespace
}  // namespace tweedie::diffusion
