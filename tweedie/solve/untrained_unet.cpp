#include "tweedie/solve/untrained_unet.h"

#include <algorithm>
#include <cmath>

#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"

namespace tweedie::solve {

namespace F = torch::nn::functional;

nlohmann::json UntrainedUNetConfig::to_json() const {
  return {{"in_channels", in_channels}, {"out_channels", out_channels}, {"width", width}, {"depth", depth},
          {"one_d", one_d},             {"sigmoid", sigmoid},           {"init_std", init_std}};
}

namespace {

// [conv k, BN, ReLU]: k = 3×3, or 1×3 for 1-D signals.
void conv_bn_relu(torch::nn::Sequential& s, int64_t in, int64_t out, bool one_d) {
  const int64_t kh = one_d ? 1 : 3, ph = one_d ? 0 : 1;
  s->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, {kh, 3}).padding({ph, 1})));
  s->push_back(torch::nn::BatchNorm2d(out));
  s->push_back(torch::nn::ReLU(true));
}

torch::nn::Sequential double_conv(int64_t in, int64_t out, bool one_d) {
  torch::nn::Sequential s;
  conv_bn_relu(s, in, out, one_d);
  conv_bn_relu(s, out, out, one_d);
  return s;
}

}  // namespace

UntrainedUNetImpl::UntrainedUNetImpl(const UntrainedUNetConfig& c, torch::Generator& gen) : config_(c) {
  require(c.width >= 1 && c.depth >= 0 && c.in_channels >= 1 && c.out_channels >= 1,
          "untrained U-Net: width, channels >= 1 and depth >= 0 required");
  auto ch = [&](int64_t i) { return std::min(c.width << i, 16 * c.width); };  // c_i
  inc_ = register_module("inc", double_conv(c.in_channels, c.width, c.one_d));
  down_ = register_module("down", torch::nn::ModuleList());
  for (int64_t i = 1; i <= c.depth; ++i) down_->push_back(double_conv(ch(i - 1), ch(i), c.one_d));
  bottom_ = register_module("bottom", torch::nn::Sequential());
  conv_bn_relu(bottom_, ch(c.depth), ch(c.depth), c.one_d);
  conv_bn_relu(bottom_, ch(c.depth), ch(c.depth), c.one_d);
  up_ = register_module("up", torch::nn::ModuleList());
  int64_t coming = ch(c.depth);
  for (int64_t j = c.depth - 1; j >= 0; --j) {
    const int64_t out = ch(std::max<int64_t>(j - 1, 0));  // ExtraDeepUNet: (2048→512) … (128→64)
    up_->push_back(double_conv(coming + ch(j), out, c.one_d));
    coming = out;
  }
  out_ = register_module("out", torch::nn::Conv2d(torch::nn::Conv2dOptions(coming, c.out_channels, 1)));

  // init_weights_unet2d: conv N(0, σ²), bias 0; BN weight N(1, σ²), bias 0 — from `gen`
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2d>()) {
      conv->weight.copy_(randn(conv->weight.sizes(), gen) * c.init_std);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
      bn->weight.copy_(1.0 + randn(bn->weight.sizes(), gen) * c.init_std);
      bn->bias.zero_();
    }
  }
}

torch::Tensor UntrainedUNetImpl::forward(const torch::Tensor& x) {
  const std::vector<int64_t> pool = config_.one_d ? std::vector<int64_t>{1, 2} : std::vector<int64_t>{2, 2};
  std::vector<torch::Tensor> skips{inc_->forward(x)};
  for (size_t i = 0; i < down_->size(); ++i)
    skips.push_back(down_[i]->as<torch::nn::Sequential>()->forward(F::max_pool2d(skips.back(), F::MaxPool2dFuncOptions(pool))));
  torch::Tensor h = bottom_->forward(skips.back());
  for (size_t k = 0; k < up_->size(); ++k) {
    const torch::Tensor& skip = skips[skips.size() - 2 - k];
    // bilinear ×2 (align_corners = True) to the skip's size, then [up, skip] → DoubleConv
    h = F::interpolate(h, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{skip.size(2), skip.size(3)})
                              .mode(torch::kBilinear)
                              .align_corners(true));
    h = up_[k]->as<torch::nn::Sequential>()->forward(torch::cat({h, skip}, 1));
  }
  h = out_->forward(h);
  return config_.sigmoid ? torch::sigmoid(h) : h;
}

