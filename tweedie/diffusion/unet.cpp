// The ADM U-Net of guided-diffusion (`guided_diffusion/unet.py` and `nn.py`), re-implemented on
// LibTorch. Structure, parameter names and the order of floating-point operations follow the
// reference; see shared/fixtures/guided-diffusion/README.md for the details that matter.
//
// Performance notes (CPU inference runs thousands of network evaluations):
//  - inference calls run channels-last activations on cached channels-last weight copies, calls
//    under autograd NCHW (UNet::Layout::kAuto, the default; set_layout fixes one), and every
//    float32 conv calls oneDNN directly (see conv_forward);
//  - in float32 CPU inference (NCHW or channels-last), GroupNorm with its scale-shift and SiLU is
//    one fused kernel (group_norm_silu.h, through norm_act); in training (autograd through the
//    weights, NCHW) one autograd node with a fused backward; with autograd through the input
//    only (DPS, frozen weights), LibTorch's ops in the reference order;
//  - attention works channel-major ([B, C, T]) as the reference does (on an NCHW copy of
//    channels-last activations), with qkv / proj_out as oneDNN 1x1 convolutions and each of the
//    two attention products one bmm for the whole batch;
//  - otherwise GroupNorm runs on an NCHW copy: LibTorch 1.13's CPU GroupNorm is 10-28x slower
//    on channels-last input (norm_nchw);
//  - element-wise steps run in place on freshly computed tensors unless autograd needs the
//    originals (a tensor that requires grad is never modified in place).
#include "tweedie/diffusion/unet.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "tweedie/core/error.h"
#include "tweedie/diffusion/group_norm_silu.h"
#include "tweedie/diffusion/unet_blocks.h"

namespace tweedie::diffusion {
namespace detail {

// Channels-last copies of 4-D weights, one per weight, for Layout::kAuto's inference calls. A
// copy is made again when its weight has changed: another storage (set_data, a move to another
// device) or a bumped version counter (any in-place write: an optimiser step, copy_ on
// loading). The entry holds the storage it copied from, so that storage's address cannot be
// reused by another while the entry lives. Calls from several threads share it (a mutex).
class ConvWeightCache {
  using Tensor = torch::Tensor;

 public:
  Tensor channels_last(const Tensor& w) {
    if (w.is_contiguous(at::MemoryFormat::ChannelsLast)) return w;
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entries_[w.unsafeGetTensorImpl()];
    const auto version = w._version();
    if (!e.copy.defined() || !e.storage.is_alias_of(w.storage()) || e.data != w.data_ptr() || e.version != version) {
      torch::NoGradGuard no_grad;
      e = {w.storage(), w.data_ptr(), version, w.detach().contiguous(at::MemoryFormat::ChannelsLast)};
    }
    return e.copy;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.clear();
  }

