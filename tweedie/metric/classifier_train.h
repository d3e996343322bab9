#pragma once
// Training the feature classifier of classifier.h: cross-entropy, AdamW with a cosine-decayed
// learning rate, minibatches drawn with replacement. Every random draw (initialisation, batch
// indices, flips) comes from one seeded generator in a fixed order, so a run is a function of
// its seed (bit-identical at a fixed thread count; oneDNN's reductions may differ across counts).
#include <torch/torch.h>

#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "tweedie/metric/classifier.h"

namespace tweedie::metric {

struct ClassifierTrainOptions {
  int64_t steps = 3000;        // optimizer steps (3000 × 128 ≈ 6.4 epochs of Fashion-MNIST)
  int64_t batch_size = 128;
  double lr = 2e-3;            // AdamW peak rate, η_s = η (1 + cos(π s / S)) / 2
  double weight_decay = 1e-4;  // AdamW decoupled weight decay
  bool hflip = false;          // random horizontal flips (Fashion-MNIST's shoes all face left)
  int64_t log_every = 100;     // steps per loss-history row

  nlohmann::json to_json() const;
};

struct ClassifierLogRow {
  int64_t step = 0;
  double loss = 0;     // mean cross-entropy over the last log_every steps
  double seconds = 0;  // since the start of training
};

struct ClassifierTrainResult {
  Classifier model{nullptr};  // in eval mode
  std::vector<ClassifierLogRow> history;
  double seconds = 0;
};

// Trains a fresh classifier of `config` (seeded_init from `gen`) on images [N, C, S, S] in
// [-1, 1] (see classifier_input) with labels [N] in 0..num_classes−1. `on_step(step, loss)`
// is called after every step.
ClassifierTrainResult train_classifier(const ClassifierConfig& config, const torch::Tensor& images,
                                       const torch::Tensor& labels, const ClassifierTrainOptions& options,
                                       torch::Generator& gen,
                                       const std::function<void(int64_t, double)>& on_step = {});

}  // namespace tweedie::metric
