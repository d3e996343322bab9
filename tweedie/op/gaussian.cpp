#include "tweedie/op/gaussian.h"

#include "tweedie/core/memory.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "tweedie/core/seed.h"
#include "tweedie/op/registry.h"
#include "tweedie/op/svd.h"

namespace tweedie::op {

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

// The SplitMix64 output function (Stafford's Mix13): a bijective avalanche mix of 64 bits.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Row i of A: N standard normals from the counter-based stream of key k_i = mix64(seed') + i,
// seed' = splitmix64(seed). Pair p uses the 64-bit words w_c = mix64(k_i + (c + 1)γ) for
// c = 2p, 2p + 1 (SplitMix64 with state k_i), turned into uniforms u₁ = (⌊w/2¹¹⌋ + ½)/2⁵³ ∈ (0, 1)
// and u₂ = ⌊w/2¹¹⌋/2⁵³, then by Box–Muller into
//   a_{i,2p} = √(−2 log u₁) cos 2πu₂,   a_{i,2p+1} = √(−2 log u₁) sin 2πu₂      (float64),
// rounded to float32.
void fill_row(float* row, int64_t N, uint64_t key) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  constexpr double kUnit = 1.0 / 9007199254740992.0;  // 2⁻⁵³
  for (int64_t j = 0; j < N; j += 2) {
    uint64_t c = static_cast<uint64_t>(j);
    uint64_t w1 = mix64(key + (c + 1) * kGolden), w2 = mix64(key + (c + 2) * kGolden);
    double u1 = (static_cast<double>(w1 >> 11) + 0.5) * kUnit, u2 = static_cast<double>(w2 >> 11) * kUnit;
    double r = std::sqrt(-2.0 * std::log(u1)), t = kTwoPi * u2;
    row[j] = static_cast<float>(r * std::cos(t));
    if (j + 1 < N) row[j + 1] = static_cast<float>(r * std::sin(t));
  }
}

}  // namespace

torch::Tensor gaussian_rows(const GaussianOptions& o, int64_t N, int64_t r0, int64_t r1) {
  auto rows = torch::empty({r1 - r0, N}, torch::kFloat32);
  float* data = rows.data_ptr<float>();
  uint64_t base = mix64(splitmix64(o.seed));
  at::parallel_for(r0, r1, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) fill_row(data + (i - r0) * N, N, base + static_cast<uint64_t>(i));
  });
  if (!o.unit_variance) rows.mul_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(o.m))));
  return rows;
}

namespace {

// The block size is part of a matrix-free spec: A is the same for any block size, but the
// rounding of the products depends on it, and a rebuilt operator must give identical results.
std::string gaussian_spec(const GaussianOptions& o, bool dense) {
  return "gaussian:m=" + std::to_string(o.m) + ",var=" + (o.unit_variance ? "1" : "1/m") +
         ",seed=" + std::to_string(o.seed) + ",impl=" + (dense ? "dense" : "matrix-free") +
         (dense ? "" : ",block_rows=" + std::to_string(o.block_rows));
}

Shape flat_out(int64_t m) { return {m}; }

// y = x̄ Aᵀ with x̄ = x flattened [B, N]; Aᵀy = y A.
class DenseGaussian : public Operator {
 public:
  DenseGaussian(Shape in, GaussianOptions o) : Operator(in, flat_out(o.m)), o_(o) {
    A_ = gaussian_rows(o_, numel(in_), 0, o_.m);
  }
  std::string name() const override { return "gaussian"; }
  std::string spec() const override { return gaussian_spec(o_, true); }
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    return x.flatten(1).matmul(A_.to(x.scalar_type()).t());
  }
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    return y.matmul(A_.to(y.scalar_type())).reshape(with_batch(y.size(0), in_));
  }
  // Full SVD for small N only (it stores N×N).
  std::shared_ptr<const SvdView> svd() const override {
    if (numel(in_) > kMaxSvdN) return nullptr;
    if (!svd_) svd_ = dense_svd(A_, in_, out_);
    return svd_;
  }
  void to(const torch::Device& d) override {
    A_ = A_.to(d);
    svd_.reset();
  }
  const torch::Tensor& matrix() const { return A_; }

  static constexpr int64_t kMaxSvdN = 4096;

 private:
  GaussianOptions o_;
  torch::Tensor A_;
  mutable std::shared_ptr<const SvdView> svd_;
};

class MatrixFreeGaussian;

// Autograd for the matrix-free product: the backward pass is the adjoint, so no block of A is
// kept for it (autograd through the block loop would store all of A).
struct MatrixFreeFn : public torch::autograd::Function<MatrixFreeFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, int64_t op, bool adjoint);
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad);
};

