#pragma once
// Building blocks of guided-diffusion's UNetModel (`guided_diffusion/unet.py`). Internal to
// tweedie/diffusion: unet.cpp builds them, tests reach them only through UNet.
//
// Every block registers its children under the names guided-diffusion's modules use, including
// the indices of parameterless layers (SiLU, Dropout) inside nn.Sequential, so that
// named_parameters() equals the Python state_dict() key for key and in order.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

namespace tweedie::diffusion::detail {

// guided-diffusion's TimestepBlock: a module whose forward also receives the timestep embedding.
class TimestepBlock : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb) = 0;
  // Multiply-accumulates for one image whose input is res x res (see UNetImpl::flops_per_image).
  virtual double macs(double res) const = 0;
  // Spatial scale of the output relative to the input (0.5, 1 or 2).
  virtual double scale() const { return 1.0; }
};

enum class Resample { kNone, kUp, kDown };

// guided-diffusion ResBlock: GroupNorm-SiLU-conv, timestep embedding (added, or FiLM-style
// scale-shift), GroupNorm-SiLU-Dropout-conv, plus a skip connection (1x1 conv when the channel
// count changes). With up/down (resblock_updown) the features and the skip are resampled
// (nearest x2 / 2x2 average pooling) between in_layers' SiLU and its conv.
class ResBlockImpl : public TimestepBlock {
 public:
  ResBlockImpl(int64_t channels, int64_t emb_channels, double dropout, int64_t out_channels,
               bool use_scale_shift_norm, Resample resample);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb) override;
  double macs(double res) const override;
  double scale() const override;

 private:
  int64_t channels_, out_channels_, emb_channels_;
  bool use_scale_shift_norm_;
  Resample resample_;
  torch::nn::Sequential in_layers_{nullptr};   // 0 GroupNorm32, 1 SiLU, 2 Conv2d 3x3
  torch::nn::Sequential emb_layers_{nullptr};  // 0 SiLU, 1 Linear
  torch::nn::Sequential out_layers_{nullptr};  // 0 GroupNorm32, 1 SiLU, 2 Dropout, 3 Conv2d 3x3
  torch::nn::Conv2d skip_connection_{nullptr};  // 1x1, only when channels != out_channels
  torch::nn::GroupNorm in_norm_{nullptr}, out_norm_{nullptr};
  torch::nn::Conv2d in_conv_{nullptr}, out_conv_{nullptr};
  torch::nn::Linear emb_linear_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};

// guided-diffusion AttentionBlock: self-attention over the H*W positions with GroupNorm32,
// a 1x1 Conv1d `qkv` (weight [3C, C, 1]) and a 1x1 Conv1d `proj_out`, residual on the
// un-normalised input. Legacy order (QKVAttentionLegacy) splits heads before q/k/v: channels
// are [h0: q k v | h1: q k v | ...]; the new order (QKVAttention) splits q/k/v first.
class AttentionBlockImpl : public TimestepBlock {
 public:
  AttentionBlockImpl(int64_t channels, int64_t num_heads, bool use_new_attention_order);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb) override;
  double macs(double res) const override;
  int64_t num_heads() const { return num_heads_; }

 private:
  int64_t channels_, num_heads_;
  bool new_order_;
  torch::nn::GroupNorm norm_{nullptr};
  torch::nn::Conv1d qkv_{nullptr};
  torch::nn::Conv1d proj_out_{nullptr};
};

// guided-diffusion Downsample: 3x3 stride-2 conv `op` (conv_resample) or 2x2 average pooling.
class DownsampleImpl : public TimestepBlock {
 public:
  DownsampleImpl(int64_t channels, bool use_conv);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb) override;
  double macs(double res) const override;
  double scale() const override { return 0.5; }

 private:
  int64_t channels_;
  torch::nn::Conv2d op_{nullptr};
};

// guided-diffusion Upsample: nearest x2, then a 3x3 conv `conv` (conv_resample).
class UpsampleImpl : public TimestepBlock {
 public:
  UpsampleImpl(int64_t channels, bool use_conv);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb) override;
  double macs(double res) const override;
  double scale() const override { return 2.0; }

 private:
  int64_t channels_;
  torch::nn::Conv2d conv_{nullptr};
};

// guided-diffusion TimestepEmbedSequential: children named "0", "1", ...; TimestepBlocks get
// the embedding, a plain Conv2d (input_blocks.0.0) does not.
class TimestepEmbedSequentialImpl : public torch::nn::Module {
 public:
  void push_back(std::shared_ptr<TimestepBlock> block);
  void push_back(torch::nn::Conv2d conv);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  // Multiply-accumulates for one image whose input is res x res; *res becomes the output's.
  double macs(double* res) const;

 private:
  struct Layer {
    std::shared_ptr<TimestepBlock> block;
    torch::nn::Conv2d conv{nullptr};
  };
  std::vector<Layer> layers_;
};

}  // namespace tweedie::diffusion::detail
