#include "tweedie/op/blur.h"

#include <cmath>
#include <complex>

#include "tweedie/core/runtime.h"
#include "tweedie/op/registry.h"
#include "tweedie/op/svd.h"

namespace tweedie::op {

torch::Tensor gaussian_taps(int64_t size, double std) {
  // scipy.ndimage.gaussian_filter1d: radius r = ⌊truncate·std + 0.5⌋, w_i ∝ exp(−i²/(2 std²)).
  int64_t c = size / 2, r = std::min<int64_t>(c, static_cast<int64_t>(4.0 * std + 0.5));
  auto t = torch::zeros({size}, torch::kFloat64);
  for (int64_t i = -r; i <= r; ++i) t[c + i] = std::exp(-0.5 * static_cast<double>(i * i) / (std * std));
  return t / t.sum();
}

namespace {

double uniform(torch::Generator& gen, double lo = 0.0, double hi = 1.0) {
  return lo + (hi - lo) * torch::rand({1}, gen, torch::kFloat64).item<double>();
}
// Beta(1, b) by inversion: F(x) = 1 − (1 − x)^b.
double beta1(torch::Generator& gen, double b) { return 1.0 - std::pow(1.0 - uniform(gen), 1.0 / b); }
// Beta(a, b) for integers: the a-th smallest of a + b − 1 uniforms.
double beta_int(torch::Generator& gen, int64_t a, int64_t b) {
  auto u = std::get<0>(torch::rand({a + b - 1}, gen, torch::kFloat64).sort());
  return u[a - 1].item<double>();
}
// Triangular(lo, mode, hi) by inversion.
double triangular(torch::Generator& gen, double lo, double mode, double hi) {
  double u = uniform(gen), f = (mode - lo) / (hi - lo);
  return u < f ? lo + std::sqrt(u * (hi - lo) * (mode - lo)) : hi - std::sqrt((1 - u) * (hi - lo) * (hi - mode));
}

// Separable Gaussian smoothing of a 2-D float64 image, zero outside.
torch::Tensor smooth(const torch::Tensor& img, double std) {
  int64_t r = std::max<int64_t>(1, static_cast<int64_t>(3 * std + 0.5));
  auto t = gaussian_taps(2 * r + 1, std).to(torch::kFloat64);
  auto x = img.view({1, 1, img.size(0), img.size(1)});
  x = torch::conv2d(x, t.view({1, 1, -1, 1}), {}, 1, std::vector<int64_t>{r, 0});
  x = torch::conv2d(x, t.view({1, 1, 1, -1}), {}, 1, std::vector<int64_t>{0, r});
  return x.view_as(img);
}

}  // namespace

torch::Tensor motion_kernel(int64_t size, double intensity, uint64_t seed) {
  constexpr double kEps = 0.1;  // motionblur.py eps
  auto gen = make_generator(seed);
  const int64_t S = 2 * size;  // supersampled canvas
  const double D = std::sqrt(2.0) * static_cast<double>(S);
  // Path length and steps: L = 0.75 D (U(0,1) + U(0, I²)); steps Beta(1,30)(1 − I + ε) D, < L.
  double L = 0.75 * D * (uniform(gen) + uniform(gen, 0.0, intensity * intensity));
  std::vector<double> steps;
  double total = 0;
  while (total < L) {
    double s = beta1(gen, 30.0) * (1 - intensity + kEps) * D;
    if (s < L) steps.push_back(s), total += s;
  }
  // Angles: max A ~ U(0, Iπ), jitter J ~ Beta(2, 20), θ₀ ~ U(−A, A), then
  // |θ| ~ Tri(0, I·A, A + ε) keeping the previous sign w.p. 1 − J.
  double max_angle = uniform(gen, 0.0, intensity * M_PI), jitter = beta_int(gen, 2, 20);
  std::vector<double> angles{uniform(gen, -max_angle, max_angle)};
  while (angles.size() < steps.size()) {
    double a = triangular(gen, 0.0, intensity * max_angle, max_angle + kEps);
    double prev = angles.back() < 0 ? -1.0 : (angles.back() > 0 ? 1.0 : 0.0);
    angles.push_back(uniform(gen) < jitter ? -prev * a : prev * a);
  }
  // Path = cumsum of step·e^{iθ}, centred on its mean, rotated by U(0, π), moved to the centre.
  std::vector<std::complex<double>> path;
  std::complex<double> z = 0, mean = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    z += std::polar(steps[i], angles[i]);
    path.push_back(z);
    mean += z;
  }
  mean /= static_cast<double>(path.size());
  auto rot = std::polar(1.0, uniform(gen, 0.0, M_PI));
  std::complex<double> centre(S / 2.0, S / 2.0);
  for (auto& p : path) p = (p - mean) * rot + centre;
  // Rasterise the polyline (bilinear splats every 0.25 px, saturating at 1).
  auto canvas = torch::zeros({S, S}, torch::kFloat64);
  auto acc = canvas.accessor<double, 2>();
  auto splat = [&](double x, double y) {
    int64_t x0 = static_cast<int64_t>(std::floor(x)), y0 = static_cast<int64_t>(std::floor(y));
    double fx = x - static_cast<double>(x0), fy = y - static_cast<double>(y0);
    for (int dy = 0; dy < 2; ++dy)
      for (int dx = 0; dx < 2; ++dx) {
        int64_t xi = x0 + dx, yi = y0 + dy;
        if (xi < 0 || yi < 0 || xi >= S || yi >= S) continue;
        double w = (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
        acc[yi][xi] = std::min(1.0, acc[yi][xi] + w);
      }
  };
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    auto a = path[i], b = path[i + 1];
    int64_t n = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::abs(b - a) * 4)));
    for (int64_t k = 0; k <= n; ++k) {
      auto p = a + (b - a) * (static_cast<double>(k) / static_cast<double>(n));
      splat(p.real(), p.imag());
    }
  }
  if (path.size() == 1) splat(path[0].real(), path[0].imag());
  canvas = smooth(canvas, std::max(1.0, std::floor(0.01 * D)));
  auto k = torch::avg_pool2d(canvas.view({1, 1, S, S}), 2).view({size, size});
  double sum = k.sum().item<double>();
  if (!(sum > 0)) {  // a path that left the canvas: fall back to the identity kernel
    k.zero_();
    k[size / 2][size / 2] = 1.0;
    sum = 1.0;
  }
  return (k / sum).to(torch::kFloat32);
}

