#pragma once
// The untrained networks of self-diffusion and Deep Image Prior, and what both solvers share:
// the data-fidelity loss, the scale normalisation against Aᵀy and the map between an
// operator's signal shape and the network's [B, C, H, W].
//
// UntrainedUNet follows ExtraDeepUNet of the self-diffusion code (Luo, Huang, Yang, NeurIPS 2025,
// arXiv 2510.21417, `net/extra_deep_unet.py`; methods.md §7.3):
//   inc    DoubleConv(C_in → w)                      DoubleConv = [3×3 conv, BN, ReLU] × 2
//   down   maxpool 2, DoubleConv(c_{i−1} → c_i),     c_i = min(w·2^i, 16w), i = 1..depth
//   bottom [3×3 conv, BN, ReLU] × 2 at c_depth        (no attention)
//   up     bilinear ×2 (align_corners), concat the skip c_j, DoubleConv(→ c_{j−1}), j = depth−1..0
//   out    1×1 conv → C_out  (linear, or sigmoid for spectra in [0, 1])
// With w = 64, depth = 5 this is ExtraDeepUNet (64 → 128 → 256 → 512 → 1024 → 1024). BN stays in
// training mode throughout (the reference never calls eval()). Initialisation as
// `utils.init_weights_unet2d`: conv weights N(0, 0.02²), biases 0, BN weights N(1, 0.02²), BN
// biases 0, all drawn from the caller's generator.
//
// 1-D signals ([L] or [C, L]) run through the same network with 1×3 kernels and 1×2 pooling on
// [B, C, 1, L]: one code path for images, 1-D compressed sensing and angle spectra.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tweedie/core/options.h"
#include "tweedie/core/registry.h"
#include "tweedie/op/operator.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

struct UntrainedUNetConfig {
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t width = 64;    // channels of the first level (ExtraDeepUNet: 64)
  int64_t depth = 5;     // 2× downsamplings (ExtraDeepUNet: 5); sizes must divide by 2^depth
  bool one_d = false;    // [B, C, 1, L] signals: 1×3 kernels, 1×2 pooling
  bool sigmoid = false;  // sigmoid on the output (self-diffusion's radar spectra, methods.md §7.5)
  double init_std = 0.02;  // N(0, init_std²) conv weights; BN weights N(1, init_std²)
  nlohmann::json to_json() const;
};

class UntrainedUNetImpl : public torch::nn::Module {
 public:
  // Weights are drawn from `gen` (the network is part of the solver's randomness).
  UntrainedUNetImpl(const UntrainedUNetConfig& config, torch::Generator& gen);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C_in, H, W] → [B, C_out, H, W]
  const UntrainedUNetConfig& config() const { return config_; }
  int64_t parameter_count() const;

 private:
  UntrainedUNetConfig config_;
  torch::nn::ModuleList down_{nullptr}, up_{nullptr};
  torch::nn::Sequential inc_{nullptr}, bottom_{nullptr};
  torch::nn::Conv2d out_{nullptr};
};
TORCH_MODULE(UntrainedUNet);

// How a problem's signal x ([B, in_shape...]) is shown to the network, and back.
struct NetShape {
  op::Shape signal;         // the operator's in_shape
  int64_t channels = 1;
  int64_t height = 1, width = 1;
  bool one_d = false;
  torch::Tensor to_net(const torch::Tensor& x) const;      // [B, signal...] → [B, C, H, W]
  torch::Tensor from_net(const torch::Tensor& z) const;    // [B, C, H, W] → [B, signal...]
};
// InputError (naming `solver`) unless the signal is [L], [C, L] or [C, H, W] with every spatial
// size divisible by 2^depth and at least 2^(depth+1) in total at the coarsest level (BN needs
// more than one value per channel).
NetShape net_shape(const op::Shape& signal, int64_t depth, const std::string& solver);

// What an untrained-network solver minimises over θ:
//   L(x) = ‖A x − y‖²/n   (mse: mean over the n real entries; complex y counts re and im)
//        | ‖A x − y‖₂      (norm: the MRI code's loss, methods.md §7.2)
//        + w_tv Σ|∇x|  (anisotropic, summed) + w_F Σ_k |FFT(x)_k| (1-D: along the signal)
struct FidelityLoss {
  std::string kind = "mse";  // "mse" or "norm"
  double tv = 0;
  double fourier_l1 = 0;
  torch::Tensor operator()(const op::Operator& A, const torch::Tensor& x, const torch::Tensor& y) const;
};

// Scale normalisation (methods.md §7.4, the MRI code): s = ‖D_θ(z)‖ / ‖Aᵀy‖ for the freshly
// initialised network at its input z (self-diffusion: z ~ N(0, I); DIP: its fixed input), so that
// the network fits s·y at the scale it starts from; the estimate is divided by s at the end.
double scale_to_network(UntrainedUNet& net, const torch::Tensor& z, const op::Operator& A, const torch::Tensor& y);

// InputError naming `solver` unless the operator accepts y: complex y needs an operator with
// complex output, the batch shape must match and, for the scale normalisation, A must be linear.
void check_untrained_inputs(const op::Operator& A, const torch::Tensor& y, const std::string& solver);

