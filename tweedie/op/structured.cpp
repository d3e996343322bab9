#include "tweedie/op/structured.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <type_traits>
#include <vector>

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

// ---- The blocked Walsh–Hadamard kernel -----------------------------------------------------------
// Written by hand because LibTorch has no Hadamard transform, and the tensor-op version
// (fwht_levels) makes one full pass plus a stack copy per level (0.8 s for an SRHT apply +
// adjoint at 3x256x256). Here n = R·C with C = min(n, kWhtBlock):
//   phase 1  each row of C contiguous values (16 KB of float32, in L1) gets all its levels;
//            the first three levels by in-register 8-point transforms, the others three at a
//            time (radix-8 butterflies: 8 vectors loaded, three levels in registers, 8 stored);
//   phase 2  the log₂R remaining levels act along the columns: strips of W columns are copied
//            into a small L1 buffer (R·W values), transformed there, and written back.
// The rows are kept C + kWhtPad values apart (WhtLayout), not C: with a power-of-two pitch the
// R values of a column share one L1 cache set. Measured on one thread at 3x256x256 (bench_operators
// BM_Srht/2, two runs each): SRHT apply + adjoint 200-205 µs padded against 220 µs unpadded.
// So the whole transform is two passes over memory, and about log₂n / 3 passes over L1. Every
// value goes through the same adds and subtracts in the same order as fwht_levels (a radix-8
// butterfly is levels h, 2h, 4h in turn, each a + b, a − b), so the results are equal bit for
// bit. Rows (phase 1) and strips (phase 2) are spread over threads.
// Float32 has two builds of the loops: 16-lane vectors for CPUs with AVX-512 (picked at run
// time), and 8-lane vectors compiled for AVX2 and for the baseline ISA (target_clones, picked at
// load time). Float64 runs the scalar template (auto-vectorised).
#define TWEEDIE_FWHT_CLONES __attribute__((target_clones("avx2", "default")))
#define TWEEDIE_FWHT_AVX512 __attribute__((target("avx2,fma,avx512f")))
#define TWEEDIE_FWHT_INLINE inline __attribute__((always_inline))

constexpr int64_t kWhtBlock = 4096;          // phase-1 row: 16 KB of float32
constexpr int64_t kWhtStripBytes = 16384;    // phase-2 buffer
constexpr int64_t kWhtPad = 16;               // extra values between rows: one 64-byte line

// Where the n = R·C values live in the transform's scratch: row r at r·pitch.
struct WhtLayout {
  int64_t C, R, pitch;
  explicit WhtLayout(int64_t n) : C(std::min(n, kWhtBlock)), R(n / C), pitch(R > 1 ? C + kWhtPad : C) {}
  int64_t size() const { return R * pitch; }
  // Index of value j (C is a power of two: shift and mask, not a division per value).
  int64_t at(int64_t j) const { return (j >> __builtin_ctzll(static_cast<uint64_t>(C))) * pitch + (j & (C - 1)); }
};

// GCC vector types of 8 and 16 float32 lanes, lowered to whatever width the caller's ISA has.
// The helpers taking or returning them are always inlined into the target-specific functions,
// so the baseline build's warning that a wide vector changes the call ABI does not apply
// (-Wpsabi off until the kernel's end).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float WhtV8 __attribute__((vector_size(32)));
typedef float WhtV16 __attribute__((vector_size(64)));
typedef int WhtI8 __attribute__((vector_size(32)));