 private:
  struct Entry {
    c10::Storage storage;
    const void* data = nullptr;
    int64_t version = 0;  // TensorBase::_version()
    Tensor copy;
  };
  std::mutex mu_;
  std::unordered_map<const c10::TensorImpl*, Entry> entries_;
};

namespace {

using torch::Tensor;

// In-place element-wise ops are safe on a fresh intermediate that autograd does not track.
bool can_modify(const Tensor& t) { return !t.requires_grad(); }

Tensor silu_fresh(Tensor t) { return can_modify(t) ? at::silu_(t) : at::silu(t); }

// guided-diffusion normalization(): GroupNorm32(32, channels), eps 1e-5, affine.
torch::nn::GroupNorm group_norm32(int64_t channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, channels).eps(1e-5).affine(true));
}

// GroupNorm on NCHW activations, returned NCHW. LibTorch 1.13's CPU GroupNorm kernel is
// 10-28x slower on channels-last input at 16x16 and 8x8 than on NCHW (docs/benchmarks.md), so
// the norm runs on an NCHW copy and its result goes straight back to the caller's layout with
// back_to(). The element-wise epilogue (scale-shift, SiLU) runs after that, in the caller's
// layout: on mixed layouts (a channels-last gradient against a saved NCHW input) SiLU's
// backward measured 4x slower.
Tensor norm_nchw(torch::nn::GroupNorm& norm, const Tensor& x) {
  return norm->forward(x.contiguous());
}
// `y` in the memory layout of `like` (channels-last stays channels-last).
Tensor back_to(const Tensor& y, const Tensor& like) {
  return y.contiguous(like.suggest_memory_format());
}

// SiLU(norm(x)·(1 + scale) + shift), or without scale-shift (scale and shift undefined), or
// norm(x) alone (silu false); in x's layout. Float32 CPU inference runs the fused kernel
// (group_norm_silu.h), float32 CPU training (autograd through the weights, NCHW) its autograd
// node; everything else (autograd through the input only, other dtypes and devices)
// LibTorch's ops in the reference's order.
Tensor norm_act(torch::nn::GroupNorm& norm, const Tensor& x, const Tensor& scale, const Tensor& shift, bool silu) {
  if (group_norm_silu_applies(x, norm->weight, scale)) {
    return group_norm_silu(x, norm->options.num_groups(), norm->weight, norm->bias, norm->options.eps(), scale,
                           shift, silu);
  }
  if (group_norm_silu_trains(x, norm->weight, scale)) {
    return group_norm_silu_autograd(x, norm->options.num_groups(), norm->weight, norm->bias, norm->options.eps(),
                                    scale, shift, silu);
  }
  Tensor n = back_to(norm_nchw(norm, x), x);
  if (scale.defined()) {
    if (can_modify(n) && can_modify(scale) && can_modify(shift)) {
      n.mul_(scale + 1).add_(shift);
    } else {
      n = n * (scale + 1) + shift;
    }
  }
  return silu ? silu_fresh(n) : n;
}

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

// guided-diffusion zero_module(): zero every parameter of `module`.
void zero_parameters(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.zero_();
}

// F.interpolate(x, scale_factor=2, mode="nearest").
Tensor upsample_nearest2x(const Tensor& x) {
  return at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2}, 2.0, 2.0);
}

// nn.AvgPool2d(kernel_size=2, stride=2).
Tensor avg_pool2x(const Tensor& x) { return at::avg_pool2d(x, {2, 2}, {2, 2}); }

// Conv2d forward. On CPU float32 this calls oneDNN directly: ATen's heuristic sends 1x1 convs
// (single-threaded) and small-spatial convs at batch 1 to its slow im2col path, which also
// drops the channels-last layout. This is the kernel ATen itself uses for larger inputs, with
// the same autograd formula (convolution_backward).
bool onednn_conv(const Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && at::hasMKLDNN() &&
         at::globalContext().userEnabledMkldnn();
}

// The weight cache of the network call running on this thread (UNetImpl::run sets it for an
// inference call in Layout::kAuto), else null.
thread_local ConvWeightCache* active_weight_cache = nullptr;

Tensor conv_forward(const torch::nn::Conv2d& conv, const Tensor& x) {
  if (onednn_conv(x) && conv->bias.defined()) {
    const auto& o = conv->options;
    const auto& padding = c10::get<torch::ExpandingArray<2>>(o.padding());
    // oneDNN takes channels-last input with NCHW weights by copying the weights on every call;
    // and a channels-last weight is what makes it run channels-last when the input's layout is
    // ambiguous (one channel, or 1x1 pixels).
    const Tensor& w = active_weight_cache ? active_weight_cache->channels_last(conv->weight) : conv->weight;
    return at::mkldnn_convolution(x, w, conv->bias, *padding, *o.stride(), *o.dilation(), o.groups());
  }
  return conv.ptr()->forward(x);
}

