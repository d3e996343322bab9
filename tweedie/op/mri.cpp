#include "tweedie/op/mri.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/op/registry.h"

namespace tweedie::op {

torch::Tensor fft2c(const torch::Tensor& x) {
  std::vector<int64_t> d{-2, -1};
  return torch::fft::fftshift(torch::fft::fft2(torch::fft::ifftshift(x, d), c10::nullopt, d, "ortho"), d);
}

torch::Tensor ifft2c(const torch::Tensor& k) {
  std::vector<int64_t> d{-2, -1};
  return torch::fft::fftshift(torch::fft::ifft2(torch::fft::ifftshift(k, d), c10::nullopt, d, "ortho"), d);
}

double center_fraction(const MriOptions& o) {
  return o.center_fraction ? *o.center_fraction : 0.32 / static_cast<double>(o.acceleration);
}

torch::Tensor mri_columns(int64_t W, const MriOptions& o) {
  double cf = center_fraction(o);
  int64_t R = o.acceleration;
  auto gen = make_generator(o.seed);
  int64_t num_low = static_cast<int64_t>(std::nearbyint(static_cast<double>(W) * cf));
  auto mask = torch::zeros({W}, torch::kBool);
  if (o.equispaced && num_low * R < W) {  // otherwise the centre alone exceeds W/R lines
    double a = static_cast<double>(R * (num_low - W)) / static_cast<double>(num_low * R - W);
    int64_t hi = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(a)));
    double offset = static_cast<double>(torch::randint(0, hi, {1}, gen, torch::kLong).item<int64_t>());
    for (double c = offset; c < static_cast<double>(W - 1); c += a) {
      int64_t j = static_cast<int64_t>(std::nearbyint(c));
      if (j < W) mask[j] = true;
    }
  } else if (!o.equispaced) {
    double prob = (static_cast<double>(W) / static_cast<double>(R) - static_cast<double>(num_low)) /
                  static_cast<double>(W - num_low);
    mask = torch::rand({W}, gen, torch::kFloat64) < prob;
  }
  int64_t pad = (W - num_low + 1) / 2;
  mask.slice(0, pad, pad + num_low).fill_(true);
  return torch::nonzero(mask).flatten();
}

namespace {

class Mri : public Operator {
 public:
  Mri(Shape in, MriOptions o, torch::Tensor cols)
      : Operator(in, {in[0], in[1], cols.size(0)}), o_(o), cols_(std::move(cols)) {}
  std::string name() const override { return "mri"; }
  std::string spec() const override {
    return "mri:accel=" + std::to_string(o_.acceleration) + ",center=" + format_number(center_fraction(o_)) +
           ",pattern=" + (o_.equispaced ? "equispaced" : "random") + ",seed=" + std::to_string(o_.seed);
  }
  bool complex_output() const override { return true; }
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    return fft2c(x).index_select(3, cols_);
  }
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    auto full = torch::zeros({y.size(0), in_[0], in_[1], in_[2]}, y.options()).index_copy(3, cols_, y);
    return torch::real(ifft2c(full)).contiguous();
  }
  void to(const torch::Device& d) override { cols_ = cols_.to(d); }

 private:
  MriOptions o_;
  torch::Tensor cols_;
};

}  // namespace

std::shared_ptr<Operator> make_mri(Shape in, const MriOptions& o) {
  if (o.acceleration < 1) throw InputError("mri: accel must be at least 1");
  double cf = center_fraction(o);
  if (!(cf > 0 && cf <= 1)) throw InputError("mri: center must be in (0, 1]");
  int64_t W = in.at(2);
  // R > W keeps less than one line besides the centre; it is also where mri_columns' integer
  // products R·(num_low − W) overflow (a fuzz finding: accel = 3.3e96 read as INT64_MAX).
  if (o.acceleration > W)
    throw InputError("mri: accel " + std::to_string(o.acceleration) + " exceeds the image width " +
                     std::to_string(W) + " (at most one line in R is kept)");
  if (static_cast<int64_t>(std::nearbyint(static_cast<double>(W) * cf)) >= W && o.acceleration > 1)
    throw InputError("mri: the centre fraction covers all " + std::to_string(W) + " columns");
  return std::make_shared<Mri>(std::move(in), o, mri_columns(W, o));
}

void enroll_mri(OperatorRegistry& r) {
  r.add({"mri", "single-coil MRI: centred 2-D FFT, Cartesian line mask (fastMRI), complex k-space lines",
         {{"accel", "4", "acceleration R (4 or 8 in fastMRI)"},
          {"center", kUnset, "fully sampled centre fraction (default 0.32/R: 0.08 at 4x, 0.04 at 8x)"},
          {"pattern", "random", "random | equispaced"},
          {"seed", kUnset, "seed of the mask (default: --seed)"}},
         [](const Params& p, const OpContext& c) {
           require_image(c, p);
           MriOptions o;
           o.acceleration = p.integer("accel");
           if (p.has("center")) o.center_fraction = p.real("center");
           o.equispaced = p.choice("pattern", {"random", "equispaced"}) == "equispaced";
           o.seed = seed_of(p, c);
           return make_mri(c.in_shape, o);
         },
         {"mri:accel=4", "mri:accel=8,pattern=equispaced,center=0.2"}});
}

}  // namespace tweedie::op
