#pragma once
// Every image metric of a reconstruction against its truth at once: what `tweedie metrics`
// prints and what a solver's report carries. Inputs are image stacks [B, C, H, W] in the
// library's [-1, 1] range.
//
//   psnr            10 log10(1 / MSE) on [0, 1] images (= range 2 on [-1, 1])     dB, higher
//   ssim            skimage-equivalent SSIM on [0, 1] images (ssim.h)                  higher
//   cosine          cos ∠(x̂, x) of the [-1, 1] signal vectors (distance.h)           higher
//   rel_norm_error  ‖x̂‖ / ‖x‖ − 1 of the [-1, 1] signal vectors (signed)         closer to 0
//   classifier_feature_distance   ‖φ̂/‖φ̂‖ − φ/‖φ‖‖, φ = classifier features       lower
//   classifier_frechet_distance   Fréchet distance of the feature sets (one value)   lower
// The classifier metrics are computed only when a classifier is given; they are not LPIPS/FID.
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tweedie/metric/classifier.h"

namespace tweedie::metric {

// A metric's name, the direction that is better, and its definition in one line.
struct MetricInfo {
  std::string name;
  std::string better;  // "higher" | "lower" | "closer to 0"
  std::string unit;    // "dB" or ""
  std::string definition;
};
// Per-image metrics first (in column order), then the set metric classifier_frechet_distance.
const std::vector<MetricInfo>& metric_infos();

struct ImageMetrics {
  // Per image, float64 [B]; classifier_feature_distance is undefined without a classifier.
  torch::Tensor psnr, ssim, cosine, rel_norm_error, classifier_feature_distance;
  // With a classifier and B ≥ 2.
  std::optional<double> classifier_frechet_distance;

  int64_t count() const { return psnr.size(0); }
};

// The per-image metrics, in the order of every report, CSV and table: the one list their names
// come from (metric_infos() describes them, with the set-level Fréchet distance).
struct PerImageMetric {
  const char* name;
  torch::Tensor ImageMetrics::*values;
};
const std::vector<PerImageMetric>& per_image_metrics();

// All metrics of estimate vs truth ([B, C, H, W], same shape, [-1, 1]). `classifier` may be
// null; when given, the images must suit it (classifier_accepts) or an InputError is thrown.
ImageMetrics compute_image_metrics(const torch::Tensor& estimate, const torch::Tensor& truth,
                                   Classifier* classifier = nullptr);

// {"count", "images": [{"index", <metric>: value...}], "mean": {<metric>: mean},
//  "classifier_frechet_distance": value or null, "metrics": {<name>: {better, unit, definition}}}.
// Non-finite values (e.g. rel_norm_error of a zero truth) become null.
nlohmann::json to_json(const ImageMetrics& m);

// A plain-text table: one row per image, then the mean, then the Fréchet distance if any.
std::string to_text(const ImageMetrics& m);

}  // namespace tweedie::metric
