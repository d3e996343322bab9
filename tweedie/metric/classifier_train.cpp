#include "tweedie/metric/classifier_train.h"

#include <chrono>
#include <cmath>

#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"

namespace tweedie::metric {

nlohmann::json ClassifierTrainOptions::to_json() const {
  return {{"steps", steps}, {"batch_size", batch_size}, {"lr", lr},
          {"weight_decay", weight_decay}, {"hflip", hflip}, {"log_every", log_every}};
}

ClassifierTrainResult train_classifier(const ClassifierConfig& config, const torch::Tensor& images,
                                       const torch::Tensor& labels, const ClassifierTrainOptions& options,
                                       torch::Generator& gen,
                                       const std::function<void(int64_t, double)>& on_step) {
  require(options.steps >= 0 && options.batch_size > 0 && options.log_every > 0,
          "train-classifier: steps must be ≥ 0, batch size and log interval positive");
  require(options.lr > 0 && options.weight_decay >= 0, "train-classifier: lr must be positive, weight decay ≥ 0");
  torch::Tensor x = classifier_input(images, config).contiguous();
  require(labels.dim() == 1 && labels.size(0) == x.size(0) && x.size(0) > 0,
          "train-classifier: need one label per image");
  torch::Tensor y = labels.to(torch::kInt64);
  require(y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() < config.num_classes,
          "train-classifier: labels must lie in 0.." + std::to_string(config.num_classes - 1));

  ClassifierTrainResult result;
  result.model = Classifier(config);
  Classifier& model = result.model;
  seeded_init(model, gen);
  model->train();
  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const int64_t n = x.size(0), b = options.batch_size;
  const auto long_options = torch::TensorOptions().dtype(torch::kInt64);
  double window_loss = 0;
  int64_t window = 0;
  for (int64_t step = 0; step < options.steps; ++step) {
    // Fixed draw order from `gen`: batch indices, then flips.
    torch::Tensor idx = torch::randint(n, {b}, gen, long_options);
    torch::Tensor xb = x.index_select(0, idx);
    if (options.hflip) {
      torch::Tensor flip = (rand({b}, gen) < 0.5).view({b, 1, 1, 1});
      xb = torch::where(flip, xb.flip({3}), xb);
    }
    // η_s = η (1 + cos(π s / S)) / 2
    const double lr = options.lr * 0.5 * (1.0 + std::cos(M_PI * static_cast<double>(step) /
                                                         static_cast<double>(options.steps)));
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    optimizer.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(xb), y.index_select(0, idx));
    loss.backward();
    optimizer.step();

    const double l = loss.item<double>();
    require(std::isfinite(l), "train-classifier: loss became " + std::to_string(l) + " at step " +
                                  std::to_string(step + 1) + "; lower --lr");
    window_loss += l;
    ++window;
    if (on_step) on_step(step + 1, l);
    if ((step + 1) % options.log_every == 0 || step + 1 == options.steps) {
      result.history.push_back({step + 1, window_loss / static_cast<double>(window),
                                std::chrono::duration<double>(clock::now() - start).count()});
      window_loss = 0;
      window = 0;
    }
  }
  result.seconds = std::chrono::duration<double>(clock::now() - start).count();
  model->eval();
  return result;
}

}  // namespace tweedie::metric
