#include "tweedie/op/structured.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/op/registry.h"
#include "tweedie/op/svd.h"

namespace tweedie::op {

namespace {

// The reference formulation in tensor ops (any device, any floating dtype): one butterfly level
// per pass, H = ⊗ [[1, 1], [1, −1]], unnormalised.
torch::Tensor fwht_levels(torch::Tensor t) {
  const int64_t B = t.size(0), n = t.size(1);
  for (int64_t h = 1; h < n; h *= 2) {
    auto v = t.view({B, n / (2 * h), 2, h});
    auto a = v.select(2, 0), b = v.select(2, 1);
    t = torch::stack({a + b, a - b}, 2).view({B, n});
  }
  return t;
}

// In-place unnormalised FWHT of n = 2^k contiguous values. Written by hand because LibTorch has
// no Hadamard transform, and the tensor-op version above makes k full passes plus a stack copy
// per level (0.8 s for an apply + adjoint at 3x256x256). Here the first levels run inside blocks
// of kBlock values that stay in the L1 cache, and the rest two levels per pass (radix 4), so a
// row of 2^18 floats costs ~1 + 3 passes over memory. Inner loops are unit-stride and
// vectorise. Blocks (first phase) and butterfly groups (second) are spread over threads.
template <typename T>
void fwht_inplace(T* x, int64_t n) {
  constexpr int64_t kBlock = 4096;  // 16 KB of floats
  const int64_t block = std::min(n, kBlock);
  at::parallel_for(0, n / block, n >= (1 << 16) ? 1 : n / block, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      T* p = x + blk * block;
      int64_t h = 1;
      for (; 2 * h < block; h *= 4) {  // levels h and 2h together
        for (int64_t i = 0; i < block; i += 4 * h) {
          for (int64_t j = i; j < i + h; ++j) {
            const T a = p[j], b = p[j + h], c = p[j + 2 * h], d = p[j + 3 * h];
            const T s0 = a + b, d0 = a - b, s1 = c + d, d1 = c - d;
            p[j] = s0 + s1, p[j + h] = d0 + d1, p[j + 2 * h] = s0 - s1, p[j + 3 * h] = d0 - d1;
          }
        }
      }
      if (h < block) {
        for (int64_t i = 0; i < block; i += 2 * h) {
          for (int64_t j = i; j < i + h; ++j) {
            const T a = p[j], b = p[j + h];
            p[j] = a + b, p[j + h] = a - b;
          }
        }
      }
    }
  });
  // Levels block, 2·block, ...: groups of 4h values, each split into h independent butterflies.
  int64_t h = block;
  for (; 2 * h < n; h *= 4) {
    at::parallel_for(0, n / 4, 1 << 14, [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q) {  // q indexes (group, offset) = (q / h, q % h)
        const int64_t j = (q / h) * 4 * h + q % h;
        const T a = x[j], b = x[j + h], c = x[j + 2 * h], d = x[j + 3 * h];
        const T s0 = a + b, d0 = a - b, s1 = c + d, d1 = c - d;
        x[j] = s0 + s1, x[j + h] = d0 + d1, x[j + 2 * h] = s0 - s1, x[j + 3 * h] = d0 - d1;
      }
    });
  }
  if (h < n) {
    at::parallel_for(0, n / 2, 1 << 14, [&](int64_t q0, int64_t q1) {
      for (int64_t j = q0; j < q1; ++j) {
        const T a = x[j], b = x[j + h];
        x[j] = a + b, x[j + h] = a - b;
      }
    });
  }
}

// Orthonormal FWHT of the rows of a [B, n] tensor, on a fresh buffer.
torch::Tensor fwht_rows(const torch::Tensor& t) {
  if (!t.device().is_cpu() || (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble)) {
    return fwht_levels(t) * (1.0 / std::sqrt(static_cast<double>(t.size(1))));
  }
  torch::Tensor out = t.contiguous().clone();
  const int64_t B = out.size(0), n = out.size(1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(n));
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "fwht", [&] {
    auto* p = out.data_ptr<scalar_t>();
    for (int64_t r = 0; r < B; ++r) fwht_inplace(p + r * n, n);
  });
  return out.mul_(scale);
}

// H is orthonormal and symmetric: the backward pass of y = H x is H applied to the gradient.
struct FwhtFn : public torch::autograd::Function<FwhtFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& t) { return fwht_rows(t); }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*,
                                               torch::autograd::tensor_list grads) {
    return {FwhtFn::apply(grads[0])};
  }
};

}  // namespace

