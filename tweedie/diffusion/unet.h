#pragma once
// The ADM U-Net of guided-diffusion (Dhariwal & Nichol 2021, `guided_diffusion/unet.py`,
// class UNetModel), with parameter names and shapes identical to its state dicts so that real
// checkpoints (DPS FFHQ-256, ImageNet-256) load unchanged.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tweedie/io/safetensors.h"  // TensorMap

namespace tweedie::diffusion {

// Constructor arguments of guided-diffusion's UNetModel; defaults are UNetModel's own.
struct UNetConfig {
  int64_t image_size = 32;
  int64_t in_channels = 3;
  int64_t model_channels = 128;
  int64_t out_channels = 6;                 // 2 * in_channels when learn_sigma
  int64_t num_res_blocks = 2;
  std::vector<int64_t> attention_resolutions;  // in downsample-factor (ds) units, as UNetModel takes
  double dropout = 0.0;
  std::vector<int64_t> channel_mult = {1, 2, 4, 8};
  bool conv_resample = true;
  int64_t dims = 2;                         // only 2 is supported
  int64_t num_classes = 0;                  // 0 = unconditional (guided-diffusion: None)
  bool use_checkpoint = false;              // accepted, no effect on values
  bool use_fp16 = false;                    // true is an InputError (not supported)
  int64_t num_heads = 1;
  int64_t num_head_channels = -1;
  int64_t num_heads_upsample = -1;
  bool use_scale_shift_norm = false;
  bool resblock_updown = false;
  bool use_new_attention_order = false;

  // True when the output holds [eps, v] (out_channels == 2 * in_channels).
  bool learn_sigma() const { return out_channels == 2 * in_channels; }

  // Reads guided-diffusion's kwargs (either the bare kwargs object or {"unet_kwargs": {...}});
  // unknown keys or bad values are an InputError naming the key. image_size, in_channels,
  // model_channels, out_channels, num_res_blocks and attention_resolutions are required (they
  // have no default in UNetModel). In the wrapper form, other top-level keys are ignored except
  // "learn_sigma", which must agree with learn_sigma(). attention_resolutions is a list of ds
  // factors; a comma string ("32,16,8") is read as create_model() does: pixel resolutions,
  // converted to ds = image_size / resolution. channel_mult may also be a comma string.
  static UNetConfig from_json(const nlohmann::json& j);
  // The bare kwargs, every key spelled out (num_classes 0 -> null).
  nlohmann::json to_json() const;
  void validate() const;  // InputError on inconsistent settings, or more weights than memory
  // The approximate parameter count (±30 %), computed from the settings without building.
  double approx_parameters() const;
};

namespace detail {
class TimestepEmbedSequentialImpl;  // unet_blocks.h
class ConvWeightCache;              // unet.cpp
}

// The architecture of the shipped Fashion-MNIST prior (models/fmnist32): 1×32×32, ε-prediction,
// 32 channels, 1 res block, mult (1,2,2), attention at 16 px with 32-channel heads,
// scale-shift norm, resblock up/down — guided-diffusion's config A without learned σ.
UNetConfig fashion_mnist_config();

// Builds the network. forward(x [B,C,H,W], t [B] (int64 or float, may be fractional; a scalar or
// [1] is broadcast to the batch), y [B] int64 class labels or undefined) -> [B, out_channels, H, W]
// in the parameters' dtype (x is converted, as guided-diffusion's `x.type(self.dtype)`).
// H and W must be divisible by 2^(len(channel_mult)-1). Bad inputs are an InputError.
class UNetImpl : public torch::nn::Module {
 public:
  explicit UNetImpl(const UNetConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& y = {});
  // Output of each top-level block (input_blocks.N, middle_block, output_blocks.N, out), for
  // golden tests against the reference's intermediates. Also records "timestep_embedding" (the
  // sinusoidal input of time_embed) and "time_embed" (the embedding, before label_emb is added).
  // Recorded tensors are contiguous copies.
  torch::Tensor forward_traced(const torch::Tensor& x, const torch::Tensor& t,
                               std::vector<std::pair<std::string, torch::Tensor>>* trace,
                               const torch::Tensor& y = {});
  const UNetConfig& config() const { return config_; }
  int64_t num_parameters() const;
  // Multiply-accumulate count x 2 for one image at image_size resolution. Counted: every
  // convolution (including the attention qkv/proj_out 1x1 Conv1d), every Linear (time_embed and
  // each ResBlock's emb_layers), and attention's two matmuls (q^T k and w v: 2 * T^2 * C MACs per
  // block, T = H*W). Not counted: GroupNorm, SiLU, softmax, resampling, additions, concatenation,
  // the sinusoidal embedding and label_emb (a lookup).
  double flops_per_image() const { return flops_; }