// A Conv1d with kernel 1 on [B, C, T] activations held as [B, C, H, W]: on CPU float32 the
// oneDNN 1x1 convolution (one call for the batch, no layout change), elsewhere conv2d.
Tensor conv1x1(const Tensor& x, const torch::nn::Conv1d& conv) {
  const Tensor w = conv->weight.unsqueeze(-1);  // [C_out, C_in, 1] -> [C_out, C_in, 1, 1]
  if (onednn_conv(x)) return at::mkldnn_convolution(x, w, conv->bias, {0, 0}, {1, 1}, {1, 1}, 1);
  return at::conv2d(x, w, conv->bias);
}

double conv_macs(int64_t in, int64_t out, int64_t kernel, double res_out) {
  return static_cast<double>(in) * static_cast<double>(out) * static_cast<double>(kernel * kernel) *
         res_out * res_out;
}

}  // namespace

// ---- ResBlock ----------------------------------------------------------------------------------

ResBlockImpl::ResBlockImpl(int64_t channels, int64_t emb_channels, double dropout,
                           int64_t out_channels, bool use_scale_shift_norm, Resample resample)
    : channels_(channels),
      out_channels_(out_channels),
      emb_channels_(emb_channels),
      use_scale_shift_norm_(use_scale_shift_norm),
      resample_(resample) {
  in_norm_ = group_norm32(channels);
  in_conv_ = conv3x3(channels, out_channels);
  in_layers_ = register_module("in_layers",
                               torch::nn::Sequential(in_norm_, torch::nn::SiLU(), in_conv_));
  // With scale-shift the embedding yields [scale | shift], 2 * out_channels wide.
  emb_linear_ = torch::nn::Linear(emb_channels,
                                  use_scale_shift_norm ? 2 * out_channels : out_channels);
  emb_layers_ = register_module("emb_layers", torch::nn::Sequential(torch::nn::SiLU(), emb_linear_));
  out_norm_ = group_norm32(out_channels);
  dropout_ = torch::nn::Dropout(torch::nn::DropoutOptions(dropout));
  out_conv_ = conv3x3(out_channels, out_channels);
  zero_parameters(*out_conv_);
  out_layers_ = register_module(
      "out_layers", torch::nn::Sequential(out_norm_, torch::nn::SiLU(), dropout_, out_conv_));
  // UNetModel never sets use_conv, so a channel change is always a 1x1 conv.
  if (out_channels != channels) {
    skip_connection_ = register_module(
        "skip_connection", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, out_channels, 1)));
  }
}

double ResBlockImpl::scale() const {
  return resample_ == Resample::kUp ? 2.0 : resample_ == Resample::kDown ? 0.5 : 1.0;
}

double ResBlockImpl::macs(double res) const {
  const double r = res * scale();
  double m = conv_macs(channels_, out_channels_, 3, r) + conv_macs(out_channels_, out_channels_, 3, r);
  m += static_cast<double>(emb_channels_) *
       static_cast<double>(use_scale_shift_norm_ ? 2 * out_channels_ : out_channels_);
  if (skip_connection_) m += conv_macs(channels_, out_channels_, 1, r);
  return m;
}

