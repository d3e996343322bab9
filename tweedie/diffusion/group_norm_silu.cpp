#include "tweedie/diffusion/group_norm_silu.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>
#include <utility>
#include <vector>

#include "tweedie/core/error.h"

namespace tweedie::diffusion {
namespace {

// The loops are compiled twice, for AVX2 with FMA and for the baseline ISA, and picked once
// from the CPU's features (target_clones cannot name two features in one clone, and AVX2 alone
// leaves the polynomial without FMA). GCC vector types of 8 float32 lanes, lowered to each
// version's width; the helpers taking them are always inlined, so no vector crosses a call
// (CMakeLists.txt turns GCC's -Wpsabi note about that off).
#define TWEEDIE_GN_KERNEL [[gnu::always_inline]] inline
typedef float GnF8 __attribute__((vector_size(32)));
typedef int GnI8 __attribute__((vector_size(32)));

[[gnu::always_inline]] inline GnF8 gn_load(const float* p) {
  GnF8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
[[gnu::always_inline]] inline void gn_store(float* p, GnF8 v) { std::memcpy(p, &v, sizeof v); }
[[gnu::always_inline]] inline GnF8 gn_splat(float v) { return GnF8{v, v, v, v, v, v, v, v}; }
// Lanes of `a` where mask is set (all ones), else of `b`.
[[gnu::always_inline]] inline GnF8 gn_select(GnI8 mask, GnF8 a, GnF8 b) {
  return reinterpret_cast<GnF8>((mask & reinterpret_cast<GnI8>(a)) | (~mask & reinterpret_cast<GnI8>(b)));
}

// e^v, Cephes' expf: v = k·ln2 + r with k = ⌊v·log₂e + ½⌋ and ln2 split in two for an exact
// k·ln2; e^r ≈ 1 + r + r²·P(r), P of degree 5; 2^k put into the exponent bits. v is clamped
// to ±88.376 (e^v then spans [0, 2.4e38]; below, subnormal results are flushed to 0).
[[gnu::always_inline]] inline GnF8 gn_exp(GnF8 v) {
  const GnF8 hi = gn_splat(88.3762626647949f), lo = gn_splat(-88.3762626647949f);
  v = gn_select(v < hi, v, hi);
  v = gn_select(v > lo, v, lo);
  const GnF8 t = v * 1.44269504088896341f + 0.5f;
  GnI8 k = __builtin_convertvector(t, GnI8);     // truncates toward zero
  k += __builtin_convertvector(k, GnF8) > t;     // -1 where that rounded up: now ⌊t⌋
  const GnF8 kf = __builtin_convertvector(k, GnF8);
  const GnF8 r = v - kf * 0.693359375f - kf * -2.12194440e-4f;
  GnF8 p = gn_splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const GnI8 bits = (k + 127) << 23;
  return p * reinterpret_cast<GnF8>(bits);
}

// Σ (p[i] − mu), or Σ (p[i] − mu)² (squares), in float32 lanes over blocks of 512 values, the
// block sums in float64. mu = 0 gives the plain sum (x − 0 is x exactly).
TWEEDIE_GN_KERNEL double gn_sum(const float* p, int64_t n, float mu, bool squares) {
  double total = 0;
  int64_t i = 0;
  while (i + 8 <= n) {
    GnF8 acc = gn_splat(0.0f);
    const int64_t end = std::min(n, i + 512) & ~int64_t{7};
    for (; i + 8 <= end; i += 8) {
      const GnF8 d = gn_load(p + i) - mu;
      acc += squares ? d * d : d;
    }
    for (int l = 0; l < 8; ++l) total += acc[l];
  }
  for (; i < n; ++i) total += squares ? (p[i] - mu) * (p[i] - mu) : p[i] - mu;
  return total;
}

// A slab's mean μ and r = 1/√(σ² + eps), σ² the biased variance by a second pass.
TWEEDIE_GN_KERNEL std::pair<double, double> gn_stats(const float* p, int64_t n, double eps) {
  const double mean = gn_sum(p, n, 0.0f, false) / static_cast<double>(n);
  const double var = gn_sum(p, n, static_cast<float>(mean), true) / static_cast<double>(n);
  return {mean, 1.0 / std::sqrt(var + eps)};
}

// The activation: v, or SiLU(v) = v / (1 + e^(−v)); 8 lanes and one value.
[[gnu::always_inline]] inline GnF8 gn_act(GnF8 v, bool silu) { return silu ? v / (gn_exp(-v) + 1.0f) : v; }
[[gnu::always_inline]] inline float gn_act(float v, bool silu) { return silu ? v / (1.0f + std::exp(-v)) : v; }

// A channel's norm, affine map and scale-shift folded into y = a·x + d:
//   a = r·γ·(1 + s),  d = (β − μ·r·γ)·(1 + s) + t   (scale s and shift t null: none).
std::pair<float, float> gn_coefficients(double mean, double r, float gamma, float beta, const float* scale,
                                        const float* shift) {
  double a = r * gamma, d = beta - mean * a;
  if (scale) {
    const double s1 = 1.0 + *scale;
    a *= s1;
    d = d * s1 + *shift;
  }
  return {static_cast<float>(a), static_cast<float>(d)};
}

// y = act(a·x + d).
TWEEDIE_GN_KERNEL void gn_apply(const float* x, float* y, int64_t n, float a, float d, bool silu) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) gn_store(y + i, gn_act(gn_load(x + i) * a + d, silu));
  for (; i < n; ++i) y[i] = gn_act(x[i] * a + d, silu);
}

// One (item, group) slab of n = cpg·HW values at x (out at y): statistics, then the output,
// channel by channel.
struct GnSlab {
  const float* x;
  float* y;
  int64_t cpg, hw;
  const float *gamma, *beta, *scale, *shift;  // gamma, beta at the group's first channel; scale, shift too, or null
  double eps;
  bool silu;
};
TWEEDIE_GN_KERNEL void gn_slab(const GnSlab& s) {
  const auto [mean, r] = gn_stats(s.x, s.cpg * s.hw, s.eps);
  for (int64_t c = 0; c < s.cpg; ++c) {
    const auto [a, d] = gn_coefficients(mean, r, s.gamma[c], s.beta[c], s.scale ? s.scale + c : nullptr,
                                        s.shift ? s.shift + c : nullptr);
    gn_apply(s.x + c * s.hw, s.y + c * s.hw, s.hw, a, d, s.silu);
  }
}
__attribute__((target("avx2,fma"))) void gn_slab_avx2(const GnSlab& s) { gn_slab(s); }
void gn_slab_base(const GnSlab& s) { gn_slab(s); }
using GnSlabFn = void (*)(const GnSlab&);

// ---- Backward (NCHW) ------------------------------------------------------------------------
// For one (item, group) slab, with n = (x − μ)·r, a = γ·n + β, k = 1 + s, z = a·k + t and
// y = SiLU(z) (or z), given dy:
//   dz = dy·SiLU'(z),  SiLU'(z) = σ(z)·(1 + z·(1 − σ(z)))       (dz = dy without SiLU)
//   per channel c:  Σdz, Σdz·n  →  dt = Σdz,  ds = γ·Σdz·n + β·Σdz,
//                   dβ += k·Σdz,  dγ += k·Σdz·n   (over items, by the caller)
//   dn = dz·k·γ;   dx = r·(dn − S1/m − n·S2/m),  S1 = Σ dn,  S2 = Σ dn·n  over the slab's m values.
// Pass 1 writes dz into dx and sums; pass 2 turns dz into dx in place. Statistics recomputed as the
// forward computes them (gn_stats).
struct GnSlabGrad {
  const float *x, *dy;
  float* dx;
  int64_t cpg, hw;
  const float *gamma, *beta, *scale, *shift;  // as GnSlab
  double eps;
  bool silu;
  double *sum_dz, *sum_dzn;  // per channel of the slab (cpg values each)
};
TWEEDIE_GN_KERNEL void gn_slab_grad(const GnSlabGrad& s) {
  const int64_t m = s.cpg * s.hw;
  const auto [mean, r] = gn_stats(s.x, m, s.eps);
  const float mu = static_cast<float>(mean), rf = static_cast<float>(r);
  double S1 = 0, S2 = 0;
  for (int64_t c = 0; c < s.cpg; ++c) {
    const float g = s.gamma[c], b = s.beta[c];
    const float k = s.scale ? 1.0f + s.scale[c] : 1.0f, t = s.shift ? s.shift[c] : 0.0f;
    const float* x = s.x + c * s.hw;
    const float* dy = s.dy + c * s.hw;
    float* dz = s.dx + c * s.hw;
    double sdz = 0, sdzn = 0;
    int64_t i = 0;
    while (i + 8 <= s.hw) {  // float32 lanes, float64 sums per block of 512
      GnF8 a1 = gn_splat(0.0f), a2 = gn_splat(0.0f);
      const int64_t end = std::min(s.hw, i + 512) & ~int64_t{7};
      for (; i + 8 <= end; i += 8) {
        const GnF8 n = (gn_load(x + i) - mu) * rf;
        GnF8 d = gn_load(dy + i);
        if (s.silu) {
          const GnF8 z = (n * g + b) * k + t;
          const GnF8 sig = 1.0f / (gn_exp(-z) + 1.0f);
          d = d * (sig * (z * (1.0f - sig) + 1.0f));
        }
        gn_store(dz + i, d);
        a1 += d, a2 += d * n;
      }
      for (int l = 0; l < 8; ++l) sdz += a1[l], sdzn += a2[l];
    }
    for (; i < s.hw; ++i) {
      const float n = (x[i] - mu) * rf;
      float d = dy[i];
      if (s.silu) {
        const float z = (n * g + b) * k + t;
        const float sig = 1.0f / (1.0f + std::exp(-z));
        d = d * (sig * (z * (1.0f - sig) + 1.0f));
      }
      dz[i] = d;
      sdz += d, sdzn += static_cast<double>(d) * n;
    }
    s.sum_dz[c] = sdz, s.sum_dzn[c] = sdzn;
    S1 += static_cast<double>(k) * g * sdz, S2 += static_cast<double>(k) * g * sdzn;
  }
  const float c1 = static_cast<float>(S1 / static_cast<double>(m)), c2 = static_cast<float>(S2 / static_cast<double>(m));
  for (int64_t c = 0; c < s.cpg; ++c) {
    const float kg = (s.scale ? 1.0f + s.scale[c] : 1.0f) * s.gamma[c];
    const float* x = s.x + c * s.hw;
    float* d = s.dx + c * s.hw;
    int64_t i = 0;
    for (; i + 8 <= s.hw; i += 8) {
      const GnF8 n = (gn_load(x + i) - mu) * rf;
      gn_store(d + i, (gn_load(d + i) * kg - c1 - n * c2) * rf);
    }
    for (; i < s.hw; ++i) d[i] = (d[i] * kg - c1 - (x[i] - mu) * rf * c2) * rf;
  }
}
__attribute__((target("avx2,fma"))) void gn_slab_grad_avx2(const GnSlabGrad& s) { gn_slab_grad(s); }
void gn_slab_grad_base(const GnSlabGrad& s) { gn_slab_grad(s); }
using GnSlabGradFn = void (*)(const GnSlabGrad&);

// Channels-last: a pixel's C values are contiguous, so the statistics run per channel, vectorised
// across channels, and are summed into groups afterwards. Over pixels [p0, p1) of one item's
// [P, C] block: out[c] += Σ_p (x[p, c] − mu[c]) (squares = false, mu may be null for 0) or its
// square, in float32 lanes over blocks of 64 pixels, the block sums in float64. acc: C floats.
TWEEDIE_GN_KERNEL void gn_channel_sums(const float* __restrict x, int64_t p0, int64_t p1, int64_t C,
                                       const float* __restrict mu, bool squares, float* __restrict acc,
                                       double* __restrict out) {
  for (int64_t p = p0; p < p1;) {
    const int64_t end = std::min(p1, p + 64);
    for (int64_t c = 0; c < C; ++c) acc[c] = 0;
    for (; p < end; ++p) {
      const float* row = x + p * C;
      if (!squares && !mu) {
        for (int64_t c = 0; c < C; ++c) acc[c] += row[c];
      } else {
        for (int64_t c = 0; c < C; ++c) {
          const float dv = row[c] - mu[c];
          acc[c] += squares ? dv * dv : dv;
        }
      }
    }
    for (int64_t c = 0; c < C; ++c) out[c] += acc[c];
  }
}
// y[p, c] = SiLU(a[c]·x[p, c] + d[c]) (or without SiLU) over pixels [p0, p1).
TWEEDIE_GN_KERNEL void gn_apply_rows(const float* x, float* y, int64_t p0, int64_t p1, int64_t C, const float* a,
                                     const float* d, bool silu) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* in = x + p * C;
    float* o = y + p * C;
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) gn_store(o + c, gn_act(gn_load(in + c) * gn_load(a + c) + gn_load(d + c), silu));
    for (; c < C; ++c) o[c] = gn_act(in[c] * a[c] + d[c], silu);
  }
}
struct GnRows {  // one pass over pixels [p0, p1) of an item's [P, C] block
  const float* x;
  float* y;
  int64_t p0, p1, C;
  const float *mu, *a, *d;
  float* acc;
  double* out;
  bool squares, silu;
};
TWEEDIE_GN_KERNEL void gn_rows(const GnRows& r) {
  if (r.out) return gn_channel_sums(r.x, r.p0, r.p1, r.C, r.mu, r.squares, r.acc, r.out);
  gn_apply_rows(r.x, r.y, r.p0, r.p1, r.C, r.a, r.d, r.silu);
}
__attribute__((target("avx2,fma"))) void gn_rows_avx2(const GnRows& r) { gn_rows(r); }
void gn_rows_base(const GnRows& r) { gn_rows(r); }
using GnRowsFn = void (*)(const GnRows&);

