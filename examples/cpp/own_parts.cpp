// A tweedie plugin (docs/extending.md): your own operators, channel and solver, compiled apart from
// tweedie and then named by the CLI, experiment configs and Python as the built-in parts are:
//
//   TWEEDIE_PLUGINS=build-example/libtweedie_own_parts.so tweedie solve --input fashion-mnist:test:0-3 \
//       --op box2s --channel laplace:b=0.05 --method ddrm -o out
//   tweedie.load_plugin("build-example/libtweedie_own_parts.so")            # Python
//
// It enrols
//   box2s           a linear operator with its adjoint and SVD view: the 2x2 block average, so
//                   DDRM and DDNM run on it (examples/cpp/own_operator.cpp has the same map without
//                   an SVD, and DDRM refuses it);
//   absgauss:m=256  a nonlinear one, |G x| with a seeded Gaussian G (phase retrieval): its Jacobians
//                   come from autograd, so DPS, DAPS, RED-diff, DPnP and the MO methods run on it;
//   laplace:b=0.05  a channel, y = z + Laplace(b) noise;
//   landweber       a solver without a prior: x ← x − τ/‖A‖² · Aᵀ(A x − y), its options declared once;
//   meangauss:m=0.1 a prior by name, x0 ~ N(m, v I) with its exact ε: `--prior meangauss:m=0.1`,
//                   a config's "prior", or Python's load_prior take it where they take a file.
// Built from an installed tweedie (find_package) and run by tests/install/test_install.py.
#include <tweedie/channel/channel.h>
#include <tweedie/core/error.h>
#include <tweedie/core/options.h>
#include <tweedie/core/runtime.h>
#include <tweedie/diffusion/gaussian_prior.h>
#include <tweedie/diffusion/prior.h>
#include <tweedie/op/registry.h>
#include <tweedie/op/resize.h>
#include <tweedie/op/svd.h>
#include <tweedie/solve/solver.h>

#include <cmath>
#include <memory>

namespace {

using namespace tweedie;

// A: [B, C, H, W] -> [B, C, H/2, W/2], the mean of each 2x2 block; Aᵀ spreads each value over its
// block, divided by 4. The SVD view is the library's separable one, A X = Wh X Wwᵀ per channel.
class Box2Svd : public op::Operator {
 public:
  explicit Box2Svd(const op::Shape& in)
      : Operator(in, {in.at(0), in.at(1) / 2, in.at(2) / 2}),
        svd_(op::separable_svd(op::resize_matrix(in[1], 2, op::ResizeKernel::kAverage).to(torch::kFloat32),
                               op::resize_matrix(in[2], 2, op::ResizeKernel::kAverage).to(torch::kFloat32), in[0])) {}
  std::string name() const override { return "box2s"; }
  std::string spec() const override { return "box2s"; }
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    return torch::avg_pool2d(x, 2);
  }
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    return y.repeat_interleave(2, 2).repeat_interleave(2, 3) / 4.0;
  }
  std::shared_ptr<const op::SvdView> svd() const override { return svd_; }

 private:
  std::shared_ptr<const op::SvdView> svd_;  // float32, on the CPU (a CUDA run would rebuild it in to())
};

// A(x) = |G x|, G [m, N] with N(0, 1/m) entries drawn from the operator's seed: nonlinear, so only
// apply() is given and every vector-Jacobian product comes from autograd.
class AbsGaussian : public op::Operator {
 public:
  AbsGaussian(const op::Shape& in, int64_t m, uint64_t seed) : Operator(in, {m}), seed_(seed) {
    torch::Generator gen = make_generator(seed);
    G_ = torch::randn({m, op::numel(in)}, gen, torch::kFloat64).div(std::sqrt(double(m))).to(torch::kFloat32);
  }
  std::string name() const override { return "absgauss"; }
  std::string spec() const override {
    return "absgauss:m=" + std::to_string(out_[0]) + ",seed=" + std::to_string(seed_);
  }
  bool linear() const override { return false; }
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    return torch::abs(x.flatten(1).matmul(G_.to(x.device(), x.scalar_type()).t()));
  }
  void to(const torch::Device& d) override { G_ = G_.to(d); }

 private:
  uint64_t seed_;
  torch::Tensor G_;
};

// y = z + n, n ~ Laplace(0, b): −log p(y | z) = |y − z|/b + log 2b per entry (floor log 2b at
// y = z). Noise drawn by inversion from the generator's uniforms, on the CPU, so a seed fixes y.
class Laplace : public channel::Channel {
 public:
  explicit Laplace(double b) : b_(b) {}
  std::string name() const override { return "laplace"; }
  std::string spec() const override { return "laplace:b=" + format_number(b_); }
  torch::Tensor simulate(const torch::Tensor& z, torch::Generator& gen) const override {
    auto u = channel::uniform_like(z, gen) - 0.5;  // U(−½, ½)
    return z.detach() - b_ * torch::sign(u) * torch::log1p(-2 * torch::abs(u));
  }
  torch::Tensor nll_elements(const torch::Tensor& z, const torch::Tensor& y) const override {
    return torch::abs(y - z) / b_ + std::log(2 * b_);
  }
  torch::Tensor nll_floor(const torch::Tensor& y) const override { return torch::full_like(y, std::log(2 * b_)); }
  double scale() const override { return b_; }
  // DDRM and DDNM read the channel as Gaussian noise of this σ: the Laplace law's standard deviation.
  double noise_std() const override { return b_ * std::sqrt(2.0); }

