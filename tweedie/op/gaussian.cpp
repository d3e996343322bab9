#include "tweedie/op/gaussian.h"

#include "tweedie/core/memory.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "tweedie/core/seed.h"
#include "tweedie/op/registry.h"
#include "tweedie/op/svd.h"

namespace tweedie::op {

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
constexpr double kTwoPi = 6.283185307179586476925286766559;
constexpr double kUnit = 1.0 / 9007199254740992.0;  // 2⁻⁵³

// The SplitMix64 output function (Stafford's Mix13): a bijective avalanche mix of 64 bits.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The definition. Row i of A: N standard normals from the counter-based stream of key
// k_i = mix64(seed') + i, seed' = splitmix64(seed). Pair p uses the 64-bit words
// w_c = mix64(k_i + (c + 1)γ) for c = 2p, 2p + 1 (SplitMix64 with state k_i), turned into
// uniforms u₁ = (⌊w/2¹¹⌋ + ½)/2⁵³ ∈ (0, 1) and u₂ = ⌊w/2¹¹⌋/2⁵³, then by Box–Muller into
//   a_{i,2p} = √(−2 log u₁) cos 2πu₂,   a_{i,2p+1} = √(−2 log u₁) sin 2πu₂      (float64,
// glibc's log, cos and sin), rounded to float32. Entries [j0, j1) of the row, j0 even.
void fill_reference(float* out, uint64_t key, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; j += 2) {
    uint64_t c = static_cast<uint64_t>(j);
    uint64_t w1 = mix64(key + (c + 1) * kGolden), w2 = mix64(key + (c + 2) * kGolden);
    double u1 = (static_cast<double>(w1 >> 11) + 0.5) * kUnit, u2 = static_cast<double>(w2 >> 11) * kUnit;
    double r = std::sqrt(-2.0 * std::log(u1)), t = kTwoPi * u2;
    out[j - j0] = static_cast<float>(r * std::cos(t));
    if (j + 1 < j1) out[j - j0 + 1] = static_cast<float>(r * std::sin(t));
  }
}

// ---- Vectorised paths that reproduce the definition bit for bit ---------------------------------
// The scalar definition costs ~16 ns of CPU per entry, almost all in glibc's scalar log, cos and
// sin. LibTorch has no double-precision vector transcendental we can call from here, so the
// fast paths compute the same float64 chain with glibc's own vector math library (libmvec:
// AVX-512 8 lanes, AVX2 4 lanes) and SplitMix64 in vector registers.
//
// Why the float32 entries are identical to the definition's: glibc documents at most 4 ulp for
// libmvec's log/sin/cos and < 1 ulp for the scalar ones, so the two float64 results differ by at
// most ~10 ulp ≈ 2⁻⁴⁹ relative (measured over 2.7·10⁸ entries: 2⁻⁵⁰·¹). A lane v is accepted
// only when v·(1 − 2⁻⁴⁰) and v·(1 + 2⁻⁴⁰) round to the same float32 as v: rounding is
// monotone, so every value within that band, the definition's included, rounds to that float
// too. Lanes that fail (about 2·10⁻⁵ of them, and exact zeros, whose sign could differ) are
// recomputed by fill_reference. gaussian_rows_with() runs any of the paths, and the unit tests
// compare each with the definition.
//
// The libmvec functions are weak references, resolved when libmvec is loaded (CMakeLists.txt
// links it where found); without them, or on a CPU without AVX2, the definition runs.

#if defined(__x86_64__) && defined(__GNUC__) && defined(__GLIBC__)
#define TWEEDIE_GAUSSIAN_SIMD 1
#pragma GCC push_options
#pragma GCC target("avx2,avx512f,avx512dq")
// The target attributes repeat the pragma for clang, which ignores `#pragma GCC target` and
// otherwise refuses calls passing __m512d/__m256d to a function declared without the ISA.
extern "C" {
__m512d _ZGVeN8v_log(__m512d) __attribute__((weak, target("avx512f")));
__m512d _ZGVeN8v_cos(__m512d) __attribute__((weak, target("avx512f")));
__m512d _ZGVeN8v_sin(__m512d) __attribute__((weak, target("avx512f")));
__m256d _ZGVdN4v_log(__m256d) __attribute__((weak, target("avx2")));
__m256d _ZGVdN4v_cos(__m256d) __attribute__((weak, target("avx2")));
__m256d _ZGVdN4v_sin(__m256d) __attribute__((weak, target("avx2")));
}
#pragma GCC pop_options