bool gn_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// Channels-last x [B, H, W, C] in memory: three passes (channel sums, squared deviations from
// the group means, output), each spread over (item, pixel chunk) tasks, with per-task partial
// sums reduced in task order so the result does not depend on the thread count.
void group_norm_silu_nhwc(const float* px, float* py, int64_t B, int64_t C, int64_t P, int64_t groups,
                          const float* pg, const float* pb, const float* ps, const float* pt, double eps, bool silu) {
  static const GnRowsFn rows_fn = gn_has_avx2_fma() ? gn_rows_avx2 : gn_rows_base;
  const int64_t cpg = C / groups;
  // Chunks of ~64k values: enough work per task to be worth a thread (see the NCHW grain).
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 16) / C);
  const int64_t K = (P + chunk - 1) / chunk, tasks = B * K;
  std::vector<double> part(static_cast<size_t>(tasks * C));
  std::vector<float> mu(static_cast<size_t>(B * C)), a(static_cast<size_t>(B * C)), d(static_cast<size_t>(B * C));
  std::vector<double> mean(static_cast<size_t>(B * groups)), var(static_cast<size_t>(B * groups));
  auto sums = [&](bool squares) {
    std::fill(part.begin(), part.end(), 0.0);
    at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
      std::vector<float> acc(static_cast<size_t>(C));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / K, k = t % K;
        rows_fn(GnRows{px + b * P * C, nullptr, k * chunk, std::min(P, (k + 1) * chunk), C,
                       squares ? mu.data() + b * C : nullptr, nullptr, nullptr, acc.data(),
                       part.data() + t * C, squares, silu});
      }
    });
    // per (item, group): Σ over the item's chunks (in order) and the group's channels
    std::vector<double>& into = squares ? var : mean;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < groups; ++g) {
        double total = 0;
        for (int64_t k = 0; k < K; ++k)
          for (int64_t c = g * cpg; c < (g + 1) * cpg; ++c) total += part[static_cast<size_t>((b * K + k) * C + c)];
        into[static_cast<size_t>(b * groups + g)] = total / static_cast<double>(P * cpg);
      }
  };
  sums(false);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) mu[static_cast<size_t>(b * C + c)] = static_cast<float>(mean[static_cast<size_t>(b * groups + c / cpg)]);
  sums(true);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const size_t bg = static_cast<size_t>(b * groups + c / cpg), bc = static_cast<size_t>(b * C + c);
      std::tie(a[bc], d[bc]) = gn_coefficients(mean[bg], 1.0 / std::sqrt(var[bg] + eps), pg[c], pb[c],
                                               ps ? ps + bc : nullptr, pt ? pt + bc : nullptr);
    }
  at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / K, k = t % K;
      rows_fn(GnRows{px + b * P * C, py + b * P * C, k * chunk, std::min(P, (k + 1) * chunk), C, nullptr,
                     a.data() + b * C, d.data() + b * C, nullptr, nullptr, false, silu});
    }
  });
}