int64_t UntrainedUNetImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

// ---- shapes ---------------------------------------------------------------------------------------

torch::Tensor NetShape::to_net(const torch::Tensor& x) const {
  return x.reshape({x.size(0), channels, height, width});
}

torch::Tensor NetShape::from_net(const torch::Tensor& z) const { return z.reshape(op::with_batch(z.size(0), signal)); }

NetShape net_shape(const op::Shape& signal, int64_t depth, const std::string& solver) {
  NetShape s;
  s.signal = signal;
  if (signal.size() == 1) {
    s.one_d = true, s.width = signal[0];
  } else if (signal.size() == 2) {
    s.one_d = true, s.channels = signal[0], s.width = signal[1];
  } else if (signal.size() == 3) {
    s.channels = signal[0], s.height = signal[1], s.width = signal[2];
  } else {
    throw InputError(solver + ": signals must be [L], [C, L] or [C, H, W]; got " + op::shape_text(signal));
  }
  const int64_t f = int64_t{1} << depth;
  auto bad = [&](int64_t n) { return n % f != 0; };
  if (bad(s.width) || (!s.one_d && bad(s.height)))
    throw InputError(solver + ": the U-Net with depth=" + std::to_string(depth) + " takes sizes divisible by " +
                     std::to_string(f) + ", got " + op::shape_text(signal) +
                     " (crop or resize to a multiple, or lower depth)");
  if ((s.height / (s.one_d ? 1 : f)) * (s.width / f) < 2)
    throw InputError(solver + ": " + op::shape_text(signal) + " is too small for depth=" + std::to_string(depth) +
                     " (batch norm needs at least 2 values at the coarsest level; lower depth)");
  return s;
}

// ---- loss and scale -------------------------------------------------------------------------------

namespace {
torch::Tensor as_real(const torch::Tensor& t) { return t.is_complex() ? torch::view_as_real(t) : t; }
}  // namespace

torch::Tensor FidelityLoss::operator()(const op::Operator& A, const torch::Tensor& x, const torch::Tensor& y) const {
  auto r = as_real(A.apply(x) - y);
  // mse: mean((A x − y)²);  norm: ‖A x − y‖₂
  torch::Tensor loss = kind == "norm" ? r.pow(2).sum().sqrt() : r.pow(2).mean();
  if (tv > 0 && x.dim() >= 2) {
    // TV(x) = Σ|x_{i+1} − x_i| along each spatial axis (the last one, and the one before for images)
    loss = loss + tv * (x.diff(1, -1).abs().sum() + (x.dim() >= 4 ? x.diff(1, -2).abs().sum() : torch::zeros({})));
  }
  if (fourier_l1 > 0) loss = loss + fourier_l1 * torch::fft::fft(x.flatten(1), c10::nullopt, -1).abs().sum();
  return loss;
}

double scale_to_network(UntrainedUNet& net, const torch::Tensor& z, const op::Operator& A, const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  const double out = net->forward(z).norm().item<double>();
  const double aty = A.adjoint(y).norm().item<double>();
  require(aty > 0 && std::isfinite(aty), "the measurements are zero (Aᵀy = 0): nothing to normalise against");
  return out / aty;  // s = ‖D_θ(z)‖ / ‖Aᵀy‖
}

void check_untrained_inputs(const op::Operator& A, const torch::Tensor& y, const std::string& solver) {
  if (y.is_complex() && !A.complex_output())
    throw InputError(solver + ": the measurements are complex but the operator " + A.name() +
                     " gives real values (did you mean an MRI problem?)");
  if (!y.is_complex() && A.complex_output())
    throw InputError(solver + ": the operator " + A.name() + " gives complex values but the measurements are real");
  A.check_output(y);
  if (!torch::isfinite(y.is_complex() ? torch::view_as_real(y) : y).all().item<bool>())
    throw InputError(solver + ": the measurements are not finite (NaN or Inf)");
}

