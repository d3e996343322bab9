#include "tweedie/metric/suite.h"

#include <cmath>
#include <cstdio>
#include <functional>

#include "tweedie/core/error.h"
#include "tweedie/metric/distance.h"
#include "tweedie/metric/psnr.h"
#include "tweedie/metric/ssim.h"

namespace tweedie::metric {
namespace {

// The per-image columns in order, with their tensors (those computed: the classifier's may not be).
std::vector<std::pair<std::string, torch::Tensor>> columns(const ImageMetrics& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& metric : per_image_metrics())
    if ((m.*metric.values).defined()) out.emplace_back(metric.name, m.*metric.values);
  return out;
}

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

const std::vector<PerImageMetric>& per_image_metrics() {
  static const std::vector<PerImageMetric> list = {{"psnr", &ImageMetrics::psnr},
                                                   {"ssim", &ImageMetrics::ssim},
                                                   {"cosine", &ImageMetrics::cosine},
                                                   {"rel_norm_error", &ImageMetrics::rel_norm_error},
                                                   {"classifier_feature_distance", &ImageMetrics::classifier_feature_distance}};
  return list;
}

const std::vector<MetricInfo>& metric_infos() {
  static const std::vector<MetricInfo> infos = {
      {"psnr", "higher", "dB", "10 log10(1 / MSE) of the images mapped to [0, 1]"},
      {"ssim", "higher", "",
       "SSIM of the images mapped to [0, 1]: 11x11 Gaussian window sigma 1.5, K1 0.01, K2 0.03, "
       "population covariance, valid region (skimage structural_similarity, gaussian_weights=True)"},
      {"cosine", "higher", "", "<x_hat, x> / (|x_hat| |x|) of the flattened [-1, 1] images"},
      {"rel_norm_error", "closer to 0", "", "|x_hat| / |x| - 1 of the flattened [-1, 1] images"},
      {"classifier_feature_distance", "lower", "",
       "| f_hat/|f_hat| - f/|f| | of the Fashion-MNIST classifier's penultimate features (not LPIPS)"},
      {"classifier_frechet_distance", "lower", "",
       "Frechet distance between Gaussian fits of the two sets of classifier features (not FID; "
       "biased upward at small n)"},
  };
  return infos;
}

ImageMetrics compute_image_metrics(const torch::Tensor& estimate, const torch::Tensor& truth,
                                   Classifier* classifier) {
  require(estimate.dim() == 4, "metrics: expected images [B, C, H, W]");
  require(estimate.sizes() == truth.sizes(), "metrics: estimate and truth shapes differ");
  ImageMetrics m;
  m.psnr = psnr(estimate, truth, /*data_range=*/2.0);  // [-1, 1]: the same as range 1 on [0, 1]
  m.ssim = ssim(estimate, truth);                       // maps (x + 1) / 2 itself
  m.cosine = metric::cosine_similarity(estimate, truth);
  m.rel_norm_error = relative_norm_error(estimate, truth);
  if (classifier != nullptr) {
    torch::Tensor fe = classifier_features(*classifier, estimate).to(torch::kFloat64);
    torch::Tensor ft = classifier_features(*classifier, truth).to(torch::kFloat64);
    m.classifier_feature_distance = unit_feature_distance(fe, ft);
    if (fe.size(0) >= 2) m.classifier_frechet_distance = frechet_distance(fe, ft);
  }
  return m;
}

nlohmann::json to_json(const ImageMetrics& m) {
  const auto cols = columns(m);
  nlohmann::json images = nlohmann::json::array();
  for (int64_t i = 0; i < m.count(); ++i) {
    nlohmann::json row = {{"index", i}};
    for (const auto& [name, t] : cols) row[name] = number(t[i].item<double>());
    images.push_back(row);
  }
  nlohmann::json mean = nlohmann::json::object();
  for (const auto& [name, t] : cols) mean[name] = number(t.mean().item<double>());
  nlohmann::json infos = nlohmann::json::object();
  for (const auto& info : metric_infos()) {
    infos[info.name] = {{"better", info.better}, {"unit", info.unit}, {"definition", info.definition}};
  }
  return {{"count", m.count()},
          {"images", images},
          {"mean", mean},
          {"classifier_frechet_distance",
           m.classifier_frechet_distance ? number(*m.classifier_frechet_distance) : nlohmann::json(nullptr)},
          {"metrics", infos}};
}

std::string to_text(const ImageMetrics& m) {
  const auto cols = columns(m);
  const char* headers[] = {"PSNR dB", "SSIM", "cosine", "rel-norm", "feat-dist"};
  std::string out;
  char cell[64];
  std::snprintf(cell, sizeof cell, "%6s", "image");
  out += cell;
  for (size_t c = 0; c < cols.size(); ++c) {
    std::snprintf(cell, sizeof cell, " %10s", headers[c]);
    out += cell;
  }
  out += "\n";
  auto row = [&](const std::string& label, const std::function<double(const torch::Tensor&)>& value) {
    std::snprintf(cell, sizeof cell, "%6s", label.c_str());
    out += cell;
    for (const auto& col : cols) {
      std::snprintf(cell, sizeof cell, col.first == "psnr" ? " %10.3f" : " %10.5f", value(col.second));
      out += cell;
    }
    out += "\n";
  };
  for (int64_t i = 0; i < m.count(); ++i) row(std::to_string(i), [&](const torch::Tensor& t) { return t[i].item<double>(); });
  row("mean", [](const torch::Tensor& t) { return t.mean().item<double>(); });
  if (m.classifier_frechet_distance) {
    std::snprintf(cell, sizeof cell, "%.5f", *m.classifier_frechet_distance);
    out += "classifier Fréchet distance (" + std::to_string(m.count()) + " images; biased upward at small n): " +
           cell + "\n";
  }
  return out;
}

}  // namespace tweedie::metric