template <typename V>
TWEEDIE_FWHT_INLINE V wht_load(const float* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
template <typename V>
TWEEDIE_FWHT_INLINE void wht_store(float* p, V v) {
  __builtin_memcpy(p, &v, sizeof v);
}

// One radix-2^r step (r = 1, 2, 3 levels: h, 2h, 4h) on the 2^r values x[k], k = 0..2^r−1,
// that are h·stride apart: level by level, pairs (k, k + 2^l) with bit l of k clear become
// (a + b, a − b). V is a vector type or a scalar.
template <int r, typename V>
TWEEDIE_FWHT_INLINE void wht_butterflies(V* x) {
  for (int l = 0; l < r; ++l)
    for (int k = 0; k < (1 << r); ++k)
      if (!(k & (1 << l))) {
        const V a = x[k], b = x[k + (1 << l)];
        x[k] = a + b, x[k + (1 << l)] = a - b;
      }
}

// Levels h .. h·2^(r−1) over `len` values, the partners of value j at j + k·h·stride: scalar.
template <int r, typename T>
TWEEDIE_FWHT_INLINE void wht_radix_scalar(T* p, int64_t len, int64_t hs) {
  for (int64_t i = 0; i < len; i += hs << r)
    for (int64_t j = i; j < i + hs; ++j) {
      T x[1 << r];
      for (int k = 0; k < (1 << r); ++k) x[k] = p[j + k * hs];
      wht_butterflies<r>(x);
      for (int k = 0; k < (1 << r); ++k) p[j + k * hs] = x[k];
    }
}
// The same on whole vectors of float32 (hs a multiple of V's lanes): no alias checks or
// remainder loops, which cost more than the butterflies at h·stride = 8 or 16.
template <int r, typename V>
TWEEDIE_FWHT_INLINE void wht_radix_vector(float* p, int64_t len, int64_t hs) {
  constexpr int64_t lanes = sizeof(V) / sizeof(float);
  for (int64_t i = 0; i < len; i += hs << r)
    for (int64_t j = i; j < i + hs; j += lanes) {
      V x[1 << r];
      for (int k = 0; k < (1 << r); ++k) x[k] = wht_load<V>(p + j + k * hs);
      wht_butterflies<r>(x);
      for (int k = 0; k < (1 << r); ++k) wht_store<V>(p + j + k * hs, x[k]);
    }
}
template <int r, typename V, typename T>
TWEEDIE_FWHT_INLINE void wht_radix(T* p, int64_t len, int64_t hs) {
  if constexpr (std::is_same_v<T, float>) {
    if (hs % static_cast<int64_t>(sizeof(V) / sizeof(float)) == 0) return wht_radix_vector<r, V>(p, len, hs);
    if (hs % 8 == 0) return wht_radix_vector<r, WhtV8>(p, len, hs);
  }
  wht_radix_scalar<r>(p, len, hs);
}

// The levels h, 2h, … below h_end, in order, three at a time, over `len` values.
template <typename V, typename T>
TWEEDIE_FWHT_INLINE void wht_levels(T* p, int64_t len, int64_t h, int64_t h_end, int64_t stride) {
  for (; 8 * h <= h_end; h *= 8) wht_radix<3, V>(p, len, h * stride);
  if (4 * h <= h_end) return wht_radix<2, V>(p, len, h * stride);
  if (h < h_end) wht_radix<1, V>(p, len, h * stride);
}

// The first three levels (h = 1, 2, 4) of float32 values, 8 at a time in vector registers:
// each level is v·(±1) + (v with partners swapped), i.e. a + b and a − b exactly.
TWEEDIE_FWHT_INLINE void wht_first3(float* p, int64_t len) {
  const WhtV8 s1 = {1, -1, 1, -1, 1, -1, 1, -1}, s2 = {1, 1, -1, -1, 1, 1, -1, -1}, s3 = {1, 1, 1, 1, -1, -1, -1, -1};
  const WhtI8 m1 = {1, 0, 3, 2, 5, 4, 7, 6}, m2 = {2, 3, 0, 1, 6, 7, 4, 5}, m3 = {4, 5, 6, 7, 0, 1, 2, 3};
  for (int64_t i = 0; i + 8 <= len; i += 8) {
    WhtV8 v = wht_load<WhtV8>(p + i);
#if defined(__clang__)  // clang's spelling of GCC's __builtin_shuffle (constant indices)
    (void)m1, (void)m2, (void)m3;
    v = v * s1 + __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6);
    v = v * s2 + __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5);
    v = v * s3 + __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
#else
    v = v * s1 + __builtin_shuffle(v, m1);
    v = v * s2 + __builtin_shuffle(v, m2);
    v = v * s3 + __builtin_shuffle(v, m3);
#endif
    wht_store<WhtV8>(p + i, v);
  }
}

