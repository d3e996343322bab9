#pragma once
// How good are a prior's unconditional samples? The measurement behind `tweedie sample-eval`
// (issue 13, item 3): draw N samples with a sampler, embed them with the shipped Fashion-MNIST
// classifier, and report
//   * the Fréchet distance between the samples' features and N held-out test images' features
//     (the FID formula on the classifier's 128-d penultimate layer, metric/distance.h; NOT FID),
//     with a bootstrap standard error over the samples;
//   * the floor: the same distance between N training images and the same N test images, the
//     value a perfect sampler would reach at this N (the estimator is biased upwards, O(D/N));
//   * the share of samples the classifier assigns to a class with confidence ≥ 0.9;
//   * cost: NFE and seconds.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tweedie/diffusion/prior.h"
#include "tweedie/metric/classifier.h"

namespace tweedie::experiment {

// One sampler run, e.g. {"ddim", 50} = DDIM η = 0 on 50 respaced steps, {"ddpm", 100} = ancestral
// sampling (guided-diffusion p_sample) on 100 respaced steps.
struct SamplerSpec {
  std::string kind;  // "ddim" or "ddpm"
  int64_t steps = 50;
  std::string name() const { return kind + std::to_string(steps); }
};

// Distance with its standard error.
struct Estimate {
  double value = 0, se = 0;
  nlohmann::json to_json() const { return {{"value", value}, {"se", se}}; }
};

struct SampleScore {
  SamplerSpec sampler;
  int64_t count = 0;
  Estimate frechet;            // samples vs reference (test) features
  double confident_share = 0;  // max softmax ≥ 0.9
  std::vector<double> class_share;  // arg-max class histogram, sums to 1
  int64_t nfe = 0;
  double seconds = 0;
  torch::Tensor samples;  // [N, C, H, W] in [-1, 1], on the CPU
  nlohmann::json to_json() const;  // everything but the samples
};

// Fréchet distance of a's and b's Gaussian fits, with a bootstrap standard error over a's rows
// (`resamples` draws with replacement from `gen`; 0: no error bar).
Estimate frechet_with_se(const torch::Tensor& a, const torch::Tensor& b, int64_t resamples,
                         torch::Generator& gen);

// Draws `count` samples in batches (x_T ~ N(0, I) and every step's noise from `gen`), clamped to
// [-1, 1], and scores them against `reference_features`. `progress(done)` after each batch.
SampleScore score_sampler(const diffusion::Prior& prior, const SamplerSpec& sampler, int64_t count,
                          int64_t batch_size, metric::Classifier& classifier,
                          const torch::Tensor& reference_features, int64_t resamples,
                          torch::Generator& gen, torch::Device device,
                          const std::function<void(int64_t)>& progress = {});

}  // namespace tweedie::experiment
