// tweedie metrics ESTIMATE TRUTH: PSNR, SSIM, cosine, relative norm error and, for
// Fashion-MNIST-like images, the classifier feature metrics, per image and averaged.
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/version.h"
#include "tweedie/data/reference.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/png.h"
#include "tweedie/metric/classifier.h"
#include "tweedie/metric/suite.h"

namespace tweedie::cli {
namespace {

// An image stack [B, C, H, W] in [-1, 1] from a .png (0..255), a .npy ([B,C,H,W], [C,H,W] or
// [H,W]; values in `range`, uint8 arrays 0..255 unless --range is given), or any other image
// reference of data/reference.h (fashion-mnist:test:0-9, a test image name).
torch::Tensor read_image_stack(const std::string& path, const std::string& range_flag) {
  torch::Tensor x;
  if (file_extension(path) == "npy") {
    x = io::read_npy(path);
    require(!x.is_complex() && x.scalar_type() != torch::kBool, path + ": expected real-valued images");
    std::string range = range_flag;
    if (range.empty()) range = x.scalar_type() == torch::kUInt8 ? "0,255" : "-1,1";
    auto [lo, hi] = parse_range(range, "--range");
    require(x.dim() >= 2 && x.dim() <= 4, path + ": expected [B,C,H,W], [C,H,W] or [H,W], got " +
                                               std::to_string(x.dim()) + " dimensions");
    x = x.to(torch::kFloat64);
    require(torch::isfinite(x).all().item<bool>(), path + ": contains NaN or Inf");
    x = (x - lo) / (hi - lo) * 2.0 - 1.0;  // [lo, hi] -> [-1, 1]
    while (x.dim() < 4) x = x.unsqueeze(0);
  } else if (file_extension(path) == "png") {
    require(std::filesystem::is_regular_file(path), path + ": no such file");
    x = io::read_png(path).unsqueeze(0);
  } else {
    x = data::load_reference(path);
    require(x.dim() == 4, path + ": not an image stack");
  }
  require(x.numel() > 0, path + ": no images");
  return x;
}

// True when any value lies outside [-1, 1] by more than round-off of an 8-bit quantisation.
bool outside_unit_range(const torch::Tensor& x) { return (x.abs() > 1.0 + 1e-3).any().item<bool>(); }

class MetricsCommand : public Command {
 public:
  MetricsCommand()
      : Command("metrics", "PSNR, SSIM, cosine, norm error and classifier feature metrics of ESTIMATE vs TRUTH") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("estimate", estimate_, "Estimate: .png, or .npy [B,C,H,W] / [C,H,W] / [H,W]")->required();
    app.add_option("truth", truth_, "Truth, same shape (.png, .npy, or fashion-mnist:SPLIT:A-B)")->required();
    app.add_option("--range", range_,
                   "Value range LO,HI of .npy inputs, mapped to [-1,1] (default -1,1; uint8 arrays 0,255); "
                   "PNG files are always 0..255");
    app.add_option("--classifier", classifier_,
                   "Feature classifier weights (default: the shipped Fashion-MNIST classifier, used when "
                   "images are 1x32x32 or 1x28x28); 'none' skips the classifier metrics");
    app.add_flag("--json", json_, "Print JSON instead of a table");
    app.add_option("-o,--output", output_, "Also write the JSON report here (atomically)");
  }

  int run() override {
    if (!output_.empty()) check_output_file(output_, "--output");
    torch::Tensor est = read_image_stack(estimate_, range_);
    torch::Tensor truth = read_image_stack(truth_, range_);
    std::ostringstream shapes;
    shapes << "estimate " << est.sizes() << " and truth " << truth.sizes() << " differ in shape";
    require(est.sizes() == truth.sizes(), shapes.str());
    for (const auto& [name, x] : {std::pair{estimate_, est}, std::pair{truth_, truth}}) {
      if (outside_unit_range(x))
        std::cerr << "tweedie: note: " << name << " has values outside [-1, 1] (after --range); they are used as they are\n";
    }

    std::string classifier_note;
    metric::Classifier chosen = metric::choose_classifier(classifier_, est, &classifier_note);
    std::optional<metric::Classifier> classifier;
    if (chosen) classifier = chosen;
    const std::string classifier_path = classifier_.empty() || classifier_ == "auto" ? metric::default_classifier_path()
                                                                                    : classifier_;

    metric::ImageMetrics m =
        metric::compute_image_metrics(est, truth, classifier ? &*classifier : nullptr);
    nlohmann::json report = metric::to_json(m);
    report["command"] = "tweedie metrics";
    report["version"] = TWEEDIE_VERSION " " TWEEDIE_GIT_HASH;
    report["estimate"] = estimate_;
    report["truth"] = truth_;
    report["shape"] = est.sizes().vec();
    if (classifier) {
      report["classifier"] = {{"path", classifier_path}, {"sha256", sha256_file(classifier_path)},
                              {"config", (*classifier)->config().to_json()}};
    } else {
      report["classifier"] = {{"skipped", classifier_note}};
    }
    if (!output_.empty()) atomic_write_file(output_, report.dump(2) + "\n");
    if (json_) {
      std::cout << report.dump(2) << "\n";
    } else {
      std::ostringstream head;
      head << estimate_ << " vs " << truth_ << ": " << m.count() << " image(s) " << est.size(1) << "x"
           << est.size(2) << "x" << est.size(3) << "\n";
      say(head.str() + metric::to_text(m) +
          (classifier ? "classifier: " + classifier_path : "classifier metrics skipped: " + classifier_note));
    }
    return 0;
  }

 private:
  std::string estimate_, truth_, range_, classifier_, output_;
  bool json_ = false;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(MetricsCommand);
}  // namespace tweedie::cli
