#include "tweedie/op/resize.h"

#include <cmath>

#include "tweedie/op/registry.h"
#include "tweedie/op/svd.h"

namespace tweedie::op {
namespace {

// Keys cubic convolution kernel with a = −0.5 (Keys 1981):
//   (a+2)|t|³ − (a+3)|t|² + 1           for |t| ≤ 1
//   a|t|³ − 5a|t|² + 8a|t| − 4a          for 1 < |t| < 2
double keys_cubic(double t) {
  t = std::abs(t);
  if (t <= 1) return 1.5 * t * t * t - 2.5 * t * t + 1.0;
  if (t < 2) return -0.5 * t * t * t + 2.5 * t * t - 4.0 * t + 2.0;
  return 0.0;
}

}  // namespace

torch::Tensor resize_matrix(int64_t L, int64_t k, ResizeKernel kernel) {
  int64_t l = L / k;
  auto Wm = torch::zeros({l, L}, torch::kFloat64);
  auto acc = Wm.accessor<double, 2>();
  for (int64_t j = 0; j < l; ++j) {
    if (kernel == ResizeKernel::kAverage) {
      for (int64_t i = 0; i < k; ++i) acc[j][j * k + i] = 1.0 / static_cast<double>(k);
      continue;
    }
    // Output j samples the input at c_j = k j + (k − 1)/2; the cubic is stretched by k
    // (antialiasing), w_i ∝ cubic((c_j − i)/k), normalised; indices outside [0, L) are mirrored
    // with period 2L, [0..L−1, L−1..0] (DPS resizer.py contributions()).
    double c = static_cast<double>(k * j) + 0.5 * static_cast<double>(k - 1);
    int64_t lo = static_cast<int64_t>(std::floor(c - 2.0 * k)), hi = static_cast<int64_t>(std::ceil(c + 2.0 * k));
    std::vector<std::pair<int64_t, double>> taps;
    double sum = 0;
    for (int64_t i = lo; i <= hi; ++i) {
      double w = keys_cubic((c - static_cast<double>(i)) / static_cast<double>(k)) / static_cast<double>(k);
      if (w == 0) continue;
      int64_t m = ((i % (2 * L)) + 2 * L) % (2 * L);
      taps.emplace_back(m < L ? m : 2 * L - 1 - m, w);
      sum += w;
    }
    for (auto& [i, w] : taps) acc[j][i] += w / sum;
  }
  return Wm;
}

namespace {

class Resize : public Operator {
 public:
  Resize(Shape in, ResizeOptions o) : Operator(in, {in[0], in[1] / o.factor, in[2] / o.factor}), o_(o) {
    Wh_ = resize_matrix(in_[1], o_.factor, o_.kernel).to(torch::kFloat32);
    Ww_ = resize_matrix(in_[2], o_.factor, o_.kernel).to(torch::kFloat32);
  }
  std::string name() const override { return o_.kernel == ResizeKernel::kAverage ? "sr-avg" : "sr-bicubic"; }
  std::string spec() const override { return name() + ":factor=" + std::to_string(o_.factor); }
  // y = Wh X Wwᵀ
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    if (o_.kernel == ResizeKernel::kAverage) return torch::avg_pool2d(x, o_.factor);
    return Wh_.to(x.scalar_type()).matmul(x).matmul(Ww_.to(x.scalar_type()).t());
  }
  // Aᵀy = Whᵀ Y Ww
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    if (o_.kernel == ResizeKernel::kAverage) {
      double k2 = static_cast<double>(o_.factor * o_.factor);
      return y.repeat_interleave(o_.factor, 2).repeat_interleave(o_.factor, 3) / k2;
    }
    return Wh_.to(y.scalar_type()).t().matmul(y).matmul(Ww_.to(y.scalar_type()));
  }
  std::shared_ptr<const SvdView> svd() const override {
    if (!svd_) svd_ = separable_svd(Wh_, Ww_, in_[0]);
    return svd_;
  }
  void to(const torch::Device& d) override {
    Wh_ = Wh_.to(d), Ww_ = Ww_.to(d);
    svd_.reset();
  }

 private:
  ResizeOptions o_;
  torch::Tensor Wh_, Ww_;
  mutable std::shared_ptr<const SvdView> svd_;
};

}  // namespace

std::shared_ptr<Operator> make_resize(Shape in, const ResizeOptions& o) {
  if (o.factor < 1) throw InputError("resize: factor must be at least 1");
  if (in.at(1) % o.factor || in.at(2) % o.factor)
    throw InputError("resize: image " + std::to_string(in[1]) + "x" + std::to_string(in[2]) +
                     " is not divisible by factor " + std::to_string(o.factor));
  // The two dense 1-D resize matrices, (L/k) x L doubles each.
  const double h = static_cast<double>(in[1]), w = static_cast<double>(in[2]), k = static_cast<double>(o.factor);
  require_elements(h * h / k + w * w / k, 8.0, "resize (the " + std::to_string(in[1] / o.factor) + " x " +
                                                   std::to_string(in[1]) + " resize matrices)");
  return std::make_shared<Resize>(std::move(in), o);
}

void enroll_resize(OperatorRegistry& r) {
  auto factory = [](ResizeKernel kernel) {
    return [kernel](const Params& p, const OpContext& c) {
      require_image(c, p);
      return make_resize(c.in_shape, ResizeOptions{p.integer("factor"), kernel});
    };
  };
  r.add({"sr-avg", "super-resolution: k x k block average (DDRM sr4, DDNM)",
         {{"factor", "4", "downsampling factor k"}}, factory(ResizeKernel::kAverage), {"sr-avg:factor=2", "sr-avg:factor=4"}});
  r.add({"sr-bicubic", "super-resolution: antialiased bicubic downsampling (DPS resizer)",
         {{"factor", "4", "downsampling factor k"}}, factory(ResizeKernel::kBicubic),
         {"sr-bicubic:factor=2", "sr-bicubic:factor=4"}});
}

}  // namespace tweedie::op
