#pragma once
// Training an ε-prediction diffusion prior (Ho et al. 2020, Algorithm 1; the "simple" loss
// L = E_{t, x0, ε} ||ε − ε_θ(√ᾱ_t x0 + √(1−ᾱ_t) ε, t)||², t uniform over the base schedule),
// with AdamW, an exponential moving average of the weights, gradient-norm clipping and random
// horizontal flips. Checkpoints hold the model, its EMA, the optimizer moments, the generator
// state and the loss history in one safetensors file, written atomically, so a run killed at
// any moment (even kill -9) resumes from its last checkpoint and continues bit-identically.
//
// Data-parallel training (Trainer::distribute): every rank draws the whole global batch's random
// numbers (images, flips, timesteps, noise) from the one seeded generator, in the same order as a
// single process, and keeps its own contiguous share [r·B/W, (r+1)·B/W); the gradients of the
// share means are summed over ranks and divided by W (an all-reduce) before clipping and the
// AdamW step. Every rank therefore holds the same weights, EMA and generator state after each
// step, equal to a single process at the same global batch B up to float reduction order, and a
// checkpoint resumes under any world size that divides B.
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "tweedie/core/distributed.h"
#include "tweedie/diffusion/unet.h"

namespace tweedie::diffusion {

struct TrainOptions {
  int64_t steps = 20000;             // total optimizer steps of the run
  int64_t batch_size = 64;
  double lr = 2e-4;                  // AdamW learning rate (guided-diffusion uses 1e-4 for big nets)
  double weight_decay = 0.0;         // guided-diffusion's default
  int64_t warmup_steps = 200;        // linear learning-rate warm-up
  double ema_decay = 0.9995;         // EMA rate; warmed up as min(decay, (1+s)/(10+s))
  double grad_clip = 1.0;            // max global gradient norm (0 = off)
  bool hflip = true;                 // random horizontal flips (garments are mirror-symmetric)
  std::string schedule = "linear";   // base β schedule
  int64_t diffusion_steps = 1000;    // T
  int64_t checkpoint_every = 500;    // steps between checkpoints
  int64_t log_every = 50;            // steps between loss-history rows
  // Min-SNR-γ loss weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
  // Weighting Strategy", ε-prediction form): each item's MSE is weighted by
  // min(SNR_t, γ)/SNR_t, SNR_t = ᾱ_t/(1−ᾱ_t), which stops the many low-noise steps from
  // dominating the gradient. 0 = off (plain MSE, guided-diffusion's loss); the paper uses γ = 5.
  double min_snr_gamma = 0.0;
};

// One row of the loss history: mean loss over the last `log_every` steps.
struct TrainLogRow {
  int64_t step = 0;
  double loss = 0;
  double lr = 0;
  double images_per_s = 0;
  double seconds = 0;                // wall time of the whole run so far (resumes included)
};

// ε-prediction MSE for a batch: x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε; the network's first C output
// channels are ε̂ (learn_sigma's variance channels, if any, are not trained by this loss).
// With min_snr_gamma > 0 each item's mean squared error is weighted by min(SNR_t, γ)/SNR_t
// before the batch mean (TrainOptions::min_snr_gamma).
torch::Tensor epsilon_loss(UNet& model, const torch::Tensor& x0, const torch::Tensor& t,
                           const torch::Tensor& noise, const std::vector<double>& alphas_cumprod,
                           double min_snr_gamma = 0.0);

// Re-draws every randomly initialised parameter of `model` from `gen` with PyTorch's default
// initialisation (kaiming_uniform(a=√5) for conv/linear weights, i.e. U(±1/√fan_in), the same
// bound for their biases, N(0, 1) for embeddings). Zero-initialised layers (guided-diffusion's
// zero_module) and GroupNorm's ones/zeros are deterministic and kept. LibTorch's constructors
// draw from the global generator; this makes a training run a function of its seed.
void seeded_init(UNet& model, torch::Generator& gen);

class Trainer {
 public:
  // `data` is [N, C, H, W] in [-1, 1], kept on `device`.
  Trainer(UNet model, torch::Tensor data, TrainOptions options, uint64_t seed,
          torch::Device device = torch::kCPU);

  // Loads a checkpoint written by save_checkpoint (strict; InputError on any mismatch, e.g. an
  // architecture that differs from the model's).
  void load_checkpoint(const std::string& path);
  void save_checkpoint(const std::string& path) const;
  // The EMA weights with the architecture embedded (what `tweedie sample` and solvers load).
  void save_ema(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;

  // Trains data-parallel over `dist`'s ranks (see the top of this file); `dist` must outlive the
  // trainer. InputError, on every rank, when the batch size is not a multiple of the world size.
  // Call after load_checkpoint (if any): checks that every rank starts from the same step.
  void distribute(Distributed& dist);

  // Runs optimizer steps until `options.steps`; calls `on_step` after each step and
  // `on_checkpoint` every `checkpoint_every` steps and at the end.
  void run(const std::function<void(int64_t step, double loss)>& on_step,
           const std::function<void(int64_t step)>& on_checkpoint);

  int64_t step() const { return step_; }
  const std::vector<TrainLogRow>& history() const { return history_; }
  UNet& model() { return model_; }
  UNet& ema() { return ema_; }
  const TrainOptions& options() const { return options_; }

 private:
  double train_step();  // one optimizer step; returns the batch loss
  double learning_rate(int64_t step) const;

  UNet model_, ema_;
  torch::Tensor data_;
  TrainOptions options_;
  torch::Device device_;
  torch::Generator gen_;
  Distributed* dist_ = nullptr;  // data-parallel group, or none
  std::vector<double> alphas_cumprod_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  int64_t step_ = 0;
  double elapsed_s_ = 0;  // from earlier sessions of this run
  std::vector<TrainLogRow> history_;
  // The log window in progress (loss sum and steps since the last history row); checkpointed,
  // so a run resumed mid-window logs the same rows as an uninterrupted one.
  double window_loss_ = 0;
  int64_t window_steps_ = 0;
};

// Writes the loss history as CSV (step,loss,lr: the same bytes for the same seed, resumed or
// not) and the wall-clock record as write_timing_csv (step,images_per_s,seconds) and an SVG plot of loss
// against step (log scale), both atomically.
void write_loss_csv(const std::string& path, const std::vector<TrainLogRow>& history);
void write_timing_csv(const std::string& path, const std::vector<TrainLogRow>& history);
void write_loss_svg(const std::string& path, const std::vector<TrainLogRow>& history);

nlohmann::json to_json(const TrainOptions& o);
TrainOptions train_options_from_json(const nlohmann::json& j);

}  // namespace tweedie::diffusion