constexpr double kBandLo = 1.0 - 0x1p-40, kBandHi = 1.0 + 0x1p-40;

// Stores 8 cos/sin pairs interleaved (c₀ s₀ c₁ s₁ …) and returns the lanes to recompute.
__attribute__((target("avx2"))) inline int store_pairs(float* out, __m256 fc, __m256 fs, __m256 bad) {
  __m256 a = _mm256_unpacklo_ps(fc, fs), b = _mm256_unpackhi_ps(fc, fs);
  _mm256_storeu_ps(out, _mm256_permute2f128_ps(a, b, 0x20));
  _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(a, b, 0x31));
  return _mm256_movemask_ps(bad);
}

// Lanes of v whose float32 rounding is not certain to equal the definition's (see above).
__attribute__((target("avx2,avx512f"))) inline __m256 doubtful512(__m512d v, __m256 f) {
  __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(v, _mm512_set1_pd(kBandLo)));
  __m256 hi = _mm512_cvtpd_ps(_mm512_mul_pd(v, _mm512_set1_pd(kBandHi)));
  return _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(f, lo, _CMP_NEQ_UQ), _mm256_cmp_ps(f, hi, _CMP_NEQ_UQ)),
                      _mm256_cmp_ps(f, _mm256_setzero_ps(), _CMP_EQ_OQ));
}

__attribute__((target("avx2,avx512f,avx512dq"))) inline __m512i mix512(__m512i z) {
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
                         _mm512_set1_epi64(static_cast<long long>(0xBF58476D1CE4E5B9ull)));
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
                         _mm512_set1_epi64(static_cast<long long>(0x94D049BB133111EBull)));
  return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

// The definition's float64 chain on one register of pairs (k1: the counters of the u₁ words),
// written once for both widths: P is the intrinsics prefix (_mm512, _mm256), MIX and TO_F64 the
// width's SplitMix64 and exact u64 → f64, LOG/COS/SIN libmvec's functions of that width. A macro
// because the two instantiations must be compiled under different target ISAs, which a shared
// template cannot be. Declares vc, vs: r·cos t and r·sin t.
#define TWEEDIE_BOX_MULLER(P, MIX, TO_F64, LOG, COS, SIN, k1, gold)                                   \
  const auto w1 = MIX(k1), w2 = MIX(P##_add_epi64(k1, gold));                                       \
  const auto u1 = P##_mul_pd(P##_add_pd(TO_F64(P##_srli_epi64(w1, 11)), P##_set1_pd(0.5)), P##_set1_pd(kUnit)); \
  const auto u2 = P##_mul_pd(TO_F64(P##_srli_epi64(w2, 11)), P##_set1_pd(kUnit));                   \
  const auto r = P##_sqrt_pd(P##_mul_pd(P##_set1_pd(-2.0), LOG(u1)));                               \
  const auto t = P##_mul_pd(P##_set1_pd(kTwoPi), u2);                                               \
  const auto vc = P##_mul_pd(r, COS(t)), vs = P##_mul_pd(r, SIN(t));

// AVX-512: 8 pairs (16 entries) per step, everything in vector registers.
__attribute__((target("avx2,avx512f,avx512dq"))) void fill_avx512(float* out, uint64_t key, int64_t j0, int64_t j1) {
  const __m512i lane2g = _mm512_mullo_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi64(static_cast<long long>(2 * kGolden)));
  const __m512i gold = _mm512_set1_epi64(static_cast<long long>(kGolden));
  int64_t j = j0;
  for (; j + 16 <= j1; j += 16) {
    const uint64_t c1 = key + (static_cast<uint64_t>(j) + 1) * kGolden;
    __m512i k1 = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(c1)), lane2g);
    TWEEDIE_BOX_MULLER(_mm512, mix512, _mm512_cvtepu64_pd, _ZGVeN8v_log, _ZGVeN8v_cos, _ZGVeN8v_sin, k1, gold)
    __m256 fc = _mm512_cvtpd_ps(vc), fs = _mm512_cvtpd_ps(vs);
    if (store_pairs(out + (j - j0), fc, fs, _mm256_or_ps(doubtful512(vc, fc), doubtful512(vs, fs))))
      fill_reference(out + (j - j0), key, j, j + 16);
  }
  fill_reference(out + (j - j0), key, j, j1);
}