// Phase 1 on one row of `len` (≤ kWhtBlock, a power of two) values.
template <typename V, typename T>
TWEEDIE_FWHT_INLINE void wht_row(T* p, int64_t len) {
  if constexpr (std::is_same_v<T, float>) {
    if (len >= 8) {
      wht_first3(p, len);
      return wht_levels<V>(p, len, 8, len, 1);
    }
  }
  wht_levels<V>(p, len, 1, len, 1);
}

// Where phase 2 writes: back into x, or (out) out[j] = v·sign[j] for j < len: the last step
// of an SRHT adjoint fused into the transform's last pass.
template <typename T>
struct WhtOut {
  T* out = nullptr;
  const T* sign = nullptr;
  int64_t len = 0;
};

// Phase 2 on columns [c0, c0 + W) of the R × C matrix x (rows P apart): all R-point transforms
// of the strip. With o.out, value j = r·C + c goes to o.out[j] (times o.sign[j] when given)
// for j < o.len, and x is left as it was.
template <typename V, typename T>
TWEEDIE_FWHT_INLINE void wht_strip(T* x, int64_t R, int64_t C, int64_t P, int64_t c0, int64_t W, T* buf,
                                   WhtOut<T> o) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t w = 0; w < W; ++w) buf[r * W + w] = x[r * P + c0 + w];
  wht_levels<V>(buf, R * W, 1, R, W);
  for (int64_t r = 0; r < R; ++r) {
    const T* b = buf + r * W;
    if (!o.out) {
      for (int64_t w = 0; w < W; ++w) x[r * P + c0 + w] = b[w];
      continue;
    }
    const int64_t j0 = r * C + c0, end = std::min(W, o.len - j0);
    if (o.sign) {
      for (int64_t w = 0; w < end; ++w) o.out[j0 + w] = b[w] * o.sign[j0 + w];
    } else {
      for (int64_t w = 0; w < end; ++w) o.out[j0 + w] = b[w];
    }
  }
}

// The builds: float32 with 16 lanes (AVX-512) or 8 (AVX2 / baseline clones), float64 scalar.
template <typename T>
struct WhtKernel {
  void (*row)(T* p, int64_t len);
  void (*strip)(T* x, int64_t R, int64_t C, int64_t P, int64_t c0, int64_t W, T* buf, WhtOut<T> o);
  const char* name;
};
TWEEDIE_FWHT_AVX512 void wht_row_512(float* p, int64_t len) { wht_row<WhtV16>(p, len); }
TWEEDIE_FWHT_AVX512 void wht_strip_512(float* x, int64_t R, int64_t C, int64_t P, int64_t c0, int64_t W, float* buf,
                                       WhtOut<float> o) {
  wht_strip<WhtV16>(x, R, C, P, c0, W, buf, o);
}
TWEEDIE_FWHT_CLONES void wht_row_256(float* p, int64_t len) { wht_row<WhtV8>(p, len); }
TWEEDIE_FWHT_CLONES void wht_strip_256(float* x, int64_t R, int64_t C, int64_t P, int64_t c0, int64_t W, float* buf,
                                       WhtOut<float> o) {
  wht_strip<WhtV8>(x, R, C, P, c0, W, buf, o);
}
TWEEDIE_FWHT_CLONES void wht_row_f64(double* p, int64_t len) { wht_row<double>(p, len); }
TWEEDIE_FWHT_CLONES void wht_strip_f64(double* x, int64_t R, int64_t C, int64_t P, int64_t c0, int64_t W, double* buf,
                                       WhtOut<double> o) {
  wht_strip<double>(x, R, C, P, c0, W, buf, o);
}

// The float32 builds this CPU runs, fastest first.
const std::vector<WhtKernel<float>>& wht_kernels_f32() {
  static const std::vector<WhtKernel<float>> k = [] {
    std::vector<WhtKernel<float>> v;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      v.push_back({wht_row_512, wht_strip_512, "avx512"});
    v.push_back({wht_row_256, wht_strip_256, "vector"});
    return v;
  }();
  return k;
}
const WhtKernel<float>& wht_kernel(float*) { return wht_kernels_f32().front(); }
const WhtKernel<double>& wht_kernel(double*) {
  static const WhtKernel<double> k{wht_row_f64, wht_strip_f64, "scalar"};
  return k;
}