// What the forward and backward kernels read besides x: sizes, the checked group count, and
// γ, β, scale, shift as contiguous float32 ([C], [C], [B, C], [B, C]; the last two optional).
struct GnArgs {
  int64_t B, C, HW, cpg;
  bool affine;
  torch::Tensor g, b, s, t;
  GnArgs(const torch::Tensor& x, int64_t groups, const torch::Tensor& gamma, const torch::Tensor& beta,
         const torch::Tensor& scale, const torch::Tensor& shift)
      : B(x.size(0)), C(x.size(1)), HW(x.size(2) * x.size(3)), cpg(0), affine(scale.defined()) {
    if (groups <= 0 || C % groups != 0)
      throw InputError("group_norm_silu: " + std::to_string(C) + " channels in " + std::to_string(groups) + " groups");
    cpg = C / groups;
    g = gamma.contiguous(), b = beta.contiguous();
    if (affine) s = scale.reshape({B, C}).contiguous(), t = shift.reshape({B, C}).contiguous();
  }
  const float* gamma() const { return g.data_ptr<float>(); }
  const float* beta() const { return b.data_ptr<float>(); }
  const float* scale() const { return affine ? s.data_ptr<float>() : nullptr; }
  const float* shift() const { return affine ? t.data_ptr<float>() : nullptr; }
};