Tensor ResBlockImpl::forward(const Tensor& x, const Tensor& emb) {
  // in_layers; for up/down blocks the resampling sits between the SiLU and the conv, and the
  // skip path is resampled the same way (ResBlock._forward, `updown`).
  Tensor h = norm_act(in_norm_, x, {}, {}, /*silu=*/true);
  Tensor skip = x;
  if (resample_ == Resample::kUp) {
    h = upsample_nearest2x(h);
    skip = upsample_nearest2x(x);
  } else if (resample_ == Resample::kDown) {
    h = avg_pool2x(h);
    skip = avg_pool2x(x);
  }
  h = conv_forward(in_conv_, h);

  // emb_layers: SiLU then Linear, broadcast over the spatial dimensions.
  Tensor emb_out = emb_linear_->forward(at::silu(emb)).unsqueeze(-1).unsqueeze(-1);
  if (use_scale_shift_norm_) {
    // scale first, then shift: out_norm(h) * (1 + scale) + shift.
    auto ss = emb_out.chunk(2, 1);
    h = norm_act(out_norm_, h, ss[0], ss[1], /*silu=*/true);
  } else {
    Tensor in = can_modify(h) && can_modify(emb_out) ? h.add_(emb_out) : h + emb_out;
    h = norm_act(out_norm_, in, {}, {}, /*silu=*/true);
  }
  if (is_training() && dropout_->options.p() > 0) h = dropout_->forward(h);
  h = conv_forward(out_conv_, h);

  if (skip_connection_) skip = conv_forward(skip_connection_, skip);
  return can_modify(h) && can_modify(skip) ? h.add_(skip) : skip + h;
}

// ---- AttentionBlock ----------------------------------------------------------------------------

AttentionBlockImpl::AttentionBlockImpl(int64_t channels, int64_t num_heads,
                                       bool use_new_attention_order)
    : channels_(channels), num_heads_(num_heads), new_order_(use_new_attention_order) {
  if (num_heads < 1 || channels % num_heads != 0) {
    throw InputError("U-Net config: attention with " + std::to_string(channels) +
                     " channels cannot be split into " + std::to_string(num_heads) + " heads");
  }
  norm_ = register_module("norm", group_norm32(channels));
  qkv_ = register_module("qkv", torch::nn::Conv1d(torch::nn::Conv1dOptions(channels, 3 * channels, 1)));
  proj_out_ = register_module("proj_out",
                              torch::nn::Conv1d(torch::nn::Conv1dOptions(channels, channels, 1)));
  zero_parameters(*proj_out_);
}

double AttentionBlockImpl::macs(double res) const {
  const double tokens = res * res;
  const double c = static_cast<double>(channels_);
  // qkv (3C x C per token), proj_out (C x C per token), q^T k and w v (T x T x C each).
  return 4.0 * c * c * tokens + 2.0 * tokens * tokens * c;
}

Tensor AttentionBlockImpl::forward(const Tensor& x, const Tensor& emb) {
  // Channels-last (or any other) layout: the same computation on an NCHW copy, returned in x's
  // layout. A token-major variant ([B, T, C], a free view of channels-last) needed per-head
  // permute copies, and its softmax measured 2.5x slower (docs/benchmarks.md); the two copies
  // here are 1 MB at batch 16.
  if (!x.is_contiguous()) return back_to(forward(x.contiguous(), emb), x);

  const int64_t b = x.size(0), c = channels_, height = x.size(2), width = x.size(3);
  const int64_t t = height * width, heads = num_heads_, ch = c / heads;
  // NCHW: the reference's own channel-major order, [B, C, T], with no layout change.
  // qkv and proj_out are oneDNN 1x1 convolutions; each head's products are one bmm for the
  // whole batch (QKVAttentionLegacy.forward / QKVAttention.forward).
  Tensor qkv = conv1x1(norm_act(norm_, x, {}, {}, /*silu=*/false), qkv_);  // [B, 3C, H, W]
  Tensor q, k, v;                                    // [B*heads, ch, T]
  if (new_order_) {
    // channel = {q,k,v} * C + head * ch + i
    auto parts = qkv.view({b, 3, heads * ch, t}).unbind(1);
    q = parts[0].reshape({b * heads, ch, t}), k = parts[1].reshape({b * heads, ch, t}),
    v = parts[2].reshape({b * heads, ch, t});
  } else {
    // channel = head * 3ch + {q,k,v} * ch + i
    auto parts = qkv.view({b * heads, 3, ch, t}).unbind(1);
    q = parts[0], k = parts[1], v = parts[2];
  }
  // weight[t, s] = Σ_c (q[c, t]·s)(k[c, s]·s), s = ch^(-1/4) on each side as in the reference.
  const double s = 1.0 / std::sqrt(std::sqrt(static_cast<double>(ch)));
  Tensor weight = at::bmm((q * s).transpose(1, 2), k * s);  // [B*heads, T(query), T(key)]
  weight = weight.scalar_type() == at::kHalf || weight.scalar_type() == at::kBFloat16
               ? at::softmax(weight, -1, at::kFloat).to(q.scalar_type())  // weight.float()
               : at::softmax(weight, -1);
  // a[c, t] = Σ_s weight[t, s] v[c, s]; heads stack back head-major into C channels.
  Tensor a = at::bmm(v, weight.transpose(1, 2)).view({b, c, height, width});
  Tensor h = conv1x1(a, proj_out_);
  return can_modify(h) && can_modify(x) ? h.add_(x) : x + h;
}