// ---- what self-diffusion and DIP share --------------------------------------------------------------

// The network, optimiser and loss settings both solvers take (registry keys in brackets); their
// options structs derive from it and join fields<O>() into their tables.
struct UntrainedNetOptions {
  int64_t width = 64;         // [width] ExtraDeepUNet's first level (methods.md §7.3)
  int64_t depth = 5;          // [depth] ExtraDeepUNet's 5 downsamplings
  double init_std = 0.02;     // [init_std] Gaussian init σ (paper §4.1: μ = 0, σ = 0.02)
  bool sigmoid = false;       // [sigmoid] sigmoid output (radar spectra; methods.md §7.5)
  double lr = 1e-3;           // [lr] Adam (methods.md §7.5: code default 1e-3)
  bool normalize = true;      // [normalize] y ← s·y with s = ‖D_θ(z)‖/‖Aᵀy‖ (§7.4), x̂ ← x̂/s at the end
  std::string loss = "mse";   // [loss] FidelityLoss::kind: mse | norm
  double tv = 0;              // [tv] FidelityLoss::tv
  double fourier_l1 = 0;      // [fourier_l1] FidelityLoss::fourier_l1

  FidelityLoss fidelity() const { return {loss, tv, fourier_l1}; }

  template <class O>
  static std::vector<typename OptionTable<O>::Field> fields() {
    return {{"width", &O::width, "U-Net channels at the first level (ExtraDeepUNet: 64)", int_range(1, 1024)},
            {"depth", &O::depth, "U-Net downsamplings; sizes must divide by 2^depth (ExtraDeepUNet: 5)", int_range(0, 8)},
            {"init_std", &O::init_std, "std of the Gaussian weight init (paper: 0.02)", positive()},
            {"sigmoid", &O::sigmoid, "sigmoid on the network output (spectra in [0, 1])"},
            {"lr", &O::lr, "Adam learning rate", positive()},
            {"normalize", &O::normalize, "fit s*y, s = |D(z)|/|A^T y| (seed's MRI scale normalisation)"},
            {"loss", &O::loss, "data fidelity: mean squared, or |Ax - y|_2 (the seed's MRI loss)", {"mse", "norm"}},
            {"tv", &O::tv, "weight of anisotropic TV on the estimate", non_negative()},
            {"fourier_l1", &O::fourier_l1, "weight of sum |FFT(x)| (the seed's 1-D CS: 0.01)", non_negative()}};
  }
};

// One item's fit: the network (drawn from `gen`), its Adam state (kept for the whole run, as the
// reference keeps one optimiser) and the scaled measurements s·y. `probe` is the network input the
// scale is measured at ([1, in_channels, H, W]); undefined: z ~ N(0, I) drawn after the weights.
class UntrainedFit {
 public:
  UntrainedFit(const UntrainedNetOptions& o, const NetShape& shape, int64_t in_channels, const op::Operator& A,
               const torch::Tensor& y_item, torch::Generator& gen, torch::Tensor probe = {});
  // One Adam step on L(D_θ(input)) with L the fidelity loss against s·y:
  //   x* = D_θ(input);  θ ← Adam(θ, ∇_θ L(x*))
  // Returns x* (detached, the signal's shape, still at scale s); `loss` receives L(x*).
  torch::Tensor step(const torch::Tensor& input, double* loss = nullptr);
  double scale() const { return scale_; }
  int64_t forwards() const { return forwards_; }  // network forward passes (NFE)
  int64_t backwards() const { return backwards_; }
  UntrainedUNet& net() { return net_; }

 private:
  const op::Operator& A_;
  NetShape shape_;
  FidelityLoss loss_;
  UntrainedUNet net_{nullptr};
  std::unique_ptr<torch::optim::Adam> opt_;
  torch::Tensor y_;
  double scale_ = 1;
  int64_t forwards_ = 0, backwards_ = 0;
};

// The batch loop both solvers share: each item is fitted by its own UntrainedFit; the fits report
// their current estimate here (finite check, misfit, monitor) and hand in their final one.
class UntrainedBatch {
 public:
  UntrainedBatch(const SolveContext& ctx, std::string solver, NetShape shape, int64_t reports_per_item);
  // Reports fit-scale estimate x (divided by the fit's scale) of the current item; false = stop.
  bool report(const UntrainedFit& fit, const torch::Tensor& x, const torch::Tensor& y_item, const std::string& phase = "");
  void done(const UntrainedFit& fit, const torch::Tensor& x);  // the current item's final estimate
  bool stopped() const { return result_.stopped_early; }
  // The estimates (items not reached after a stop stay zero) and the cost: NFE = network forwards.
  Result finish();

 private:
  const SolveContext& ctx_;
  std::string solver_;
  NetShape shape_;
  int64_t planned_;
  CostMeter meter_;
  Result result_;
  int64_t nfe_ = 0, grads_ = 0;
  std::vector<torch::Tensor> estimates_;
};

}  // namespace tweedie::solve