// Where phase 1 reads: x itself, or (in) x[j] = in[j]·sign[j] (in[j] without sign) for
// j < len and 0 beyond: the first step of an SRHT apply (pad, random signs) fused into the
// transform's first pass.
template <typename T>
struct WhtIn {
  const T* in = nullptr;
  const T* sign = nullptr;
  int64_t len = 0;
};

// Unnormalised in-place FWHT of n = 2^k values held in x as WhtLayout(n) says, reading through
// `in` and writing through `out` (then x is scratch) when given, with kernel k. Small n
// (< 2^16) runs on the calling thread.
template <typename T>
void fwht_inplace(const WhtKernel<T>& k, T* x, int64_t n, WhtIn<T> in = {}, WhtOut<T> out = {}) {
  const WhtLayout L(n);
  const int64_t C = L.C, R = L.R, P = L.pitch;
  const bool threads = n >= (int64_t{1} << 16);
  at::parallel_for(0, R, threads ? 1 : R, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* p = x + r * P;
      if (in.in) {
        const int64_t j0 = r * C, end = std::max<int64_t>(0, std::min(C, in.len - j0));
        if (in.sign) {
          for (int64_t j = 0; j < end; ++j) p[j] = in.in[j0 + j] * in.sign[j0 + j];
        } else {
          std::copy(in.in + j0, in.in + j0 + end, p);
        }
        std::fill(p + end, p + C, T(0));
        if (end == 0) continue;  // all padding: its transform is zero (a quarter of 3x256x256)
      }
      k.row(p, C);
    }
  });
  if (R == 1) {
    if (out.out)
      for (int64_t j = 0; j < out.len; ++j) out.out[j] = out.sign ? x[j] * out.sign[j] : x[j];
    return;
  }
  const int64_t W = std::clamp<int64_t>(kWhtStripBytes / (R * static_cast<int64_t>(sizeof(T))), std::min<int64_t>(8, C), C);
  at::parallel_for(0, C / W, threads ? 1 : C / W, [&](int64_t s0, int64_t s1) {
    std::vector<T> buf(static_cast<size_t>(R * W));
    for (int64_t s = s0; s < s1; ++s) k.strip(x, R, C, P, s * W, W, buf.data(), out);
  });
}
template <typename T>
void fwht_inplace(T* x, int64_t n, WhtIn<T> in = {}, WhtOut<T> out = {}) {
  fwht_inplace(wht_kernel(x), x, n, in, out);
}

#pragma GCC diagnostic pop

// Orthonormal FWHT of the rows of a [B, n] tensor, on a fresh buffer; float32 with `f32`
// (null: the fastest build).
torch::Tensor fwht_rows(const torch::Tensor& t, const WhtKernel<float>* f32 = nullptr) {
  if (!t.device().is_cpu() || (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble)) {
    return fwht_levels(t) * (1.0 / std::sqrt(static_cast<double>(t.size(1))));
  }
  const torch::Tensor src = t.contiguous();
  torch::Tensor out = torch::empty_like(src);
  const int64_t B = out.size(0), n = out.size(1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(n));
  auto rows = [&](auto* type, const auto& k) {
    using T = std::remove_pointer_t<decltype(type)>;
    std::unique_ptr<T[]> scratch(new T[static_cast<size_t>(WhtLayout(n).size())]);  // written by phase 1
    for (int64_t r = 0; r < B; ++r)
      fwht_inplace(k, scratch.get(), n, WhtIn<T>{src.data_ptr<T>() + r * n, nullptr, n},
                   WhtOut<T>{out.data_ptr<T>() + r * n, nullptr, n});
  };
  if (out.scalar_type() == at::kFloat) {
    rows(static_cast<float*>(nullptr), f32 ? *f32 : wht_kernel(static_cast<float*>(nullptr)));
  } else {
    rows(static_cast<double*>(nullptr), wht_kernel(static_cast<double*>(nullptr)));
  }
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

namespace {
// f applied to x's last dimension, a power of two, as the rows of a [B, n] tensor.
template <typename F>
torch::Tensor over_rows(const torch::Tensor& x, F&& f) {
  const int64_t n = x.size(-1);
  TORCH_CHECK(n > 0 && (n & (n - 1)) == 0, "fwht: length ", n, " is not a power of two");
  return f(x.reshape({-1, n})).view(x.sizes());
}
}  // namespace

torch::Tensor fwht(const torch::Tensor& x) {
  return over_rows(x, [](const torch::Tensor& rows) { return FwhtFn::apply(rows); });
}

std::vector<std::string> fwht_kernels() {
  std::vector<std::string> names;
  for (const auto& k : wht_kernels_f32()) names.push_back(k.name);
  return names;
}

torch::Tensor fwht_with(const std::string& kernel, const torch::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat, "fwht_with: float32 CPU tensors only");
  const auto& k = wht_kernels_f32();
  auto it = std::find_if(k.begin(), k.end(), [&](const WhtKernel<float>& w) { return kernel == w.name; });
  TORCH_CHECK(it != k.end(), "fwht_with: kernel '", kernel, "' is not available on this machine");
  torch::NoGradGuard no_grad;
  return over_rows(x, [&](const torch::Tensor& rows) { return fwht_rows(rows, &*it); });
}