// ---- the per-item fit ------------------------------------------------------------------------------

UntrainedFit::UntrainedFit(const UntrainedNetOptions& o, const NetShape& shape, int64_t in_channels,
                           const op::Operator& A, const torch::Tensor& y_item, torch::Generator& gen,
                           torch::Tensor probe)
    : A_(A), shape_(shape), loss_(o.fidelity()) {
  UntrainedUNetConfig c;
  c.in_channels = in_channels;
  c.out_channels = shape.channels;
  c.width = o.width;
  c.depth = o.depth;
  c.one_d = shape.one_d;
  c.sigmoid = o.sigmoid;
  c.init_std = o.init_std;
  net_ = UntrainedUNet(c, gen);
  net_->to(y_item.device());
  net_->train();  // BN in training mode throughout, as the reference
  if (o.normalize) {
    require(A.linear(), "normalize=true needs a linear operator (Aᵀy); set normalize=false for " + A.name());
    if (!probe.defined()) probe = randn({1, in_channels, shape.height, shape.width}, gen, y_item.device());
    scale_ = scale_to_network(net_, probe, A, y_item);
    ++forwards_;
  }
  y_ = y_item * scale_;
  opt_ = std::make_unique<torch::optim::Adam>(net_->parameters(), torch::optim::AdamOptions(o.lr));
}

torch::Tensor UntrainedFit::step(const torch::Tensor& input, double* loss) {
  opt_->zero_grad();
  torch::Tensor x, l;
  {
    ActivityScope network(Activity::kNetwork);
    x = shape_.from_net(net_->forward(input));  // x* = D_θ(input)
  }
  {
    ActivityScope likelihood(Activity::kLikelihood);
    l = loss_(A_, x, y_);  // L(x*) against s·y
  }
  {
    ActivityScope backward(Activity::kNetworkGrad);  // through the loss, A and the network
    l.backward();
  }
  opt_->step();                                              // θ ← Adam(θ, ∇_θ L)
  ++forwards_, ++backwards_;
  if (loss) *loss = l.item<double>();
  return x.detach();
}

UntrainedBatch::UntrainedBatch(const SolveContext& ctx, std::string solver, NetShape shape, int64_t reports_per_item)
    : ctx_(ctx),
      solver_(std::move(solver)),
      shape_(std::move(shape)),
      planned_(ctx.y.size(0) * reports_per_item),
      meter_(no_prior()) {}

bool UntrainedBatch::report(const UntrainedFit& fit, const torch::Tensor& x, const torch::Tensor& y_item,
                            const std::string& phase) {
  const int64_t step = ++result_.steps;
  require_finite(x, solver_, step);
  const torch::Tensor shown = x / fit.scale();  // undo y ← s·y
  if (!ctx_.report({step, planned_, nfe_ + fit.forwards(), phase, shown, relative_misfit(*ctx_.problem.op, shown, y_item)}))
    result_.stopped_early = true;
  return !result_.stopped_early;
}

void UntrainedBatch::done(const UntrainedFit& fit, const torch::Tensor& x) {
  estimates_.push_back(x / fit.scale());
  nfe_ += fit.forwards(), grads_ += fit.backwards();
}

Result UntrainedBatch::finish() {
  const int64_t B = ctx_.y.size(0);
  torch::Tensor est = torch::cat(estimates_);
  if (est.size(0) < B) est = torch::cat({est, torch::zeros(op::with_batch(B - est.size(0), shape_.signal), est.options())});
  result_.estimate = est;
  result_.cost = meter_.finish(grads_, grads_);  // one likelihood gradient per backward
  result_.cost.nfe = nfe_;
  return result_;
}

}  // namespace tweedie::solve