namespace {

// Wraps kernel taps onto the periodic H×W grid so that circular convolution with the result is
// cross-correlation with k: tap a (offset d = a − c) lands at (−d) mod H.
torch::Tensor wrap_kernel(const torch::Tensor& k, int64_t H, int64_t W) {
  auto out = torch::zeros({H, W}, torch::kFloat64);
  auto kd = k.to(torch::kFloat64).contiguous();
  auto ka = kd.accessor<double, 2>();
  auto oa = out.accessor<double, 2>();
  int64_t ch = k.size(0) / 2, cw = k.size(1) / 2;
  for (int64_t a = 0; a < k.size(0); ++a)
    for (int64_t b = 0; b < k.size(1); ++b) {
      if (ka[a][b] == 0) continue;
      oa[(((ch - a) % H) + H) % H][(((cw - b) % W) + W) % W] += ka[a][b];
    }
  return out;
}

// The 1-D blur matrix [L, L] of taps t (centre c): y_i = Σ_d t[c + d] x_{i+d}, with i + d taken
// mod L (circular) or dropped outside [0, L) (zero).
torch::Tensor blur_matrix(const torch::Tensor& taps, int64_t L, Boundary boundary) {
  auto M = torch::zeros({L, L}, torch::kFloat64);
  auto ma = M.accessor<double, 2>();
  auto t = taps.to(torch::kFloat64).contiguous();
  auto ta = t.accessor<double, 1>();
  int64_t c = t.size(0) / 2;
  for (int64_t i = 0; i < L; ++i)
    for (int64_t a = 0; a < t.size(0); ++a) {
      if (ta[a] == 0) continue;
      int64_t j = i + a - c;
      if (boundary == Boundary::kCircular) ma[i][((j % L) + L) % L] += ta[a];
      else if (j >= 0 && j < L) ma[i][j] += ta[a];
    }
  return M;
}

class Blur : public Operator {
 public:
  Blur(Shape in, const torch::Tensor& kernel, Boundary boundary, std::string spec, std::optional<torch::Tensor> taps)
      : Operator(in, in), boundary_(boundary), spec_(std::move(spec)), taps_(std::move(taps)) {
    kernel_ = kernel.to(torch::kFloat32).contiguous();
    if (boundary_ == Boundary::kCircular)
      khat_ = torch::fft::rfft2(wrap_kernel(kernel_, in_[1], in_[2])).to(torch::kComplexFloat);
  }
  std::string name() const override { return spec_.substr(0, spec_.find(':')); }
  std::string spec() const override { return spec_; }
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    return filter(x, false);
  }
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    return filter(y, true);
  }
  std::shared_ptr<const SvdView> svd() const override {
    if (!taps_) return nullptr;
    if (!svd_) {
      auto Wh = blur_matrix(*taps_, in_[1], boundary_).to(torch::kFloat32);
      auto Ww = blur_matrix(*taps_, in_[2], boundary_).to(torch::kFloat32);
      svd_ = separable_svd(Wh, Ww, in_[0]);
    }
    return svd_;
  }
  void to(const torch::Device& d) override {
    kernel_ = kernel_.to(d);
    if (khat_.defined()) khat_ = khat_.to(d);
    svd_.reset();
  }

 private:
  torch::Tensor filter(const torch::Tensor& x, bool adjoint) const {
    int64_t B = x.size(0), C = in_[0], H = in_[1], W = in_[2];
    if (boundary_ == Boundary::kCircular) {
      // y = F⁻¹(F x · k̂); Aᵀ: F⁻¹(F y · conj k̂)
      auto khat = adjoint ? torch::conj(khat_) : khat_;
      auto X = torch::fft::rfft2(x);
      return torch::fft::irfft2(X * khat.to(X.scalar_type()), torch::IntArrayRef{H, W}).to(x.scalar_type());
    }
    auto k = kernel_.to(x.scalar_type()).view({1, 1, kernel_.size(0), kernel_.size(1)});
    auto xs = x.reshape({B * C, 1, H, W});
    std::vector<int64_t> pad{kernel_.size(0) / 2, kernel_.size(1) / 2};
    auto y = adjoint ? torch::conv_transpose2d(xs, k, {}, 1, pad) : torch::conv2d(xs, k, {}, 1, pad);
    return y.view({B, C, H, W});
  }

  Boundary boundary_;
  std::string spec_;
  std::optional<torch::Tensor> taps_;
  torch::Tensor kernel_, khat_;
  mutable std::shared_ptr<const SvdView> svd_;
};

