#include "tweedie/op/gaussian.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/core/seed.h"
#include "tweedie/op/registry.h"
#include "tweedie/op/svd.h"

namespace tweedie::op {

torch::Tensor gaussian_rows(const GaussianOptions& o, int64_t N, int64_t r0, int64_t r1) {
  // Draw in float64: CPU float32 normal_ takes an AVX2 path on some machines and a scalar one on
  // others, with different rounding; the float64 path is the same everywhere.
  auto buf = torch::empty({r1 - r0, N}, torch::kFloat64);
  uint64_t base = splitmix64(o.seed);
  at::parallel_for(r0, r1, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      auto gen = make_generator((base + static_cast<uint64_t>(i)) & 0xffffffffull);
      buf[i - r0].normal_(0.0, 1.0, gen);
    }
  });
  auto rows = buf.to(torch::kFloat32);
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
    Shape s{y.size(0)};
    s.insert(s.end(), in_.begin(), in_.end());
    return y.matmul(A_.to(y.scalar_type())).reshape(s);
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
    if (o_.block_rows <= 0) o_.block_rows = std::max<int64_t>(1, o_.block_bytes / (N * 12));
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
    Shape s{y.size(0)};
    s.insert(s.end(), in_.begin(), in_.end());
    return MatrixFreeFn::apply(y, reinterpret_cast<int64_t>(this), true).reshape(s);
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
  bool dense = o.storage == GaussianOptions::Storage::kDense ||
               (o.storage == GaussianOptions::Storage::kAuto && o.m * N * 4 <= o.dense_limit_bytes);
  if (dense) return std::make_shared<DenseGaussian>(std::move(in), o);
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