// What both kernels read: CPU float32 x of 4 dimensions (NCHW, or channels-last when allowed),
// gamma, and scale when given.
bool gn_inputs(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& scale, bool channels_last) {
  if (!x.defined() || !x.device().is_cpu() || x.scalar_type() != at::kFloat || x.dim() != 4) return false;
  if (!x.is_contiguous() && !(channels_last && x.is_contiguous(at::MemoryFormat::ChannelsLast))) return false;
  if (!gamma.defined() || gamma.scalar_type() != at::kFloat || !gamma.device().is_cpu()) return false;
  return !scale.defined() || (scale.scalar_type() == at::kFloat && scale.device().is_cpu());
}

}  // namespace

bool group_norm_silu_applies(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& scale) {
  if (!gn_inputs(x, gamma, scale, /*channels_last=*/true)) return false;
  if (!c10::GradMode::is_enabled()) return true;
  return !x.requires_grad() && !gamma.requires_grad() && !(scale.defined() && scale.requires_grad());
}

torch::Tensor group_norm_silu(const torch::Tensor& x, int64_t groups, const torch::Tensor& gamma,
                              const torch::Tensor& beta, double eps, const torch::Tensor& scale,
                              const torch::Tensor& shift, bool silu) {
  RECORD_FUNCTION("tweedie::group_norm_silu", std::vector<c10::IValue>{});  // a row in op profiles
  const GnArgs A(x, groups, gamma, beta, scale, shift);
  const int64_t B = A.B, C = A.C, HW = A.HW, cpg = A.cpg;
  const bool affine = A.affine;
  const bool nhwc = !x.is_contiguous();  // channels-last (group_norm_silu_applies)
  torch::Tensor out = at::empty_like(x, nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
  const float* px = x.data_ptr<float>();
  float* py = out.data_ptr<float>();
  const float *pg = A.gamma(), *pb = A.beta(), *ps = A.scale(), *pt = A.shift();
  if (nhwc) {
    group_norm_silu_nhwc(px, py, B, C, HW, groups, pg, pb, ps, pt, eps, silu);
    return out;
  }
  const int64_t n = cpg * HW;
  // At least 64k values per thread: waking a sleeping thread (OMP_WAIT_POLICY=PASSIVE) takes
  // ~40 µs, longer than a 32x32x32 activation's whole pass (the 32x32 network at batch 1).
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(n, 1));
  static const GnSlabFn slab_fn = gn_has_avx2_fma() ? gn_slab_avx2 : gn_slab_base;
  at::parallel_for(0, B * groups, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t item = i / groups, first = (i % groups) * cpg, at = (item * C + first) * HW;
      slab_fn(GnSlab{px + at, py + at, cpg, HW, pg + first, pb + first, affine ? ps + item * C + first : nullptr,
                     affine ? pt + item * C + first : nullptr, eps, silu});
    }
  });
  return out;
}