torch::Tensor fwht_reference(const torch::Tensor& x) {
  return over_rows(x, [](const torch::Tensor& rows) {
    return fwht_levels(rows) * (1.0 / std::sqrt(static_cast<double>(rows.size(1))));
  });
}

namespace {

int64_t next_pow2(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

class Srht;

// Autograd for the fused CPU products: A and Aᵀ are each other's backward pass.
struct SrhtFn : public torch::autograd::Function<SrhtFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor t, int64_t op, bool adjoint);
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad);
};

// What srht and srdct share, A = c S T D over n ≥ N entries (T = H or the DCT, orthogonal and
// self-inverse or with a known inverse): D = diag of n random signs, then S = M of the n rows
// without replacement, both from one generator seeded with o.seed; c = √(n/M), or √n for var=1;
// the spec text, the move to a device, and the SVD view when n = N.
class SignedSubsampled : public Operator {
 public:
  SignedSubsampled(Shape in, const SrhtOptions& o, std::string name, int64_t (*length)(int64_t))
      : Operator(in, {o.m}), o_(o), N_(numel(in_)), n_(length(N_)), name_(std::move(name)) {
    auto gen = make_generator(o_.seed);
    signs_ = (torch::randint(0, 2, {n_}, gen, torch::kLong) * 2 - 1).to(torch::kFloat32);
    kept_ = std::get<0>(torch::randperm(n_, gen, torch::kLong).slice(0, 0, o_.m).sort());
    c_ = std::sqrt(static_cast<double>(n_) / (o_.unit_variance ? 1.0 : static_cast<double>(o_.m)));
  }
  std::string name() const override { return name_; }
  std::string spec() const override {
    return name_ + ":m=" + std::to_string(o_.m) + ",var=" + (o_.unit_variance ? "1" : "1/m") + ",seed=" +
           std::to_string(o_.seed);
  }
  void to(const torch::Device& d) override {
    signs_ = signs_.to(d);
    kept_ = kept_.to(d);
  }

 protected:
  // With no padding (n = N), T D is orthogonal on R^N: U = I, s = c, Vᵀ = T D.
  std::shared_ptr<const SvdView> signed_svd(torch::Tensor (*T)(const torch::Tensor&),
                                            torch::Tensor (*T_inverse)(const torch::Tensor&)) const {
    if (n_ != N_) return nullptr;
    auto signs = signs_;
    auto Vt = [signs, T](const torch::Tensor& x) { return T(x * signs.to(x.scalar_type())); };
    auto V = [signs, T_inverse](const torch::Tensor& c) { return T_inverse(c) * signs.to(c.scalar_type()); };
    return selection_svd(Vt, V, kept_, c_, in_, out_);
  }

  SrhtOptions o_;
  int64_t N_, n_;
  double c_;
  torch::Tensor signs_, kept_;

 private:
  std::string name_;
};