// ---- Downsample / Upsample ---------------------------------------------------------------------

DownsampleImpl::DownsampleImpl(int64_t channels, bool use_conv) : channels_(channels) {
  if (use_conv) op_ = register_module("op", conv3x3(channels, channels, /*stride=*/2));
}

double DownsampleImpl::macs(double res) const {
  return op_ ? conv_macs(channels_, channels_, 3, res / 2) : 0.0;
}

Tensor DownsampleImpl::forward(const Tensor& x, const Tensor& /*emb*/) {
  return op_ ? conv_forward(op_, x) : avg_pool2x(x);
}

UpsampleImpl::UpsampleImpl(int64_t channels, bool use_conv) : channels_(channels) {
  if (use_conv) conv_ = register_module("conv", conv3x3(channels, channels));
}

double UpsampleImpl::macs(double res) const {
  return conv_ ? conv_macs(channels_, channels_, 3, res * 2) : 0.0;
}

Tensor UpsampleImpl::forward(const Tensor& x, const Tensor& /*emb*/) {
  Tensor h = upsample_nearest2x(x);
  return conv_ ? conv_forward(conv_, h) : h;
}

// ---- TimestepEmbedSequential -------------------------------------------------------------------

void TimestepEmbedSequentialImpl::push_back(std::shared_ptr<TimestepBlock> block) {
  register_module(std::to_string(layers_.size()), block);
  layers_.push_back({std::move(block), nullptr});
}

void TimestepEmbedSequentialImpl::push_back(torch::nn::Conv2d conv) {
  register_module(std::to_string(layers_.size()), conv);
  layers_.push_back({nullptr, std::move(conv)});
}

Tensor TimestepEmbedSequentialImpl::forward(const Tensor& x, const Tensor& emb) {
  Tensor h = x;
  for (auto& layer : layers_) h = layer.block ? layer.block->forward(h, emb) : conv_forward(layer.conv, h);
  return h;
}

double TimestepEmbedSequentialImpl::macs(double* res) const {
  double m = 0;
  for (const auto& layer : layers_) {
    if (layer.block) {
      m += layer.block->macs(*res);
      *res *= layer.block->scale();
    } else {
      const auto& o = layer.conv->options;
      m += conv_macs(o.in_channels(), o.out_channels(), (*o.kernel_size())[0], *res);
    }
  }
  return m;
}

}  // namespace detail

// ---- timestep_embedding (guided_diffusion/nn.py) -----------------------------------------------

torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, double max_period) {
  require(t.defined() && t.dim() == 1, "timestep_embedding: expected a 1-D tensor of timesteps");
  require(dim >= 1, "timestep_embedding: dim must be positive, got " + std::to_string(dim));
  const int64_t half = dim / 2;
  // Same float32 operation order as the reference: exp((-ln(max_period) * k) / half).
  torch::Tensor freqs = torch::arange(0, half, t.options().dtype(torch::kFloat32))
                            .mul(-std::log(max_period))
                            .div(half)
                            .exp();
  torch::Tensor args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);
  torch::Tensor emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);  // cos first
  if (dim % 2) emb = torch::cat({emb, torch::zeros({emb.size(0), 1}, emb.options())}, -1);
  return emb;
}