std::vector<torch::Tensor> group_norm_silu_backward(const torch::Tensor& dy_in, const torch::Tensor& x_in,
                                                    int64_t groups, const torch::Tensor& gamma,
                                                    const torch::Tensor& beta, double eps, const torch::Tensor& scale,
                                                    const torch::Tensor& shift, bool silu) {
  RECORD_FUNCTION("tweedie::group_norm_silu_backward", std::vector<c10::IValue>{});
  const torch::Tensor x = x_in.contiguous(), dy = dy_in.contiguous();
  const GnArgs A(x, groups, gamma, beta, scale, shift);
  const int64_t B = A.B, C = A.C, HW = A.HW, cpg = A.cpg;
  const bool affine = A.affine;
  torch::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
  std::vector<double> sum_dz(static_cast<size_t>(B * C)), sum_dzn(static_cast<size_t>(B * C));
  const float *px = x.data_ptr<float>(), *pdy = dy.data_ptr<float>();
  float* pdx = dx.data_ptr<float>();
  const float *pg = A.gamma(), *pb = A.beta(), *ps = A.scale(), *pt = A.shift();
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(cpg * HW, 1));
  static const GnSlabGradFn slab_fn = gn_has_avx2_fma() ? gn_slab_grad_avx2 : gn_slab_grad_base;
  at::parallel_for(0, B * groups, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t item = i / groups, first = (i % groups) * cpg, at = (item * C + first) * HW;
      slab_fn(GnSlabGrad{px + at, pdy + at, pdx + at, cpg, HW, pg + first, pb + first,
                         affine ? ps + item * C + first : nullptr, affine ? pt + item * C + first : nullptr, eps, silu,
                         sum_dz.data() + item * C + first, sum_dzn.data() + item * C + first});
    }
  });
  // The parameters' gradients, summed over items in order (the same bits on any thread count).
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor dgamma = torch::zeros({C}, opts), dbeta = torch::zeros({C}, opts);
  torch::Tensor dscale = affine ? torch::empty({B, C}, opts) : torch::Tensor();
  torch::Tensor dshift = affine ? torch::empty({B, C}, opts) : torch::Tensor();
  double *dg = dgamma.data_ptr<double>(), *db = dbeta.data_ptr<double>();
  double* ds = affine ? dscale.data_ptr<double>() : nullptr;
  double* dt = affine ? dshift.data_ptr<double>() : nullptr;
  for (int64_t item = 0; item < B; ++item)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t j = item * C + c;
      const double k = affine ? 1.0 + ps[j] : 1.0;
      dg[c] += k * sum_dzn[j], db[c] += k * sum_dz[j];
      if (affine) ds[j] = pg[c] * sum_dzn[j] + pb[c] * sum_dz[j], dt[j] = sum_dz[j];
    }
  auto back = [](const torch::Tensor& grad, const torch::Tensor& like) {
    return grad.defined() ? grad.to(torch::kFloat32).view(like.sizes()) : torch::Tensor();
  };
  return {dx, back(dgamma, gamma), back(dbeta, beta), back(dscale, scale), back(dshift, shift)};
}