class Srht : public SignedSubsampled {
 public:
  Srht(Shape in, SrhtOptions o) : SignedSubsampled(std::move(in), o, "srht", next_pow2) {}
  // y = c S H D P x
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    if (fused(x)) return SrhtFn::apply(x.flatten(1), reinterpret_cast<int64_t>(this), false);
    return fwht(pad(x.flatten(1)) * signs_.to(x.scalar_type())).index_select(1, kept_) * c_;
  }
  // Aᵀy = c Pᵀ D H Sᵀ y (H and D are symmetric).
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    if (fused(y))
      return SrhtFn::apply(y, reinterpret_cast<int64_t>(this), true).reshape(with_batch(y.size(0), in_));
    auto full = torch::zeros({y.size(0), n_}, y.options()).index_copy(1, kept_, y);
    return (fwht(full) * signs_.to(y.scalar_type()) * c_).slice(1, 0, N_).reshape(with_batch(y.size(0), in_));
  }
  // With no padding (N a power of two); H is its own inverse.
  std::shared_ptr<const SvdView> svd() const override { return signed_svd(fwht, fwht); }

  // The CPU products, each one pass of the blocked transform over a scratch row of n values
  // (stored as WhtLayout says) with padding, signs, selection and scale folded into its first
  // and last steps:
  //   apply    scratch = D P x (read in phase 1), H in place, y = (c/√n) scratch[kept];
  //   adjoint  scratch = Sᵀ (c/√n) y, H with out = Pᵀ D (written in phase 2).
  // xf is [B, N] (apply) or [B, M] (adjoint).
  torch::Tensor product(const torch::Tensor& t, bool adjoint) const {
    auto src = t.contiguous();
    const int64_t B = src.size(0), M = o_.m;
    auto out = torch::empty({B, adjoint ? N_ : M}, src.options());
    auto signs = signs_.to(src.scalar_type());
    const int64_t* kept = kept_.data_ptr<int64_t>();
    const double scale = c_ / std::sqrt(static_cast<double>(n_));
    AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "srht", [&] {
      using T = scalar_t;
      // Uninitialised: the apply's first pass writes every entry, the adjoint zeroes it itself
      // (a std::vector would zero 1 MB per call at 3x256x256 for nothing).
      const WhtLayout layout(n_);
      std::unique_ptr<T[]> scratch(new T[static_cast<size_t>(layout.size())]);
      const T* sign = signs.data_ptr<T>();
      const T k = static_cast<T>(scale);
      for (int64_t b = 0; b < B; ++b) {
        const T* in = src.data_ptr<T>() + b * src.size(1);
        T* o = out.data_ptr<T>() + b * out.size(1);
        if (!adjoint) {
          fwht_inplace<T>(scratch.get(), n_, WhtIn<T>{in, sign, N_});
          for (int64_t i = 0; i < M; ++i) o[i] = scratch[layout.at(kept[i])] * k;
        } else {
          std::fill(scratch.get(), scratch.get() + layout.size(), T(0));
          for (int64_t i = 0; i < M; ++i) scratch[layout.at(kept[i])] = in[i] * k;
          fwht_inplace<T>(scratch.get(), n_, {}, WhtOut<T>{o, sign, N_});
        }
      }
    });
    return out;
  }

 private:
  bool fused(const torch::Tensor& t) const {
    return t.device().is_cpu() && kept_.device().is_cpu() &&
           (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
  }
  torch::Tensor pad(const torch::Tensor& xf) const {
    return n_ == N_ ? xf : torch::constant_pad_nd(xf, {0, n_ - N_});
  }
};

torch::Tensor SrhtFn::forward(torch::autograd::AutogradContext* ctx, torch::Tensor t, int64_t op, bool adjoint) {
  ctx->saved_data["op"] = op;
  ctx->saved_data["adjoint"] = adjoint;
  return reinterpret_cast<const Srht*>(op)->product(t, adjoint);
}

torch::autograd::tensor_list SrhtFn::backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grad) {
  auto* self = reinterpret_cast<const Srht*>(ctx->saved_data["op"].toInt());
  const bool adjoint = ctx->saved_data["adjoint"].toBool();
  return {self->product(grad[0], !adjoint), torch::Tensor(), torch::Tensor()};
}

}  // namespace