// ---- UNetModel ---------------------------------------------------------------------------------

UNetImpl::UNetImpl(const UNetConfig& config) : config_(config) {
  using detail::AttentionBlockImpl;
  using detail::DownsampleImpl;
  using detail::ResBlockImpl;
  using detail::Resample;
  using detail::TimestepEmbedSequentialImpl;
  using detail::UpsampleImpl;
  config_.validate();
  const UNetConfig& c = config_;
  const int64_t mc = c.model_channels, emb_dim = 4 * mc;
  const bool ss = c.use_scale_shift_norm;
  const int64_t heads_up = c.num_heads_upsample == -1 ? c.num_heads : c.num_heads_upsample;
  auto attention_at = [&](int64_t ds) {
    return std::find(c.attention_resolutions.begin(), c.attention_resolutions.end(), ds) !=
           c.attention_resolutions.end();
  };
  // AttentionBlock: num_head_channels, when given, fixes the head width and overrides num_heads.
  auto attention = [&](int64_t channels, int64_t heads) {
    return std::make_shared<AttentionBlockImpl>(
        channels, c.num_head_channels == -1 ? heads : channels / c.num_head_channels,
        c.use_new_attention_order);
  };
  auto res_block = [&](int64_t in, int64_t out, Resample resample = Resample::kNone) {
    return std::make_shared<ResBlockImpl>(in, emb_dim, c.dropout, out, ss, resample);
  };
  double macs = 0;
  double res = static_cast<double>(c.image_size);

  time_embed_ = register_module(
      "time_embed", torch::nn::Sequential(torch::nn::Linear(mc, emb_dim), torch::nn::SiLU(),
                                          torch::nn::Linear(emb_dim, emb_dim)));
  macs += static_cast<double>(mc * emb_dim + emb_dim * emb_dim);
  if (c.num_classes > 0) {
    label_emb_ = register_module("label_emb", torch::nn::Embedding(c.num_classes, emb_dim));
  }

  // Encoder: input_blocks (UNetModel.__init__, first loop).
  input_blocks_ = register_module("input_blocks", torch::nn::ModuleList());
  auto add_input = [&](std::shared_ptr<TimestepEmbedSequentialImpl> block) {
    macs += block->macs(&res);
    input_blocks_->push_back(block);
    inputs_.push_back(std::move(block));
  };
  int64_t ch = c.channel_mult[0] * mc;
  const int64_t input_ch = ch;
  {
    auto block = std::make_shared<TimestepEmbedSequentialImpl>();
    block->push_back(detail::conv3x3(c.in_channels, ch));
    add_input(block);
  }
  std::vector<int64_t> skip_channels{ch};
  int64_t ds = 1;
  const auto levels = static_cast<int64_t>(c.channel_mult.size());
  for (int64_t level = 0; level < levels; ++level) {
    const int64_t level_ch = c.channel_mult[level] * mc;
    for (int64_t r = 0; r < c.num_res_blocks; ++r) {
      auto block = std::make_shared<TimestepEmbedSequentialImpl>();
      block->push_back(res_block(ch, level_ch));
      ch = level_ch;
      if (attention_at(ds)) block->push_back(attention(ch, c.num_heads));
      add_input(block);
      skip_channels.push_back(ch);
    }
    if (level != levels - 1) {
      auto block = std::make_shared<TimestepEmbedSequentialImpl>();
      if (c.resblock_updown) {
        block->push_back(res_block(ch, ch, Resample::kDown));
      } else {
        block->push_back(std::make_shared<DownsampleImpl>(ch, c.conv_resample));
      }
      add_input(block);
      skip_channels.push_back(ch);
      ds *= 2;
    }
  }

  // middle_block: ResBlock, AttentionBlock (always), ResBlock.
  middle_block_ = std::make_shared<TimestepEmbedSequentialImpl>();
  middle_block_->push_back(res_block(ch, ch));
  middle_block_->push_back(attention(ch, c.num_heads));
  middle_block_->push_back(res_block(ch, ch));
  register_module("middle_block", middle_block_);
  macs += middle_block_->macs(&res);

  // Decoder: output_blocks, each fed the concatenation with the matching encoder output.
  output_blocks_ = register_module("output_blocks", torch::nn::ModuleList());
  for (int64_t level = levels - 1; level >= 0; --level) {
    const int64_t level_ch = c.channel_mult[level] * mc;
    for (int64_t i = 0; i <= c.num_res_blocks; ++i) {
      const int64_t skip_ch = skip_channels.back();
      skip_channels.pop_back();
      auto block = std::make_shared<TimestepEmbedSequentialImpl>();
      block->push_back(res_block(ch + skip_ch, level_ch));
      ch = level_ch;
      if (attention_at(ds)) block->push_back(attention(ch, heads_up));
      if (level > 0 && i == c.num_res_blocks) {
        if (c.resblock_updown) {
          block->push_back(res_block(ch, ch, Resample::kUp));
        } else {
          block->push_back(std::make_shared<UpsampleImpl>(ch, c.conv_resample));
        }
        ds /= 2;
      }
      macs += block->macs(&res);
      output_blocks_->push_back(block);
      outputs_.push_back(std::move(block));
    }
  }

  // out: GroupNorm32, SiLU, zero-initialised conv.
  out_norm_ = detail::group_norm32(ch);
  out_conv_ = detail::conv3x3(input_ch, c.out_channels);
  detail::zero_parameters(*out_conv_);
  out_ = register_module("out", torch::nn::Sequential(out_norm_, torch::nn::SiLU(), out_conv_));
  macs += detail::conv_macs(input_ch, c.out_channels, 3, res);
  flops_ = 2.0 * macs;
  set_layout(layout_);
}

