// Metrics: SSIM (against skimage values), PSNR, cosine, relative norm error, feature and
// Fréchet distances, and the feature classifier (config, strict loading, seeded training).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>

#include "support/test_support.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/runtime.h"
#include "tweedie/data/fashion_mnist.h"
#include "tweedie/io/safetensors.h"
#include "tweedie/metric/classifier.h"
#include "tweedie/metric/classifier_train.h"
#include "tweedie/metric/distance.h"
#include "tweedie/metric/psnr.h"
#include "tweedie/metric/ssim.h"
#include "tweedie/metric/suite.h"

namespace tweedie::metric {
namespace {

namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

// Random images in [-1, 1].
torch::Tensor random_images(at::IntArrayRef shape, uint64_t seed) {
  torch::Generator gen = make_generator(seed);
  return rand(shape, gen) * 2 - 1;
}

// The pattern pair whose SSIM skimage 0.19.3 gives as 0.8860739987145902 (C=3, 24×30) and
// 0.8798699703781148 (C=1, 20×17), with
//   structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
//                         use_sample_covariance=False, data_range=1, channel_axis=0)
// on x = 0.5 + 0.4 sin(0.3 i + 0.7 j + c), y = 0.45 + 0.35 sin(0.3 i + 0.7 j + c + 0.3)
// + 0.1 cos(1.3 i j), both in [0, 1] (numpy.meshgrid(c, i, j, indexing="ij")).
std::pair<torch::Tensor, torch::Tensor> skimage_pattern(int64_t c, int64_t h, int64_t w) {
  auto o = torch::TensorOptions().dtype(torch::kFloat64);
  auto cc = torch::arange(c, o).view({c, 1, 1}), i = torch::arange(h, o).view({1, h, 1}),
       j = torch::arange(w, o).view({1, 1, w});
  torch::Tensor x = 0.5 + 0.4 * torch::sin(0.3 * i + 0.7 * j + cc);
  torch::Tensor y = 0.45 + 0.35 * torch::sin(0.3 * i + 0.7 * j + cc + 0.3) + 0.1 * torch::cos(1.3 * i * j);
  return {x.unsqueeze(0), y.unsqueeze(0)};
}

TEST(MetricSsim, MatchesSkimageGoldenValues) {
  SsimOptions unit;
  unit.range = {0.0, 1.0};
  auto [x3, y3] = skimage_pattern(3, 24, 30);
  EXPECT_NEAR(ssim(x3, y3, unit).item<double>(), 0.8860739987145902, 1e-12);
  auto [x1, y1] = skimage_pattern(1, 20, 17);
  EXPECT_NEAR(ssim(x1, y1, unit).item<double>(), 0.8798699703781148, 1e-12);
  // The same images in the library's [-1, 1] convention, with the default range.
  EXPECT_NEAR(ssim(x3 * 2 - 1, y3 * 2 - 1).item<double>(), 0.8860739987145902, 1e-12);
  EXPECT_EQ(ssim_radius(), 5);  // 11 × 11 window
  EXPECT_EQ(ssim_map(x3, y3, unit).sizes(), (std::vector<int64_t>{1, 3, 14, 20}));
}

TEST(MetricSsim, IdentityAndSymmetryPerItem) {
  torch::Tensor x = random_images({4, 3, 16, 23}, 1), y = random_images({4, 3, 16, 23}, 2);
  torch::Tensor same = ssim(x, x);
  EXPECT_EQ(same.sizes(), (std::vector<int64_t>{4}));
  EXPECT_EQ(same.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose(same, torch::ones_like(same), 0, 1e-12));
  torch::Tensor s = ssim(x, y);
  EXPECT_TRUE(torch::equal(s, ssim(y, x)));
  EXPECT_TRUE((s < 1).all().item<bool>());
  // Items are independent: item 2 alone gives the same value.
  EXPECT_NEAR(ssim(x.slice(0, 2, 3), y.slice(0, 2, 3)).item<double>(), s[2].item<double>(), 1e-14);
}

TEST(MetricSsim, RejectsBadShapes) {
  torch::Tensor x = torch::zeros({1, 1, 10, 32});
  EXPECT_NE(error_of([&] { ssim(x, x); }).find("smaller than the 11x11 window"), std::string::npos);
  EXPECT_NE(error_of([&] { ssim(torch::zeros({1, 1, 16, 16}), torch::zeros({1, 1, 16, 17})); }).find("differ"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ssim(torch::zeros({16, 16}), torch::zeros({16, 16})); }).find("[B, C, H, W]"),
            std::string::npos);
}

TEST(MetricPsnr, KnownValue) {
  torch::Tensor truth = random_images({2, 1, 8, 8}, 3).to(torch::kFloat64) * 0.5;
  torch::Tensor est = truth + 0.1;  // MSE 0.01 on [-1, 1]; 0.0025 on [0, 1]
  // 10 log10(2² / 0.01) = 10 log10(1 / 0.0025) = 26.0206 dB
  EXPECT_NEAR(psnr(est, truth)[1].item<double>(), 10 * std::log10(400.0), 1e-9);
}

TEST(MetricDistance, CosineAndRelativeNorm) {
  torch::Tensor x = random_images({1, 1, 4, 4}, 4);
  torch::Tensor est = torch::cat({2 * x, -x, torch::zeros_like(x)});
  torch::Tensor truth = torch::cat({x, x, x});
  torch::Tensor cos = metric::cosine_similarity(est, truth);
  EXPECT_NEAR(cos[0].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(cos[1].item<double>(), -1.0, 1e-12);
  EXPECT_EQ(cos[2].item<double>(), 0.0);  // zero vector
  torch::Tensor e = torch::zeros({2, 2}), f = torch::tensor({{1.0, 0.0}, {0.0, 3.0}});
  e[0][1] = 5.0;
  e[1][1] = 1.0;
  EXPECT_NEAR(metric::cosine_similarity(e, f)[0].item<double>(), 0.0, 1e-15);  // orthogonal

  torch::Tensor rel = relative_norm_error(est, truth);
  EXPECT_NEAR(rel[0].item<double>(), 1.0, 1e-12);   // ‖2x‖ / ‖x‖ − 1
  EXPECT_NEAR(rel[1].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(rel[2].item<double>(), -1.0, 1e-12);
  EXPECT_TRUE(std::isnan(relative_norm_error(x, torch::zeros_like(x)).item<double>()));
}

TEST(MetricDistance, UnitFeatureDistance) {
  torch::Tensor a = torch::tensor({{1.0, 2.0, 0.0}, {1.0, 0.0, 0.0}});
  torch::Tensor b = torch::tensor({{3.0, 6.0, 0.0}, {0.0, 4.0, 0.0}});
  torch::Tensor d = unit_feature_distance(a, b);
  EXPECT_NEAR(d[0].item<double>(), 0.0, 1e-12);           // same direction
  EXPECT_NEAR(d[1].item<double>(), std::sqrt(2.0), 1e-12);  // orthogonal unit vectors
}

TEST(MetricFrechet, IdenticalSetsAndShifts) {
  torch::Tensor f = torch::randn({300, 12}, make_generator(5)).to(torch::kFloat64);
  EXPECT_NEAR(frechet_distance(f, f), 0.0, 1e-9);
  // Shifting a set leaves its covariance, so the distance is ‖Δμ‖².
  torch::Tensor shift = torch::linspace(-1, 2, 12, torch::kFloat64);
  EXPECT_NEAR(frechet_distance(f, f + shift), shift.pow(2).sum().item<double>(), 1e-9);
  EXPECT_NE(error_of([&] { frechet_distance(f.slice(0, 0, 1), f); }).find("at least 2"), std::string::npos);
}

TEST(MetricFrechet, MatchesClosedFormForCommutingCovariances) {
  // Σ₁ = Q diag(a) Qᵀ, Σ₂ = Q diag(b) Qᵀ commute: d² = ‖Δμ‖² + Σ (√a − √b)².
  const int64_t d = 6;
  torch::Tensor q = std::get<0>(torch::linalg::qr(torch::randn({d, d}, make_generator(6)).to(torch::kFloat64)));
  torch::Tensor a = torch::linspace(0.5, 3, d, torch::kFloat64), b = torch::linspace(2, 0.1, d, torch::kFloat64);
  GaussianFit g1{torch::zeros({d}, torch::kFloat64), q.matmul(torch::diag(a)).matmul(q.t())};
  GaussianFit g2{torch::full({d}, 0.5, torch::kFloat64), q.matmul(torch::diag(b)).matmul(q.t())};
  const double expected = 0.25 * d + (a.sqrt() - b.sqrt()).pow(2).sum().item<double>();
  EXPECT_NEAR(frechet_distance(g1, g2), expected, 1e-10);
  EXPECT_NEAR(frechet_distance(g2, g1), expected, 1e-10);
}

ClassifierConfig tiny_config() {
  ClassifierConfig c;
  c.channels = {4, 8};
  c.features = 16;
  return c;
}

TEST(MetricClassifier, ConfigIsStrict) {
  ClassifierConfig c = tiny_config();
  EXPECT_EQ(ClassifierConfig::from_json(c.to_json()).to_json(), c.to_json());
  auto j = c.to_json();
  j["colour"] = 1;
  EXPECT_NE(error_of([&] { ClassifierConfig::from_json(j); }).find("unknown key \"colour\""), std::string::npos);
  j = c.to_json();
  j.erase("features");
  EXPECT_NE(error_of([&] { ClassifierConfig::from_json(j); }).find("missing key \"features\""), std::string::npos);
  j = c.to_json();
  j["image_size"] = 30;  // two pooling stages need a multiple of 4
  EXPECT_NE(error_of([&] { ClassifierConfig::from_json(j); }).find("image_size"), std::string::npos);
}

TEST(MetricClassifier, StrictLoadListsEveryBadTensor) {
  fs::path dir = test::scratch_dir();
  Classifier net(tiny_config());
  const std::string path = (dir / "c.safetensors").string();
  save_classifier(path, net);
  ASSERT_TRUE(fs::exists(dir / "c.json"));
  Classifier back = load_classifier(path);
  EXPECT_TRUE(torch::equal(back->named_parameters()["fc.weight"], net->named_parameters()["fc.weight"]));

  io::SafeTensors st = io::read_safetensors(path);
  st.tensors.erase("head.bias");
  st.tensors["convs.7.weight"] = torch::zeros({1});
  st.tensors["fc.weight"] = torch::zeros({16, 3});
  io::write_safetensors(path, st.tensors, st.metadata);
  std::string e = error_of([&] { load_classifier(path); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("1 missing [head.bias]"), std::string::npos) << e;
  EXPECT_NE(e.find("1 unexpected [convs.7.weight]"), std::string::npos) << e;
  EXPECT_NE(e.find("fc.weight [16, 3] (model [16, 512])"), std::string::npos) << e;

  // A config beside the weights that disagrees with the embedded one is refused.
  ClassifierConfig other = tiny_config();
  other.features = 32;
  atomic_write_file((dir / "c.json").string(), other.to_json().dump());
  EXPECT_NE(error_of([&] { load_classifier(path); }).find("disagrees"), std::string::npos);
  EXPECT_NE(error_of([&] { load_classifier((dir / "none.safetensors").string()); }).find("no such"),
            std::string::npos);
}

TEST(MetricClassifier, PadsFashionMnist28AndRejectsOtherShapes) {
  ClassifierConfig c = tiny_config();
  torch::Tensor x28 = torch::ones({2, 1, 28, 28});
  torch::Tensor x = classifier_input(x28, c);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2, 1, 32, 32}));
  EXPECT_EQ(x[0][0][0][0].item<float>(), -1.0f);
  EXPECT_EQ(x[0][0][2][2].item<float>(), 1.0f);
  EXPECT_FALSE(classifier_accepts(torch::zeros({2, 3, 32, 32}), c));
  EXPECT_NE(error_of([&] { classifier_input(torch::zeros({2, 1, 64, 64}), c); }).find("expects images"),
            std::string::npos);
}

TEST(MetricClassifier, TrainingIsAFunctionOfTheSeed) {
  torch::Tensor x = random_images({48, 1, 32, 32}, 7);
  torch::Tensor y = torch::arange(48) % 10;
  ClassifierTrainOptions o;
  o.steps = 3;
  o.batch_size = 8;
  o.hflip = true;
  auto train = [&](uint64_t seed) {
    torch::Generator gen = make_generator(seed);
    return train_classifier(tiny_config(), x, y, o, gen);
  };
  auto a = train(1), b = train(1), c = train(2);
  EXPECT_EQ(a.history.size(), 1u);
  for (const auto& item : a.model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), b.model->named_parameters()[item.key()])) << item.key();
  }
  EXPECT_FALSE(torch::equal(a.model->named_parameters()["fc.weight"], c.model->named_parameters()["fc.weight"]));
}