  // Memory layout of the activations on CPU (other devices always run NCHW). The three give the
  // same function to float rounding (UNetReplay tests each against guided-diffusion's outputs).
  //  - kNchw: NCHW activations and weights.
  //  - kChannelsLast: channels-last activations, the 4-D conv weights stored channels-last
  //    (shapes and names unchanged, only the strides).
  //  - kAuto (default): NCHW weights; an inference call (grad mode off, or neither x nor the
  //    weights requiring grad) runs channels-last on cached channels-last copies of the conv
  //    weights, a call under autograd (training, DPS's gradient through the network) runs NCHW.
  //    The copies cost the conv weights' memory once more (0.3 GB for FFHQ-256) and are
  //    refreshed when a weight changes (its version counter or storage).
  // Why, measured on 2026-12-06 (docs/benchmarks.md): channels-last is faster in inference
  // (the shipped 32x32 network at batch 1 / 16: 6.7 / 63 ms against 8.3 / 77 ms per NFE; FFHQ-256
  // at batch 1: 1.07 against 1.32 s) and slower under autograd (DPS on Table I 152.9 against
  // 123.3 s); oneDNN reorders NCHW activations to a blocked layout on every convolution.
  // The output is returned contiguous in every layout.
  enum class Layout { kNchw, kChannelsLast, kAuto };
  void set_layout(Layout layout);
  Layout layout() const { return layout_; }

 private:
  using Trace = std::vector<std::pair<std::string, torch::Tensor>>;
  torch::Tensor run(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y,
                    Trace* trace);

  UNetConfig config_;
  Layout layout_ = Layout::kAuto;
  std::shared_ptr<detail::ConvWeightCache> weight_cache_;  // kAuto's channels-last copies
  double flops_ = 0;
  // Registered in guided-diffusion's order so that named_parameters() matches its state_dict().
  torch::nn::Sequential time_embed_{nullptr};  // Linear, SiLU, Linear
  torch::nn::Embedding label_emb_{nullptr};    // only when num_classes > 0
  torch::nn::ModuleList input_blocks_{nullptr};
  std::shared_ptr<detail::TimestepEmbedSequentialImpl> middle_block_;
  torch::nn::ModuleList output_blocks_{nullptr};
  torch::nn::Sequential out_{nullptr};  // GroupNorm32, SiLU, Conv2d
  torch::nn::GroupNorm out_norm_{nullptr};
  torch::nn::Conv2d out_conv_{nullptr};
  std::vector<std::shared_ptr<detail::TimestepEmbedSequentialImpl>> inputs_, outputs_;
};
TORCH_MODULE(UNet);

// "nchw", "channels-last" or "auto", for reports.
const char* layout_name(UNetImpl::Layout layout);

// guided-diffusion's timestep_embedding: [cos(t f), sin(t f)] (+ zero column if dim is odd),
// f_k = exp(-ln(max_period) k / half), float32.
torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, double max_period = 10000);

// Copies `tensors` into the module's parameters and buffers. Strict: any missing, unexpected or
// mis-shaped tensor is an InputError listing them (all of them, not just the first).
void load_state_dict_strict(torch::nn::Module& module, const io::TensorMap& tensors,
                            const std::string& source);

// The module's parameters and buffers by state-dict name: detached views of the live tensors
// (conv weights may be channels-last strided; make them contiguous before writing raw bytes).
io::TensorMap state_dict(const torch::nn::Module& module);

// Loads weights (.pt or .safetensors) and the architecture: `config_path` if given, else the
// JSON beside the weights (<weights without extension>.json), else the safetensors metadata
// key "tweedie.unet" (a JSON UNetConfig). Strict loading. InputError on any defect.
UNet load_unet(const std::string& weights_path, const std::string& config_path = "");

// Saves weights as safetensors with the config (and extra metadata) embedded, atomically.
void save_unet(const std::string& path, UNet& net,
               const std::map<std::string, std::string>& metadata = {});

}  // namespace tweedie::diffusion