void UNetImpl::set_layout(Layout layout) {
  layout_ = layout;
  const auto format = layout == Layout::kChannelsLast ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  torch::NoGradGuard no_grad;
  for (auto& p : parameters()) {
    if (p.dim() == 4 && p.device().is_cpu() && !p.is_contiguous(format)) {
      p.set_data(p.contiguous(format));
    }
  }
  if (!weight_cache_) weight_cache_ = std::make_shared<detail::ConvWeightCache>();
  weight_cache_->clear();
}

const char* layout_name(UNetImpl::Layout layout) {
  switch (layout) {
    case UNetImpl::Layout::kNchw: return "nchw";
    case UNetImpl::Layout::kChannelsLast: return "channels-last";
    case UNetImpl::Layout::kAuto: break;
  }
  return "auto";
}

int64_t UNetImpl::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

torch::Tensor UNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
                                const torch::Tensor& y) {
  return run(x, t, y, nullptr);
}

torch::Tensor UNetImpl::forward_traced(const torch::Tensor& x, const torch::Tensor& t,
                                       Trace* trace, const torch::Tensor& y) {
  return run(x, t, y, trace);
}

namespace {
std::string shape_of(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace

torch::Tensor UNetImpl::run(const torch::Tensor& x, const torch::Tensor& t_in,
                            const torch::Tensor& y, Trace* trace) {
  const UNetConfig& c = config_;
  require(x.defined() && x.dim() == 4,
          "U-Net: expected x of shape [B, C, H, W], got " + (x.defined() ? shape_of(x) : "none"));
  const int64_t batch = x.size(0);
  require(x.size(1) == c.in_channels, "U-Net: expected " + std::to_string(c.in_channels) +
                                          " input channels, got x of shape " + shape_of(x));
  const int64_t factor = int64_t{1} << (c.channel_mult.size() - 1);
  require(x.size(2) > 0 && x.size(3) > 0 && x.size(2) % factor == 0 && x.size(3) % factor == 0,
          "U-Net: height and width must be positive multiples of " + std::to_string(factor) +
              ", got x of shape " + shape_of(x));
  require(x.is_floating_point(), "U-Net: x must be a floating-point tensor");
  require(t_in.defined() && (t_in.is_floating_point() ||
                             at::isIntegralType(t_in.scalar_type(), /*includeBool=*/false)),
          "U-Net: t must be an integer or floating-point tensor");
  torch::Tensor t = t_in;
  if (t.numel() == 1 && t.dim() <= 1) t = t.reshape({1}).expand({batch});
  require(t.dim() == 1 && t.size(0) == batch, "U-Net: expected t of shape [" +
                                                  std::to_string(batch) + "], got " + shape_of(t));

  const torch::Tensor& ref = out_conv_->weight;
  const auto device = ref.device();
  const auto dtype = ref.scalar_type();
  auto record = [&](const std::string& name, const torch::Tensor& v) {
    if (trace) trace->emplace_back(name, v.detach().contiguous().clone());
  };

  torch::Tensor temb = timestep_embedding(t.to(device), c.model_channels);
  record("timestep_embedding", temb);
  torch::Tensor emb = time_embed_->forward(temb.to(dtype));
  record("time_embed", emb);
  if (label_emb_) {
    require(y.defined(), "U-Net: the model is class-conditional; class labels y are required");
    require(y.dim() == 1 && y.size(0) == batch &&
                at::isIntegralType(y.scalar_type(), /*includeBool=*/false),
            "U-Net: expected integer class labels y of shape [" + std::to_string(batch) + "]");
    const auto lo = y.min().item<int64_t>(), hi = y.max().item<int64_t>();
    require(lo >= 0 && hi < c.num_classes, "U-Net: class label out of range [0, " +
                                               std::to_string(c.num_classes) + ")");
    emb = emb + label_emb_->forward(y.to(device, torch::kLong));
  } else {
    require(!y.defined(), "U-Net: the model is not class-conditional; y must be empty");
  }

  // Layout::kAuto: channels-last for an inference call, NCHW when autograd tracks x or the weights.
  const bool inference = !at::GradMode::is_enabled() || (!x.requires_grad() && !ref.requires_grad());
  const bool auto_cl = layout_ == Layout::kAuto && inference;
  // The cache is active for this call on this thread only (a nested or concurrent call sets its own).
  struct CacheScope {
    detail::ConvWeightCache* saved = detail::active_weight_cache;
    explicit CacheScope(detail::ConvWeightCache* c) { detail::active_weight_cache = c; }
    ~CacheScope() { detail::active_weight_cache = saved; }
  } cache_scope(auto_cl ? weight_cache_.get() : nullptr);
  torch::Tensor h = x.to(device, dtype);
  if ((layout_ == Layout::kChannelsLast || auto_cl) && device.is_cpu()) h = h.contiguous(at::MemoryFormat::ChannelsLast);
  std::vector<torch::Tensor> skips;
  skips.reserve(inputs_.size());
  for (size_t i = 0; i < inputs_.size(); ++i) {
    h = inputs_[i]->forward(h, emb);
    skips.push_back(h);
    record("input_blocks." + std::to_string(i), h);
  }
  h = middle_block_->forward(h, emb);
  record("middle_block", h);
  for (size_t i = 0; i < outputs_.size(); ++i) {
    h = torch::cat({h, skips.back()}, 1);
    skips.pop_back();
    h = outputs_[i]->forward(h, emb);
    record("output_blocks." + std::to_string(i), h);
  }
  h = detail::conv_forward(out_conv_,
                           detail::norm_act(out_norm_, h, {}, {}, /*silu=*/true));
  record("out", h);
  return h.contiguous();
}

}  // namespace tweedie::diffusion
