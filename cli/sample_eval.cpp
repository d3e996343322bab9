// tweedie sample-eval: the sample-quality metric of a prior (tweedie/experiment/sample_quality.h).
// Writes PREFIX.json, PREFIX.md and one PREFIX_<sampler>.png grid per sampler; PREFIX defaults to
// sample_eval beside the prior's file.
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "cli/command.h"
#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/progress.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/version.h"
#include "tweedie/data/fashion_mnist.h"
#include "tweedie/diffusion/prior.h"
#include "tweedie/experiment/sample_quality.h"
#include "tweedie/io/png.h"

namespace tweedie::cli {
namespace {

namespace fs = std::filesystem;

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

class SampleEvalCommand : public Command {
 public:
  SampleEvalCommand()
      : Command("sample-eval",
                "Sample quality of a prior: classifier Fréchet distance to held-out images, vs the train/test floor") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("-m,--model,--prior", model_, "Prior weights, or gmm:FILE for a Gaussian-mixture prior");
    app.add_option("--arch", arch_, "Architecture JSON (default: beside the weights, or embedded)");
    app.add_option("-o,--output,--out", out_,
                   "Output prefix: PREFIX.json, PREFIX.md, PREFIX_<sampler>.png (default: sample_eval beside the prior)");
    app.add_option("--count", count_, "Samples per sampler, and test / training images for the reference and the floor")
        ->check(CLI::Range(int64_t{2}, int64_t{10000}));
    app.add_option("--ddim-steps", ddim_steps_, "DDIM (η = 0) respaced steps; 0 = skip")->check(CLI::Range(0, 1000));
    app.add_option("--ddpm-steps", ddpm_steps_, "Ancestral (DDPM) respaced steps; 0 = skip")->check(CLI::Range(0, 1000));
    app.add_option("--batch-size", batch_, "Samples per network call")->check(CLI::PositiveNumber);
    app.add_option("--bootstrap", resamples_, "Bootstrap resamples for the standard errors (0 = none)")
        ->check(CLI::Range(0, 10000));
    app.add_option("--classifier", classifier_, "Feature classifier (default: the shipped Fashion-MNIST one)");
  }

  int run() override {
    require(ddim_steps_ > 0 || ddpm_steps_ > 0, "--ddim-steps and --ddpm-steps are both 0: nothing to sample");
    std::string prefix = out_;
    if (prefix.empty()) {
      std::string file = model_;
      if (file.rfind(diffusion::kGmmPrefix, 0) == 0) file = file.substr(std::string(diffusion::kGmmPrefix).size());
      // Beside the file that is read: the shipped prior's when the default names it.
      prefix = (fs::path(data_path(file)).parent_path() / "sample_eval").string();
    }
    check_output_file(prefix + ".json", "--out", {"json"});
    auto prior = diffusion::load_prior(model_, device(), arch_);
    auto classifier = metric::load_classifier(classifier_.empty() ? metric::default_classifier_path() : classifier_);
    std::vector<int64_t> want{1, 32, 32};
    require(prior.item_shape() == want, "--prior " + model_ + ": sample-eval scores Fashion-MNIST priors (1x32x32), not " +
                                             prior.item_text());

    auto test = data::load_fashion_mnist(data::Split::kTest);
    auto train = data::load_fashion_mnist(data::Split::kTrain);
    require(count_ <= test.images.size(0), "--count: the test split has " + std::to_string(test.images.size(0)) + " images");
    const auto test_phi = metric::classifier_features(classifier, test.images.slice(0, 0, count_));
    const auto train_phi = metric::classifier_features(classifier, train.images.slice(0, 0, count_));
    torch::Generator gen = make_generator(common().seed);
    const auto floor = experiment::frechet_with_se(train_phi, test_phi, resamples_, gen);

    std::vector<experiment::SamplerSpec> samplers;
    if (ddim_steps_ > 0) samplers.push_back({"ddim", ddim_steps_});
    if (ddpm_steps_ > 0) samplers.push_back({"ddpm", ddpm_steps_});
    nlohmann::json scores = nlohmann::json::array();
    std::ostringstream md;
    md << "# Sample quality of " << model_ << "\n\n"
       << "Classifier Fréchet distance (the FID formula on the shipped Fashion-MNIST classifier's "
          "128-d features; not FID) between N = "
       << count_ << " samples and the first " << count_
       << " test images; ± is a bootstrap standard error over the samples (" << resamples_
       << " resamples). Floor: N training images against the same test images. Confident: share of samples the "
          "classifier assigns with probability ≥ 0.9.\n\n"
       << "| sampler | N | Fréchet | ratio to floor | confident | NFE | seconds |\n|---|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& spec : samplers) {
      ProgressOptions po;
      po.quiet = common().quiet;
      po.unit = "img";
      Progress bar("sample-eval " + spec.name(), count_, po);
      auto score = experiment::score_sampler(prior, spec, count_, batch_, classifier, test_phi, resamples_, gen,
                                             device(), [&](int64_t done) { bar.update(done); });
      bar.finish();
      const std::string png = prefix + "_" + spec.name() + ".png";
      io::write_png(png, io::make_grid(score.samples.slice(0, 0, std::min<int64_t>(100, count_)), 10, 2, 1.0, io::kDisplayTile),
                    {{"tweedie", nlohmann::json{{"command", "tweedie sample-eval"}, {"prior", prior.path},
                                                {"sampler", spec.name()}, {"seed", common().seed}}
                                     .dump()}});
      auto j = score.to_json();
      j["grid"] = fs::path(png).filename().string();
      j["ratio_to_floor"] = score.frechet.value / floor.value;
      scores.push_back(j);
      md << "| " << spec.name() << " | " << count_ << " | " << fixed(score.frechet.value, 2) << " ± "
         << fixed(score.frechet.se, 2) << " | " << fixed(score.frechet.value / floor.value, 2) << " | "
         << fixed(100 * score.confident_share, 1) << " % | " << score.nfe << " | " << fixed(score.seconds, 0) << " |\n";
      say(spec.name() + ": Fréchet " + fixed(score.frechet.value, 2) + " ± " + fixed(score.frechet.se, 2) +
          " (floor " + fixed(floor.value, 2) + "), confident " + fixed(100 * score.confident_share, 1) + " %");
    }
    md << "| floor (train vs test) | " << count_ << " | " << fixed(floor.value, 2) << " ± " << fixed(floor.se, 2)
       << " | 1.00 | | | |\n\nPrior sha256 " << prior.sha256.substr(0, 16) << ", seed " << common().seed << ", "
       << TWEEDIE_VERSION " " TWEEDIE_GIT_HASH << ".\n";
    nlohmann::json record = {{"command", "tweedie sample-eval"},
                             {"version", TWEEDIE_VERSION " " TWEEDIE_GIT_HASH},
                             {"prior", prior.describe()},
                             {"classifier", classifier_.empty() ? metric::default_classifier_path() : classifier_},
                             {"count", count_},
                             {"seed", common().seed},
                             {"bootstrap", resamples_},
                             {"floor", floor.to_json()},
                             {"samplers", scores}};
    atomic_write_file(prefix + ".json", record.dump(2) + "\n");
    atomic_write_file(prefix + ".md", md.str());
    say("wrote " + prefix + ".json, " + prefix + ".md");
    return 0;
  }

 private:
  std::string model_ = kDefaultPrior;
  std::string arch_, out_, classifier_;
  int64_t count_ = 1000, ddim_steps_ = 50, ddpm_steps_ = 100, batch_ = 100, resamples_ = 50;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(SampleEvalCommand);
}  // namespace tweedie::cli