const char* boundary_name(Boundary b) { return b == Boundary::kCircular ? "circular" : "zero"; }

Boundary parse_boundary(const Params& p) {
  return p.choice("boundary", {"circular", "zero"}) == "circular" ? Boundary::kCircular : Boundary::kZero;
}

// Kernel sides up to 1025: the motion kernel is drawn on a (2·size)² float64 canvas (34 MB at
// 1025), and a larger size overflowed that arithmetic (a fuzz finding:
// fuzz/regressions/problem/motion-blur-size-overflow.json). DPS's kernels are 61.
constexpr int64_t kMaxKernelSize = 1025;
void require_odd_size(int64_t size, const char* who) {
  if (size < 1 || size % 2 == 0 || size > kMaxKernelSize)
    throw InputError(std::string(who) + ": size must be odd, from 1 to " + std::to_string(kMaxKernelSize) + ", got " +
                     std::to_string(size));
}

}  // namespace

std::shared_ptr<Operator> make_blur(Shape in, const torch::Tensor& kernel, Boundary boundary, std::string spec,
                                    std::optional<torch::Tensor> taps) {
  if (kernel.dim() != 2 || kernel.size(0) % 2 == 0 || kernel.size(1) % 2 == 0)
    throw InputError("blur: kernel must be 2-D with odd sides");
  return std::make_shared<Blur>(std::move(in), kernel, boundary, std::move(spec), std::move(taps));
}

std::shared_ptr<Operator> make_gaussian_blur(Shape in, const GaussianBlurOptions& o) {
  require_odd_size(o.size, "gaussian-blur");
  if (!(o.std > 0)) throw InputError("gaussian-blur: std must be positive");
  auto taps = gaussian_taps(o.size, o.std);
  std::string spec = "gaussian-blur:size=" + std::to_string(o.size) + ",std=" + format_number(o.std) +
                     ",boundary=" + boundary_name(o.boundary);
  return make_blur(std::move(in), torch::outer(taps, taps), o.boundary, spec, taps);
}

std::shared_ptr<Operator> make_motion_blur(Shape in, const MotionBlurOptions& o) {
  require_odd_size(o.size, "motion-blur");
  if (!(o.intensity >= 0 && o.intensity <= 1)) throw InputError("motion-blur: intensity must be in [0, 1]");
  std::string spec = "motion-blur:size=" + std::to_string(o.size) + ",intensity=" + format_number(o.intensity) +
                     ",boundary=" + boundary_name(o.boundary) + ",seed=" + std::to_string(o.seed);
  return make_blur(std::move(in), motion_kernel(o.size, o.intensity, o.seed), o.boundary, spec);
}

void enroll_blur(OperatorRegistry& r) {
  r.add({"gaussian-blur", "Gaussian deblurring kernel (DPS: 61 x 61, std 3), circular or zero boundary",
         {{"size", "61", "kernel side (odd)"},
          {"std", "3.0", "standard deviation in pixels"},
          {"boundary", "circular", "circular (FFT) | zero"}},
         [](const Params& p, const OpContext& c) {
           require_image(c, p);
           return make_gaussian_blur(c.in_shape, GaussianBlurOptions{p.integer("size"), p.real("std"), parse_boundary(p)});
         },
         {"gaussian-blur:size=7,std=1.5", "gaussian-blur:size=9,std=2,boundary=zero"}});
  r.add({"motion-blur", "motion deblurring with a seeded random trajectory kernel (DPS: 61 x 61, intensity 0.5)",
         {{"size", "61", "kernel side (odd)"},
          {"intensity", "0.5", "shake intensity in [0, 1]"},
          {"boundary", "circular", "circular (FFT) | zero"},
          {"seed", kUnset, "seed of the trajectory (default: --seed)"}},
         [](const Params& p, const OpContext& c) {
           require_image(c, p);
           return make_motion_blur(c.in_shape,
                                   MotionBlurOptions{p.integer("size"), p.real("intensity"), parse_boundary(p), seed_of(p, c)});
         },
         {"motion-blur:size=9", "motion-blur:size=7,boundary=zero,seed=3"}});
}

}  // namespace tweedie::op