// Exact uint64 < 2⁵³ to double without AVX-512DQ: high and low 32-bit halves through the 2⁵²
// exponent trick, then one exact sum.
__attribute__((target("avx2"))) inline __m256d u53_to_double(__m256i v) {
  const __m256i magic = _mm256_set1_epi64x(0x4330000000000000ll);  // 2⁵² as bits
  const __m256d two52 = _mm256_set1_pd(0x1p52);
  __m256d lo = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi64x(0xFFFFFFFFll)), magic)), two52);
  __m256d hi = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(v, 32), magic)), two52);
  return _mm256_add_pd(_mm256_mul_pd(hi, _mm256_set1_pd(0x1p32)), lo);
}

// Low 64 bits of a·b from three 32×32→64 products (AVX2 has no 64-bit multiply).
__attribute__((target("avx2"))) inline __m256i mullo256(__m256i a, uint64_t b) {
  const __m256i bl = _mm256_set1_epi64x(static_cast<long long>(b & 0xFFFFFFFFull));
  const __m256i bh = _mm256_set1_epi64x(static_cast<long long>(b >> 32));
  __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), bl), _mm256_mul_epu32(a, bh));
  return _mm256_add_epi64(_mm256_mul_epu32(a, bl), _mm256_slli_epi64(cross, 32));
}

__attribute__((target("avx2"))) inline __m256i mix256(__m256i z) {
  z = mullo256(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), 0xBF58476D1CE4E5B9ull);
  z = mullo256(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), 0x94D049BB133111EBull);
  return _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
}

__attribute__((target("avx2"))) inline __m128 doubtful256(__m256d v, __m128 f) {
  __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(v, _mm256_set1_pd(kBandLo)));
  __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(v, _mm256_set1_pd(kBandHi)));
  return _mm_or_ps(_mm_or_ps(_mm_cmpneq_ps(f, lo), _mm_cmpneq_ps(f, hi)), _mm_cmpeq_ps(f, _mm_setzero_ps()));
}

// AVX2: the same as fill_avx512 on two halves of 4 pairs.
__attribute__((target("avx2"))) void fill_avx2(float* out, uint64_t key, int64_t j0, int64_t j1) {
  const __m256i lane2g = _mm256_set_epi64x(static_cast<long long>(6 * kGolden), static_cast<long long>(4 * kGolden),
                                           static_cast<long long>(2 * kGolden), 0);
  const __m256i gold = _mm256_set1_epi64x(static_cast<long long>(kGolden));
  int64_t j = j0;
  for (; j + 16 <= j1; j += 16) {
    __m128 fc[2], fs[2], bad[2];
    for (int h = 0; h < 2; ++h) {
      const uint64_t c1 = key + (static_cast<uint64_t>(j + 8 * h) + 1) * kGolden;
      __m256i k1 = _mm256_add_epi64(_mm256_set1_epi64x(static_cast<long long>(c1)), lane2g);
      TWEEDIE_BOX_MULLER(_mm256, mix256, u53_to_double, _ZGVdN4v_log, _ZGVdN4v_cos, _ZGVdN4v_sin, k1, gold)
      fc[h] = _mm256_cvtpd_ps(vc), fs[h] = _mm256_cvtpd_ps(vs);
      bad[h] = _mm_or_ps(doubtful256(vc, fc[h]), doubtful256(vs, fs[h]));
    }
    if (store_pairs(out + (j - j0), _mm256_set_m128(fc[1], fc[0]), _mm256_set_m128(fs[1], fs[0]),
                    _mm256_set_m128(bad[1], bad[0])))
      fill_reference(out + (j - j0), key, j, j + 16);
  }
  fill_reference(out + (j - j0), key, j, j1);
}
#undef TWEEDIE_BOX_MULLER
#endif

using FillFn = void (*)(float*, uint64_t, int64_t, int64_t);

struct FillKernel {
  FillFn fn;
  const char* name;
};

