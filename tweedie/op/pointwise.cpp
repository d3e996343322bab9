#include "tweedie/op/pointwise.h"

#include "tweedie/core/registry.h"
#include "tweedie/op/registry.h"
#include "tweedie/op/svd.h"

namespace tweedie::op {
namespace {

// y = c x. The identity is c = 1 (spec "identity"). SVD: U = sign(c) I, s = |c|, V = I.
class Scale : public Operator {
 public:
  Scale(Shape in, double c, bool identity) : Operator(in, in), c_(c), identity_(identity) {}
  std::string name() const override { return identity_ ? "identity" : "scale"; }
  std::string spec() const override { return identity_ ? "identity" : "scale:c=" + format_number(c_); }
  torch::Tensor apply(const torch::Tensor& x) const override { return identity_ ? x : x * c_; }
  torch::Tensor adjoint(const torch::Tensor& y) const override { return identity_ ? y : y * c_; }
  std::shared_ptr<const SvdView> svd() const override {
    double c = c_;
    auto self = [c](const torch::Tensor& t) { return c < 0 ? -t : t; };
    auto all = torch::arange(numel(in_), torch::kLong);
    return selection_svd(self, self, all, std::abs(c_), in_, in_);
  }

 private:
  double c_;
  bool identity_;
};

// y = clip(α x, -1, 1) (high dynamic range reconstruction, DAPS). Nonlinear; the VJP comes
// from autograd and is zero where the clip is active.
class Hdr : public Operator {
 public:
  Hdr(Shape in, HdrOptions o) : Operator(in, in), o_(o) {}
  std::string name() const override { return "hdr"; }
  std::string spec() const override { return "hdr:alpha=" + format_number(o_.alpha); }
  bool linear() const override { return false; }
  torch::Tensor apply(const torch::Tensor& x) const override { return torch::clamp(x * o_.alpha, -1.0, 1.0); }

 private:
  HdrOptions o_;
};

}  // namespace

std::shared_ptr<Operator> make_identity(Shape in) { return std::make_shared<Scale>(std::move(in), 1.0, true); }
std::shared_ptr<Operator> make_scale(Shape in, double c) { return std::make_shared<Scale>(std::move(in), c, false); }
std::shared_ptr<Operator> make_hdr(Shape in, const HdrOptions& o) { return std::make_shared<Hdr>(std::move(in), o); }

void enroll_pointwise(OperatorRegistry& r) {
  r.add({"identity", "y = x (denoising)", {}, [](const Params&, const OpContext& c) { return make_identity(c.in_shape); },
         {"identity"}});
  r.add({"scale", "y = c x (compose with '|' to scale another operator)",
         {{"c", kRequired, "the factor"}},
         [](const Params& p, const OpContext& c) { return make_scale(c.in_shape, p.real("c")); },
         {"scale:c=-2.5"}});
  r.add({"hdr", "y = clip(alpha x, -1, 1), high dynamic range (nonlinear)",
         {{"alpha", "2", "gain before clipping (DAPS: 2)"}},
         [](const Params& p, const OpContext& c) { return make_hdr(c.in_shape, HdrOptions{p.real("alpha")}); },
         {"hdr", "hdr:alpha=1.5"}});
}

}  // namespace tweedie::op