namespace {
// Autograd for the fused kernel: the forward is the inference kernel, the backward the one
// above; both recompute the statistics from x. Without scale-shift, scale and shift arrive as
// empty tensors (LibTorch 1.13's custom functions take no undefined tensor arguments).
torch::Tensor or_none(const torch::Tensor& t) { return t.numel() ? t : torch::Tensor(); }
struct GroupNormSiluFn : public torch::autograd::Function<GroupNormSiluFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& gamma, const torch::Tensor& beta, const torch::Tensor& scale_in,
                               const torch::Tensor& shift_in, int64_t groups, double eps, bool silu) {
    const torch::Tensor scale = or_none(scale_in), shift = or_none(shift_in);
    ctx->save_for_backward({x, gamma, beta, scale_in, shift_in});
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["silu"] = silu;
    at::AutoDispatchBelowADInplaceOrView guard;
    return group_norm_silu(x, groups, gamma, beta, eps, scale, shift, silu);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto g = group_norm_silu_backward(grads[0], saved[0], ctx->saved_data["groups"].toInt(), saved[1], saved[2],
                                      ctx->saved_data["eps"].toDouble(), or_none(saved[3]), or_none(saved[4]),
                                      ctx->saved_data["silu"].toBool());
    return {g[0], g[1], g[2], g[3], g[4], torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};
}  // namespace

bool group_norm_silu_trains(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& scale) {
  return c10::GradMode::is_enabled() && gamma.defined() && gamma.requires_grad() &&
         gn_inputs(x, gamma, scale, /*channels_last=*/false);
}

torch::Tensor group_norm_silu_autograd(const torch::Tensor& x, int64_t groups, const torch::Tensor& gamma,
                                       const torch::Tensor& beta, double eps, const torch::Tensor& scale,
                                       const torch::Tensor& shift, bool silu) {
  const torch::Tensor none = torch::empty({0}, x.options());
  return GroupNormSiluFn::apply(x, gamma, beta, scale.defined() ? scale : none, shift.defined() ? shift : none,
                                groups, eps, silu);
}

}  // namespace tweedie::diffusion