// ---- Subsampled randomized DCT ---------------------------------------------------------------
// Makhoul (1980): with v the reordering v_n = x_{2n}, v_{N−1−n} = x_{2n+1}, the DCT-II sum is
// Σ_n x_n cos(π(2n+1)k/(2N)) = Re(w_k V_k), V = FFT(v), w_k = e^{−iπk/(2N)}. Backwards, with
// Y_k = X_k / s_k, real v gives w_k V_k = Y_k − i Y_{N−k} (Y_N = 0), so v = IFFT(w̄ ⊙ (Y − i Y_{N−·})).
// Both directions use the real FFT: v is real, V Hermitian.

namespace {

// Index tensors and factors of a length-N transform, in x's dtype and device.
struct DctTables {
  torch::Tensor order;    // v = x[order]: order[n] = 2n, order[N−1−n] = 2n+1
  torch::Tensor unorder;  // x = v[unorder], the inverse permutation
  torch::Tensor w;        // e^{−iπk/(2N)}, complex
  torch::Tensor s;        // s_k
};

DctTables dct_tables(int64_t N, const torch::TensorOptions& real) {
  std::vector<int64_t> order(static_cast<size_t>(N)), unorder(static_cast<size_t>(N));
  for (int64_t n = 0; 2 * n < N; ++n) order[static_cast<size_t>(n)] = 2 * n;
  for (int64_t n = 0; 2 * n + 1 < N; ++n) order[static_cast<size_t>(N - 1 - n)] = 2 * n + 1;
  for (int64_t i = 0; i < N; ++i) unorder[static_cast<size_t>(order[static_cast<size_t>(i)])] = i;
  const auto dev = real.device();
  DctTables t;
  t.order = torch::tensor(order, torch::kLong).to(dev);
  t.unorder = torch::tensor(unorder, torch::kLong).to(dev);
  const auto k = torch::arange(N, torch::TensorOptions().dtype(torch::kFloat64));
  const auto angle = k * (-M_PI / (2.0 * static_cast<double>(N)));
  t.w = torch::polar(torch::ones_like(angle), angle).to(real.dtype() == torch::kFloat64 ? torch::kComplexDouble
                                                                                         : torch::kComplexFloat)
            .to(dev);
  auto s = torch::full({N}, std::sqrt(2.0 / static_cast<double>(N)), torch::kFloat64);
  s[0] = std::sqrt(1.0 / static_cast<double>(N));
  t.s = s.to(real.dtype()).to(dev);
  return t;
}

// v is real, so V is Hermitian (V_{N−k} = conj V_k): one real FFT gives V_0 … V_{⌊N/2⌋}, and
// Re(w_{N−k} V_{N−k}) = Re(w_{N−k} conj V_k) for the upper half.
torch::Tensor dct_rows(const torch::Tensor& x, const DctTables& t) {  // [B, N]
  const int64_t N = x.size(1), h = N / 2 + 1;
  const auto V = torch::fft::rfft(x.index_select(1, t.order), c10::nullopt, 1);  // [B, h]
  const auto lower = torch::real(V * t.w.narrow(0, 0, h));
  if (N - h == 0) return lower * t.s;
  // k = h … N−1 pairs with N−k = N−h … 1, i.e. V[1 … N−h] reversed
  const auto upper = torch::real(V.narrow(1, 1, N - h).flip({1}).conj() * t.w.narrow(0, h, N - h));
  return torch::cat({lower, upper}, 1) * t.s;
}

torch::Tensor idct_rows(const torch::Tensor& X, const DctTables& t) {  // [B, N]
  const auto Y = X / t.s;
  const auto Y_rev = torch::cat({torch::zeros_like(Y.narrow(1, 0, 1)), Y.narrow(1, 1, Y.size(1) - 1).flip({1})}, 1);
  // V is Hermitian (v is real): the inverse real FFT needs only V_0 … V_{⌊N/2⌋}.
  const int64_t h = Y.size(1) / 2 + 1;
  const auto V = torch::complex(Y.narrow(1, 0, h), -Y_rev.narrow(1, 0, h)) * t.w.narrow(0, 0, h).conj();
  return torch::fft::irfft(V, Y.size(1), 1).index_select(1, t.unorder);
}

torch::Tensor along_last(const torch::Tensor& x, bool inverse) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) > 0, "dct: empty last dimension");
  const int64_t N = x.size(-1);
  auto rows = x.reshape({-1, N});
  const DctTables t = dct_tables(N, rows.options());
  return (inverse ? idct_rows(rows, t) : dct_rows(rows, t)).view(x.sizes());
}