// The paths this CPU (and the loaded libmvec) can run, fastest first; the definition last.
std::vector<FillKernel> usable_fills() {
  std::vector<FillKernel> k;
#ifdef TWEEDIE_GAUSSIAN_SIMD
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && _ZGVeN8v_log && _ZGVeN8v_cos &&
      _ZGVeN8v_sin)
    k.push_back({fill_avx512, "avx512"});
  if (__builtin_cpu_supports("avx2") && _ZGVdN4v_log && _ZGVdN4v_cos && _ZGVdN4v_sin) k.push_back({fill_avx2, "avx2"});
#endif
  k.push_back({fill_reference, "scalar"});
  return k;
}

const std::vector<FillKernel>& fills() {
  static const std::vector<FillKernel> k = usable_fills();
  return k;
}

const FillKernel& fill_kernel() { return fills().front(); }

uint64_t row_base(uint64_t seed) { return mix64(splitmix64(seed)); }

float entry_scale(const GaussianOptions& o) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(o.m)));
}

// Rows [r0, r1) with the given fill: the definition's scale is one float32 multiply per entry.
torch::Tensor rows_with(FillFn fill, const GaussianOptions& o, int64_t N, int64_t r0, int64_t r1) {
  TORCH_CHECK(0 <= r0 && r0 <= r1 && r1 <= o.m, "gaussian_rows: rows [", r0, ", ", r1, ") outside [0, ", o.m, ")");
  auto rows = torch::empty({r1 - r0, N}, torch::kFloat32);
  float* data = rows.data_ptr<float>();
  const uint64_t base = row_base(o.seed);
  at::parallel_for(r0, r1, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) fill(data + (i - r0) * N, base + static_cast<uint64_t>(i), 0, N);
  });
  if (!o.unit_variance) rows.mul_(entry_scale(o));
  return rows;
}

}  // namespace

torch::Tensor gaussian_rows(const GaussianOptions& o, int64_t N, int64_t r0, int64_t r1) {
  return rows_with(fill_kernel().fn, o, N, r0, r1);
}

std::vector<std::string> gaussian_kernels() {
  std::vector<std::string> names;
  for (auto& k : fills()) names.push_back(k.name);
  return names;
}