torch::Tensor fwht(const torch::Tensor& x) {
  int64_t n = x.size(-1);
  TORCH_CHECK(n > 0 && (n & (n - 1)) == 0, "fwht: length ", n, " is not a power of two");
  auto lead = x.sizes().vec();
  return FwhtFn::apply(x.reshape({-1, n})).view(lead);
}

torch::Tensor fwht_reference(const torch::Tensor& x) {
  int64_t n = x.size(-1);
  TORCH_CHECK(n > 0 && (n & (n - 1)) == 0, "fwht: length ", n, " is not a power of two");
  auto lead = x.sizes().vec();
  return (fwht_levels(x.reshape({-1, n})) * (1.0 / std::sqrt(static_cast<double>(n)))).view(lead);
}

namespace {

int64_t next_pow2(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

class Srht : public Operator {
 public:
  Srht(Shape in, SrhtOptions o) : Operator(in, {o.m}), o_(o) {
    N_ = numel(in_);
    n_ = next_pow2(N_);
    auto gen = make_generator(o_.seed);
    signs_ = (torch::randint(0, 2, {n_}, gen, torch::kLong) * 2 - 1).to(torch::kFloat32);
    kept_ = std::get<0>(torch::randperm(n_, gen, torch::kLong).slice(0, 0, o_.m).sort());
    c_ = std::sqrt(static_cast<double>(n_) / (o_.unit_variance ? 1.0 : static_cast<double>(o_.m)));
  }
  std::string name() const override { return "srht"; }
  std::string spec() const override {
    return "srht:m=" + std::to_string(o_.m) + ",var=" + (o_.unit_variance ? "1" : "1/m") + ",seed=" +
           std::to_string(o_.seed);
  }
  // y = c S H D P x
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    return fwht(pad(x.flatten(1)) * signs_.to(x.scalar_type())).index_select(1, kept_) * c_;
  }
  // Aᵀy = c Pᵀ D H Sᵀ y (H and D are symmetric).
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    auto full = torch::zeros({y.size(0), n_}, y.options()).index_copy(1, kept_, y);
    return (fwht(full) * signs_.to(y.scalar_type()) * c_).slice(1, 0, N_).reshape(with_batch(y.size(0), in_));
  }
  // With no padding (N a power of two) H D is orthogonal on R^N: U = I, s = c, Vᵀ = H D.
  std::shared_ptr<const SvdView> svd() const override {
    if (n_ != N_) return nullptr;
    auto signs = signs_;
    auto T = [signs](const torch::Tensor& x) { return fwht(x * signs.to(x.scalar_type())); };
    auto Tt = [signs](const torch::Tensor& c) { return fwht(c) * signs.to(c.scalar_type()); };
    return selection_svd(T, Tt, kept_, c_, in_, out_);
  }
  void to(const torch::Device& d) override {
    signs_ = signs_.to(d);
    kept_ = kept_.to(d);
  }

 private:
  torch::Tensor pad(const torch::Tensor& xf) const {
    return n_ == N_ ? xf : torch::constant_pad_nd(xf, {0, n_ - N_});
  }
  SrhtOptions o_;
  int64_t N_, n_;
  double c_;
  torch::Tensor signs_, kept_;
};

}  // namespace

std::shared_ptr<Operator> make_srht(Shape in, const SrhtOptions& o) { return std::make_shared<Srht>(std::move(in), o); }

void enroll_structured(OperatorRegistry& r) {
  r.add({"srht", "subsampled randomized Hadamard sensing c S H D x, O(N log N), entries ±1/sqrt(M)",
         {{"m", kUnset, "number of measurements M"},
          {"ratio", kUnset, "M/N instead of m"},
          {"var", "1/m", "entry variance: 1/m or 1, as for gaussian"},
          {"seed", kUnset, "seed of D and S (default: --seed)"}},
         [](const Params& p, const OpContext& c) {
           SrhtOptions o;
           int64_t N = numel(c.in_shape);
           o.m = measurement_count(p, next_pow2(N));
           o.unit_variance = p.choice("var", {"1/m", "1"}) == "1";
           o.seed = seed_of(p, c);
           return make_srht(c.in_shape, o);
         },
         {"srht:m=40", "srht:ratio=0.25,var=1"}});
}

}  // namespace tweedie::op
