#pragma once
// The ADM U-Net's normalisation epilogue as one kernel for inference (and, for training, one
// autograd node with a fused backward, below):
//   y = SiLU( GroupNorm(x; γ, β) · (1 + scale) + shift )      (use_scale_shift_norm, ResBlock out)
//   y = SiLU( GroupNorm(x; γ, β) )                             (ResBlock in, the final layer)
//   y =       GroupNorm(x; γ, β)                               (AttentionBlock, silu = false)
// guided-diffusion's normalization() is GroupNorm32 in float32 (nn.py); ResBlock._forward
// applies scale and shift between the norm and the SiLU.
//
// Why by hand: LibTorch runs these as 3-5 passes over the activations (group_norm, mul_, add_,
// silu_), each a separate dispatch and, at batch 1, each a separate parallel region; together
// they were 12 % of a batch-16 NFE (bench_unet --profile-nfe). Here each (item, group) slab is
// read twice (statistics, then the output) and written once.
//
// Per (item b, group g) with n = (C/G)·H·W values: mean μ and variance σ² (two passes)
// accumulated in float64 (the biased variance, as GroupNorm), r = 1/√(σ² + eps); then per channel c the affine
// map is folded into one multiply-add,  a = r·γ_c·(1 + s_bc),  d = (β_c − μ·r·γ_c)·(1 + s_bc) + t_bc,
// and y = SiLU(a·x + d) with SiLU(v) = v / (1 + e^(−v)). The folding and the exponential
// (Cephes' single-precision polynomial, about 1 ulp) round differently from LibTorch's ops, by
// a few ulp of the output (tests/unit: GroupNormSilu.*).
#include <torch/types.h>

#include <vector>

namespace tweedie::diffusion {

// True when group_norm_silu applies: CPU float32 x of 4 dimensions, contiguous NCHW or
// channels-last, and no autograd (nothing requires grad, or grad mode is off).
bool group_norm_silu_applies(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& scale);

// x [B, C, H, W]; gamma, beta [C]; scale, shift [B, C] (any trailing 1 dimensions) or both
// undefined. Returns a new tensor in x's layout. Requires group_norm_silu_applies and
// C % groups == 0. Channels-last input runs per channel, vectorised across channels, in three
// passes (sums, squared deviations, output) over pixel chunks; the same arithmetic otherwise.
torch::Tensor group_norm_silu(const torch::Tensor& x, int64_t groups, const torch::Tensor& gamma,
                              const torch::Tensor& beta, double eps, const torch::Tensor& scale,
                              const torch::Tensor& shift, bool silu = true);

// Training (autograd through the parameters): true when grad mode is on, gamma requires grad,
// and x is CPU float32 contiguous NCHW. Then group_norm_silu_autograd computes the same
// function as an autograd node whose backward is one fused kernel: two passes over each
// (item, group) slab after its statistics (recomputed, not saved), against LibTorch's
// GroupNorm, mul, add and SiLU nodes with their saved intermediates. The trainer trains NCHW
// (UNetImpl::Layout::kAuto under autograd). A network differentiated only in its input (DPS:
// the prior's weights are frozen) keeps LibTorch's ops.
bool group_norm_silu_trains(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& scale);
torch::Tensor group_norm_silu_autograd(const torch::Tensor& x, int64_t groups, const torch::Tensor& gamma,
                                       const torch::Tensor& beta, double eps, const torch::Tensor& scale,
                                       const torch::Tensor& shift, bool silu = true);
// The backward kernel itself (NCHW float32): {dx, dgamma, dbeta, dscale, dshift} (the last two
// undefined without scale-shift), each shaped like its input.
std::vector<torch::Tensor> group_norm_silu_backward(const torch::Tensor& dy, const torch::Tensor& x, int64_t groups,
                                                    const torch::Tensor& gamma, const torch::Tensor& beta, double eps,
                                                    const torch::Tensor& scale, const torch::Tensor& shift,
                                                    bool silu = true);

}  // namespace tweedie::diffusion