 private:
  double b_;
};

// Landweber iteration (gradient descent on ½‖A x − y‖²) for a linear A, from x = 0, with step τ/L,
// L = ‖A‖² estimated by power iteration. No prior: the baseline every prior must beat.
struct LandweberOptions {
  int64_t steps = 100;
  double tau = 1.0;
  // the card (name, help, the examples the solver tests run, no prior) and the fields
  static const solve::SolverTable<LandweberOptions>& table() {
    using O = LandweberOptions;
    static const solve::SolverTable<O> t(
        {"landweber", {"landweber:steps=20"},
         "Landweber iteration on ½‖A x − y‖², no prior (examples/cpp/own_parts.cpp)", /*uses_prior=*/false},
        {{"steps", &O::steps, "gradient steps", at_least(1)},
         {"tau", &O::tau, "step τ/‖A‖² (stable below 2)", in_range(1e-6, 1.99)}});
    return t;
  }
};

solve::Result landweber(const solve::SolveContext& ctx, const LandweberOptions& o) {
  const op::Operator& A = *ctx.problem.op;
  if (!A.linear()) throw InputError("landweber: needs a linear operator, got " + A.name());
  solve::CostMeter meter(ctx.prior);  // counts time and memory (no network here)
  torch::NoGradGuard no_grad;
  // ‖A‖² = the top eigenvalue of AᵀA, by 30 power iterations from a seeded start
  auto v = torch::randn(op::with_batch(1, A.in_shape()), ctx.gen).to(ctx.y.device(), ctx.y.scalar_type());
  double L = 1;
  for (int i = 0; i < 30; ++i) {
    auto w = A.normal(v);
    L = w.norm().item<double>() / v.norm().item<double>();
    v = w / w.norm();
  }
  solve::Result r;
  auto x = torch::zeros(op::with_batch(ctx.y.size(0), A.in_shape()), ctx.y.options());
  for (int64_t k = 1; k <= o.steps; ++k) {
    x = x - (o.tau / L) * A.adjoint(A.apply(x) - ctx.y);  // x ← x − τ/L · Aᵀ(A x − y)
    if (!solve::step_done(ctx, meter, r, k, o.steps, "", x, A)) break;  // counts, reports, may stop
  }
  r.estimate = x;
  r.cost = meter.finish(0, r.steps);
  return r;
}

}  // namespace

// The entry point tweedie looks up (core/plugin.h). It runs once per process.
extern "C" void tweedie_plugin_register() {
  using namespace tweedie;
  op::operator_registry().add({"box2s", "2x2 block average with an SVD view (examples/cpp/own_parts.cpp)", {},
                               [](const Params&, const op::OpContext& c) -> std::shared_ptr<op::Operator> {
                                 if (c.in_shape.size() != 3 || c.in_shape[1] % 2 || c.in_shape[2] % 2)
                                   throw InputError("box2s: needs images [C, H, W] with even H and W");
                                 return std::make_shared<Box2Svd>(c.in_shape);
                               },
                               {"box2s"}});
  op::operator_registry().add({"absgauss", "|G x| with a seeded Gaussian G (examples/cpp/own_parts.cpp)",
                               {{"m", "256", "measurements"}, {"seed", kUnset, "seed of G (default: the problem's)"}},
                               [](const Params& p, const op::OpContext& c) -> std::shared_ptr<op::Operator> {
                                 const int64_t m = p.integer("m");
                                 if (m < 1) throw InputError("absgauss: m must be at least 1");
                                 op::require_elements(double(m) * op::element_count(c.in_shape), 4, "absgauss (G)");
                                 return std::make_shared<AbsGaussian>(c.in_shape, m, p.has("seed") ? p.seed("seed") : c.seed);
                               },
                               {"absgauss:m=64"}});
  channel::channel_registry().add({"laplace", "y = z + Laplace(b) noise (examples/cpp/own_parts.cpp)",
                                   {{"b", "0.05", "scale b of the Laplace noise"}},
                                   [](const Params& p, uint64_t) -> std::shared_ptr<channel::Channel> {
                                     const double b = p.real("b");
                                     if (!(b > 0) || !std::isfinite(b)) throw InputError("laplace: b must be positive");
                                     return std::make_shared<Laplace>(b);
                                   },
                                   {"laplace:b=0.05"}});
  diffusion::prior_registry().add(
      {"meangauss", "x0 ~ N(m, v I), exact ε (examples/cpp/own_parts.cpp)",
       {{"m", "0", "mean of each pixel"}, {"v", "0.25", "variance of each pixel"}},
       [](const Params& p, torch::Device) {
         const double m = p.real("m"), v = p.real("v");
         if (!(v > 0)) throw InputError("meangauss: v must be positive");
         diffusion::Prior prior;
         prior.shape = {1, 32, 32};
         prior.base = diffusion::make_schedule("linear", 1000);
         prior.denoiser = std::make_shared<diffusion::EpsDenoiser>(
             diffusion::gaussian_eps_model(prior.base, torch::full({1, 32, 32}, m), torch::full({1, 32, 32}, v)),
             prior.base);
         prior.about = {{"m", m}, {"v", v}};
         return prior;
       },
       {"meangauss:m=0.1"}});
  // the options table gives the registry entry, the parameters, their parsing and the report
  solve::enroll(solve::solver_registry(), landweber);
}
