// tweedie train-classifier: train (or, with --evaluate, test) the small Fashion-MNIST classifier
// whose features give `tweedie metrics` its classifier feature / Fréchet distances.
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/progress.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/version.h"
#include "tweedie/data/fashion_mnist.h"
#include "tweedie/metric/classifier.h"
#include "tweedie/metric/classifier_train.h"

namespace tweedie::cli {
namespace {

namespace fs = std::filesystem;

class TrainClassifierCommand : public Command {
 public:
  TrainClassifierCommand()
      : Command("train-classifier",
                "Train the Fashion-MNIST feature classifier used by 'tweedie metrics' (or --evaluate one)") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("-o,--output,--out", out_, "Output directory: model.safetensors, model.json, train.json, loss.csv");
    app.add_option("--evaluate", evaluate_, "Only report the test accuracy of this classifier (no training)");
    app.add_option("--steps", opt_.steps, "Optimizer steps")->check(CLI::NonNegativeNumber);
    app.add_option("--batch-size", opt_.batch_size, "Images per step")->check(CLI::PositiveNumber);
    app.add_option("--lr", opt_.lr, "AdamW peak learning rate (cosine-decayed to 0)")->check(CLI::PositiveNumber);
    app.add_option("--weight-decay", opt_.weight_decay, "AdamW weight decay")->check(CLI::NonNegativeNumber);
    app.add_option("--hflip", opt_.hflip, "Random horizontal flips (true/false)");
    app.add_option("--channels", config_.channels, "Channels of the conv stages")->delimiter(',');
    app.add_option("--features", config_.features, "Width of the feature (penultimate) layer")
        ->check(CLI::PositiveNumber);
    app.add_option("--validation", validation_,
                   "Training images held out (the last ones of the train split) to report accuracy on")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--test-count", test_count_, "Test-split images to measure accuracy on (the first N)")
        ->check(CLI::PositiveNumber);
    app.add_flag("--json", json_, "--evaluate: print JSON");
  }

  int run() override {
    auto test = data::load_fashion_mnist(data::Split::kTest);
    const int64_t n_test = std::min<int64_t>(test_count_, test.images.size(0));
    torch::Tensor test_x = test.images.slice(0, 0, n_test), test_y = test.labels.slice(0, 0, n_test);
    if (!evaluate_.empty()) return evaluate(test_x, test_y);
    require(!out_.empty(), "train-classifier: give --out DIR to train, or --evaluate MODEL");
    check_output_dir(out_, "--out");
    config_.validate();

    auto train = data::load_fashion_mnist(data::Split::kTrain);
    const int64_t n = train.images.size(0);
    require(validation_ < n, "--validation must leave training images");
    torch::Tensor x = train.images.slice(0, 0, n - validation_), y = train.labels.slice(0, 0, n - validation_);

    say("training a " + std::to_string(metric::Classifier(config_)->num_parameters()) +
        "-parameter classifier on " + std::to_string(x.size(0)) + " images for " + std::to_string(opt_.steps) +
        " steps");
    torch::Generator gen = make_generator(common().seed);
    ProgressOptions po;
    po.quiet = common().quiet;
    po.unit = "step";
    Progress progress("train-classifier", opt_.steps, po);
    auto on_step = [&](int64_t step, double loss) { progress.update_loss(step, loss); };
    metric::ClassifierTrainResult result = metric::train_classifier(config_, x, y, opt_, gen, on_step);
    progress.finish();

    nlohmann::json accuracy = {{"test", metric::classifier_accuracy(result.model, test_x, test_y)},
                               {"test_count", n_test}};
    if (validation_ > 0) {
      accuracy["validation"] = metric::classifier_accuracy(result.model, train.images.slice(0, n - validation_),
                                                           train.labels.slice(0, n - validation_));
      accuracy["validation_count"] = validation_;
    }
    nlohmann::json provenance = {{"command", "tweedie train-classifier"},
                                 {"version", TWEEDIE_VERSION " " TWEEDIE_GIT_HASH},
                                 {"data", "fashion-mnist train[0:" + std::to_string(x.size(0)) + ")"},
                                 {"seed", common().seed},
                                 {"threads", torch::get_num_threads()},
                                 {"train_options", opt_.to_json()},
                                 {"seconds", result.seconds},
                                 {"accuracy", accuracy}};
    const fs::path dir(out_);
    const std::string weights = (dir / "model.safetensors").string();
    metric::save_classifier(weights, result.model, {{"tweedie.provenance", provenance.dump()}});
    nlohmann::json record = provenance;
    record["config"] = config_.to_json();
    record["parameters"] = result.model->num_parameters();
    record["sha256"] = sha256_file(weights);
    std::string csv = "step,loss,seconds\n";
    for (const auto& r : result.history) {
      char line[96];
      std::snprintf(line, sizeof line, "%lld,%.6g,%.2f\n", static_cast<long long>(r.step), r.loss, r.seconds);
      csv += line;
    }
    atomic_write_file((dir / "train.json").string(), record.dump(2) + "\n");
    atomic_write_file((dir / "loss.csv").string(), csv);
    say("test accuracy " + std::to_string(accuracy["test"].get<double>()) + " on " + std::to_string(n_test) +
        " images; " + std::to_string(result.seconds) + " s; wrote " + weights);
    return 0;
  }

  int evaluate(const torch::Tensor& x, const torch::Tensor& y) const {
    metric::Classifier model = metric::load_classifier(evaluate_);
    double acc = metric::classifier_accuracy(model, x, y);
    nlohmann::json j = {{"model", evaluate_}, {"sha256", sha256_file(evaluate_)},
                        {"test_accuracy", acc}, {"test_count", x.size(0)}};
    if (json_) {
      std::cout << j.dump(2) << "\n";
    } else {
      say("test accuracy " + std::to_string(acc) + " on the first " + std::to_string(x.size(0)) +
          " Fashion-MNIST test images (" + evaluate_ + ")");
    }
    return 0;
  }

 private:
  std::string out_, evaluate_;
  metric::ClassifierConfig config_;
  metric::ClassifierTrainOptions opt_;
  int64_t validation_ = 5000, test_count_ = 10000;
  bool json_ = false;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(TrainClassifierCommand);
}  // namespace tweedie::cli