int64_t same_length(int64_t N) { return N; }

class Srdct : public SignedSubsampled {
 public:
  Srdct(Shape in, SrhtOptions o) : SignedSubsampled(std::move(in), o, "srdct", same_length) {}
  // y = c S C D x
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    const auto xf = x.flatten(1);
    return dct_rows(xf * signs_.to(xf.scalar_type()), tables(xf)).index_select(1, kept_) * c_;
  }
  // Aᵀy = c D Cᵀ Sᵀ y, Cᵀ = C⁻¹ the DCT-III.
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    auto full = torch::zeros({y.size(0), N_}, y.options()).index_copy(1, kept_, y);
    return (idct_rows(full, tables(y)) * signs_.to(y.scalar_type()) * c_).reshape(with_batch(y.size(0), in_));
  }
  // C D is orthogonal on R^N (no padding); Cᵀ = C⁻¹ is the DCT-III.
  std::shared_ptr<const SvdView> svd() const override { return signed_svd(dct, idct); }
  void to(const torch::Device& d) override {
    SignedSubsampled::to(d);
    cache_.clear();
  }

 private:
  // The tables for t's dtype and device, built once per kind.
  const DctTables& tables(const torch::Tensor& t) const {
    const std::string key = c10::str(t.device(), "/", t.scalar_type());
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, dct_tables(N_, t.options())).first;
    return it->second;
  }
  mutable std::mutex mutex_;
  mutable std::map<std::string, DctTables> cache_;
};

}  // namespace

torch::Tensor dct(const torch::Tensor& x) { return along_last(x, false); }
torch::Tensor idct(const torch::Tensor& X) { return along_last(X, true); }

std::shared_ptr<Operator> make_srdct(Shape in, const SrhtOptions& o) { return std::make_shared<Srdct>(std::move(in), o); }

std::shared_ptr<Operator> make_srht(Shape in, const SrhtOptions& o) { return std::make_shared<Srht>(std::move(in), o); }

// The factory of srht and srdct, from the options they share; `length(N)` is the transform's
// length n for an image of N entries (the bound on M).
OperatorFactory structured_factory(std::shared_ptr<Operator> (*make)(Shape, const SrhtOptions&),
                                   int64_t (*length)(int64_t)) {
  return [make, length](const Params& p, const OpContext& c) {
    SrhtOptions o;
    o.m = measurement_count(p, length(numel(c.in_shape)));
    o.unit_variance = p.choice("var", {"1/m", "1"}) == "1";
    o.seed = seed_of(p, c);
    return make(c.in_shape, o);
  };
}

void enroll_structured(OperatorRegistry& r) {
  r.add({"srht", "subsampled randomized Hadamard sensing c S H D x, O(N log N), entries ±1/sqrt(M)",
         {{"m", kUnset, "number of measurements M"},
          {"ratio", kUnset, "M/N instead of m"},
          {"var", "1/m", "entry variance: 1/m or 1, as for gaussian"},
          {"seed", kUnset, "seed of D and S (default: --seed)"}},
         structured_factory(make_srht, next_pow2),
         {"srht:m=40", "srht:ratio=0.25,var=1"}});
  r.add({"srdct", "subsampled randomized DCT sensing c S C D x, O(N log N) by FFT, any N, rows of norm sqrt(N/M)",
         {{"m", kUnset, "number of measurements M"},
          {"ratio", kUnset, "M/N instead of m"},
          {"var", "1/m", "row scale: 1/m (E AᵀA = I) or 1, as for gaussian"},
          {"seed", kUnset, "seed of D and S (default: --seed)"}},
         structured_factory(make_srdct, same_length),
         {"srdct:m=40", "srdct:ratio=0.25,var=1"}});
}

}  // namespace tweedie::op