class MatrixFreeGaussian : public Operator {
 public:
  MatrixFreeGaussian(Shape in, GaussianOptions o) : Operator(in, flat_out(o.m)), o_(o) {
    int64_t N = numel(in_);
    if (o_.block_rows <= 0) o_.block_rows = std::max<int64_t>(1, o_.block_bytes / (N * 8));
    rows_per_block_ = o_.block_rows;
  }
  std::string name() const override { return "gaussian"; }
  std::string spec() const override { return gaussian_spec(o_, false); }
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    return MatrixFreeFn::apply(x.flatten(1), reinterpret_cast<int64_t>(this), false);
  }
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    return MatrixFreeFn::apply(y, reinterpret_cast<int64_t>(this), true).reshape(with_batch(y.size(0), in_));
  }
  void to(const torch::Device&) override {}  // no buffers: blocks follow the input's device

  // y[:, r0:r1] = x̄ A[r0:r1]ᵀ, block by block.
  torch::Tensor forward_product(const torch::Tensor& xf) const {
    auto y = torch::empty({xf.size(0), o_.m}, xf.options());
    for (int64_t r0 = 0; r0 < o_.m; r0 += rows_per_block_) {
      int64_t r1 = std::min(o_.m, r0 + rows_per_block_);
      auto G = gaussian_rows(o_, xf.size(1), r0, r1).to(xf.device(), xf.scalar_type());
      y.slice(1, r0, r1).copy_(xf.matmul(G.t()));
    }
    return y;
  }
  // x̄ = Σ_blocks y[:, r0:r1] A[r0:r1].
  torch::Tensor adjoint_product(const torch::Tensor& y) const {
    int64_t N = numel(in_);
    auto x = torch::zeros({y.size(0), N}, y.options());
    for (int64_t r0 = 0; r0 < o_.m; r0 += rows_per_block_) {
      int64_t r1 = std::min(o_.m, r0 + rows_per_block_);
      auto G = gaussian_rows(o_, N, r0, r1).to(y.device(), y.scalar_type());
      x.addmm_(y.slice(1, r0, r1), G);
    }
    return x;
  }

 private:
  GaussianOptions o_;
  int64_t rows_per_block_;
};

torch::Tensor MatrixFreeFn::forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, int64_t op, bool adjoint) {
  ctx->saved_data["op"] = op;
  ctx->saved_data["adjoint"] = adjoint;
  auto* self = reinterpret_cast<const MatrixFreeGaussian*>(op);
  return adjoint ? self->adjoint_product(x) : self->forward_product(x);
}

torch::autograd::tensor_list MatrixFreeFn::backward(torch::autograd::AutogradContext* ctx,
                                                    torch::autograd::tensor_list grad) {
  auto* self = reinterpret_cast<const MatrixFreeGaussian*>(ctx->saved_data["op"].toInt());
  bool adjoint = ctx->saved_data["adjoint"].toBool();
  auto g = adjoint ? self->forward_product(grad[0]) : self->adjoint_product(grad[0]);
  return {g, torch::Tensor(), torch::Tensor()};
}

}  // namespace

std::shared_ptr<Operator> make_gaussian(Shape in, const GaussianOptions& o) {
  int64_t N = numel(in);
  const double dense_bytes = 4.0 * double(o.m) * double(N);  // double: m·N may overflow int64
  bool dense = o.storage == GaussianOptions::Storage::kDense ||
               (o.storage == GaussianOptions::Storage::kAuto && dense_bytes <= double(o.dense_limit_bytes));
  if (dense) {
    require_memory(dense_bytes, "gaussian:m=" + std::to_string(o.m) + " (dense A, " + std::to_string(o.m) + " x " +
                                    std::to_string(N) + " floats)",
                   "use impl=matrix-free, or the srht operator");
    return std::make_shared<DenseGaussian>(std::move(in), o);
  }
  // Matrix-free A is regenerated block by block, but y and its gradients hold m floats per item.
  require_memory(4.0 * 4.0 * double(o.m), "gaussian:m=" + std::to_string(o.m) + " (measurement vectors)");
  return std::make_shared<MatrixFreeGaussian>(std::move(in), o);
}

void enroll_gaussian(OperatorRegistry& r) {
  r.add({"gaussian", "compressed sensing y = A x, A i.i.d. Gaussian (dense or matrix-free, same A for a seed)",
         {{"m", kUnset, "number of measurements M"},
          {"ratio", kUnset, "M/N instead of m"},
          {"var", "1/m", "entry variance: 1/m (Diff-OneBit, QCS-SGM) or 1 (SIM-DMIS)"},
          {"seed", kUnset, "seed of A (default: --seed)"},
          {"impl", "auto", "dense | matrix-free | auto (dense up to 256 MB)"},
          {"block_mb", "24", "matrix-free working memory per row block, MB"},
          {"block_rows", kUnset, "matrix-free rows per block (overrides block_mb)"}},
         [](const Params& p, const OpContext& c) {
           GaussianOptions o;
           o.m = measurement_count(p, numel(c.in_shape), /*at_most_n=*/false);
           o.unit_variance = p.choice("var", {"1/m", "1"}) == "1";
           o.seed = seed_of(p, c);
           auto impl = p.choice("impl", {"auto", "dense", "matrix-free"});
           o.storage = impl == "dense"         ? GaussianOptions::Storage::kDense
                       : impl == "matrix-free" ? GaussianOptions::Storage::kMatrixFree
                                               : GaussianOptions::Storage::kAuto;
           double mb = p.real("block_mb");
           if (!(mb > 0)) p.fail("block_mb must be positive");
           o.block_bytes = static_cast<int64_t>(mb * (1 << 20));
           if (p.has("block_rows")) o.block_rows = p.integer("block_rows");
           return make_gaussian(c.in_shape, o);
         },
         {"gaussian:m=48,impl=dense", "gaussian:m=48,impl=matrix-free,block_mb=0.01", "gaussian:ratio=0.5,var=1"}});
}

}  // namespace tweedie::op