TEST(MetricSuite, AllMetricsAndTheirJson) {
  torch::Tensor truth = random_images({3, 1, 32, 32}, 8);
  torch::Tensor est = (truth + 0.1 * random_images({3, 1, 32, 32}, 9)).clamp(-1, 1);
  Classifier net(tiny_config());
  torch::Generator gen = make_generator(3);
  seeded_init(net, gen);
  ImageMetrics m = compute_image_metrics(est, truth, &net);
  auto j = to_json(m);
  EXPECT_EQ(j["count"], 3);
  for (const char* key : {"psnr", "ssim", "cosine", "rel_norm_error", "classifier_feature_distance"}) {
    EXPECT_TRUE(j["images"][0].contains(key)) << key;
    EXPECT_TRUE(j["mean"][key].is_number()) << key;
    EXPECT_TRUE(j["metrics"].contains(key)) << key;
  }
  EXPECT_TRUE(j["classifier_frechet_distance"].is_number());
  EXPECT_NEAR(j["mean"]["ssim"].get<double>(), ssim(est, truth).mean().item<double>(), 1e-15);
  EXPECT_NE(to_text(m).find("mean"), std::string::npos);
  // One image: no Fréchet distance; no classifier: no classifier metrics.
  auto one = to_json(compute_image_metrics(est.slice(0, 0, 1), truth.slice(0, 0, 1), &net));
  EXPECT_TRUE(one["classifier_frechet_distance"].is_null());
  auto plain = to_json(compute_image_metrics(est, truth));
  EXPECT_FALSE(plain["images"][0].contains("classifier_feature_distance"));
}

TEST(MetricClassifier, ShippedModelIsNinetyPercentAccurate) {
  const std::string path = default_classifier_path();
  if (!fs::exists(path)) TWEEDIE_SKIP_MISSING() << path << " not found";
  if (!fs::exists(data::fashion_mnist_dir())) TWEEDIE_SKIP_MISSING() << "Fashion-MNIST not installed";
  Classifier net = load_classifier(path);
  auto test = data::load_fashion_mnist(data::Split::kTest);
  const int64_t n = 2000;  // the first 2000 test images: ~1 s on 2 cores
  double acc = classifier_accuracy(net, test.images.slice(0, 0, n), test.labels.slice(0, 0, n));
  EXPECT_GE(acc, 0.90);
}

}  // namespace
}  // namespace tweedie::metric