torch::Tensor gaussian_rows_with(const std::string& kernel, const GaussianOptions& o, int64_t N, int64_t r0,
                                 int64_t r1) {
  const auto& k = fills();
  auto it = std::find_if(k.begin(), k.end(), [&](const FillKernel& f) { return kernel == f.name; });
  TORCH_CHECK(it != k.end(), "gaussian_rows_with: generator '", kernel, "' is not available on this machine");
  return rows_with(it->fn, o, N, r0, r1);
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

// ---- Fused generation and product (matrix-free, CPU) ---------------------------------------------
// Entries are generated kPiece at a time (8 KB of float32, in L1) and consumed at once, so the
// product costs the generator plus an L1-resident multiply-add, with no M×N block in memory.
// Sums are float64 in a fixed order: y_i over the row's pieces in order, (Aᵀy)_j over rows in
// order. Threads split the rows (apply) or the columns (adjoint), never a sum, so the result is
// the same bit for bit whatever the thread count.
constexpr int64_t kPiece = 2048;
constexpr int kLanes = 8;

// The inner loops, compiled for AVX2 and for the baseline ISA (picked at load time): the
// shipped build targets baseline x86-64, where they would run at SSE2 width.
#define TWEEDIE_CLONES __attribute__((target_clones("avx2", "default")))

// acc[l] += Σ_k a[kLanes·k + l]·x[kLanes·k + l], n a multiple of kLanes.
template <typename T>
inline void dot_lanes(const float* a, const T* x, int64_t n, double* acc) {
  for (int64_t j = 0; j < n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(a[j + l]) * static_cast<double>(x[j + l]);
}
TWEEDIE_CLONES void dot_lanes_f32(const float* a, const float* x, int64_t n, double* acc) { dot_lanes(a, x, n, acc); }
TWEEDIE_CLONES void dot_lanes_f64(const float* a, const double* x, int64_t n, double* acc) { dot_lanes(a, x, n, acc); }
inline void dot_lanes_any(const float* a, const float* x, int64_t n, double* acc) { dot_lanes_f32(a, x, n, acc); }
inline void dot_lanes_any(const float* a, const double* x, int64_t n, double* acc) { dot_lanes_f64(a, x, n, acc); }

// acc[j] += c·a[j]
TWEEDIE_CLONES void axpy_f64(double c, const float* a, int64_t n, double* acc) {
  for (int64_t j = 0; j < n; ++j) acc[j] += c * static_cast<double>(a[j]);
}

// One piece of row `row`, columns [j0, j0 + len), as the definition's float32 entries.
void fill_piece(float* piece, const GaussianOptions& o, uint64_t base, int64_t row, int64_t j0, int64_t len) {
  fill_kernel().fn(piece, base + static_cast<uint64_t>(row), j0, j0 + len);
  if (!o.unit_variance) {
    const float s = entry_scale(o);
    for (int64_t j = 0; j < len; ++j) piece[j] *= s;
  }
}

// y[b, i] = Σ_j a_ij x[b, j]: x is [B, N], y is [B, M], both contiguous.
template <typename T>
void fused_apply(const GaussianOptions& o, const T* x, T* y, int64_t B, int64_t N) {
  const uint64_t base = row_base(o.seed);
  at::parallel_for(0, o.m, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> piece(kPiece);
    std::vector<double> acc(static_cast<size_t>(B * kLanes));
    for (int64_t i = i0; i < i1; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j0 = 0; j0 < N; j0 += kPiece) {
        const int64_t len = std::min(kPiece, N - j0), body = len - len % kLanes;
        fill_piece(piece.data(), o, base, i, j0, len);
        for (int64_t b = 0; b < B; ++b) {
          double* a = acc.data() + b * kLanes;
          const T* xb = x + b * N + j0;
          dot_lanes_any(piece.data(), xb, body, a);
          for (int64_t j = body; j < len; ++j) a[j - body] += static_cast<double>(piece[j]) * static_cast<double>(xb[j]);
        }
      }
      for (int64_t b = 0; b < B; ++b) {
        const double* a = acc.data() + b * kLanes;
        double sum = 0;
        for (int l = 0; l < kLanes; ++l) sum += a[l];
        y[b * o.m + i] = static_cast<T>(sum);
      }
    }
  });
}

// x[b, j] = Σ_i a_ij y[b, i]: y is [B, M], x is [B, N], both contiguous.
template <typename T>
void fused_adjoint(const GaussianOptions& o, const T* y, T* x, int64_t B, int64_t N) {
  const uint64_t base = row_base(o.seed);
  const int64_t pieces = (N + kPiece - 1) / kPiece;
  at::parallel_for(0, pieces, 1, [&](int64_t p0, int64_t p1) {
    std::vector<float> piece(kPiece);
    std::vector<double> acc(static_cast<size_t>(B * kPiece));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t j0 = p * kPiece, len = std::min(kPiece, N - j0);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t i = 0; i < o.m; ++i) {
        fill_piece(piece.data(), o, base, i, j0, len);
        for (int64_t b = 0; b < B; ++b)
          axpy_f64(static_cast<double>(y[b * o.m + i]), piece.data(), len, acc.data() + b * kPiece);
      }
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < len; ++j) x[b * N + j0 + j] = static_cast<T>(acc[b * kPiece + j]);
    }
  });
}

bool fused_ok(const torch::Tensor& t) {
  return t.device().is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
}

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

  // y[:, r0:r1] = x̄ A[r0:r1]ᵀ: fused on the CPU, else block by block.
  torch::Tensor forward_product(const torch::Tensor& xf) const {
    auto y = torch::empty({xf.size(0), o_.m}, xf.options());
    if (fused_ok(xf)) {
      auto xc = xf.contiguous();
      AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "gaussian_apply", [&] {
        fused_apply<scalar_t>(o_, xc.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), xc.size(0), xc.size(1));
      });
      return y;
    }
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
    if (fused_ok(y)) {
      auto yc = y.contiguous();
      auto x = torch::empty({y.size(0), N}, y.options());
      AT_DISPATCH_FLOATING_TYPES(yc.scalar_type(), "gaussian_adjoint", [&] {
        fused_adjoint<scalar_t>(o_, yc.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), yc.size(0), N);
      });
      return x;
    }
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
