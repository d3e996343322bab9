// Matrix-free Gaussian sensing at image scale: 3×256×256 with M = N/16 = 12288. The dense
// matrix would take 9.7 GB; the matrix-free operator must stay under 200 MB of peak memory
// (measured as the rise of VmHWM over the resident set before the call) and produce the same
// rows as the dense definition.
#include <gtest/gtest.h>

#include <cstdio>

#include "tweedie/core/memory.h"
#include "tweedie/core/runtime.h"
#include "tweedie/op/gaussian.h"
#include "tweedie/op/registry.h"

namespace tweedie::op {
namespace {

TEST(MatrixFreeGaussian, PeakMemoryAtImageScaleStaysUnder200MB) {
  const Shape in{3, 256, 256};
  const int64_t N = numel(in), M = N / 16;
  auto gen = make_generator(0);
  auto x = torch::randn({1, 3, 256, 256}, gen, torch::kFloat32);
  auto A = make_operator("gaussian:ratio=0.0625,impl=matrix-free", in, 5);
  ASSERT_EQ(A->out_shape(), (Shape{M}));
  // Warm up allocator and thread pool on a tiny operator, then measure the big one.
  make_operator("gaussian:m=4,impl=matrix-free", {16}, 1)->apply(torch::zeros({1, 16}));
  if (!reset_peak_resident()) GTEST_SKIP() << "cannot reset VmHWM (/proc/self/clear_refs)";
  int64_t base = resident_bytes();
  torch::Tensor y, xt;
  {
    torch::NoGradGuard no_grad;
    y = A->apply(x);
    xt = A->adjoint(y);
  }
  int64_t peak = peak_resident_bytes() - base;
  std::printf("matrix-free gaussian 3x256x256, M = %ld: peak memory rise %.1f MB (apply + adjoint)\n",
              static_cast<long>(M), peak / 1048576.0);
  EXPECT_LT(peak, int64_t{200} << 20);
  EXPECT_TRUE(torch::isfinite(xt).all().item<bool>());
  // The rows it used are the dense definition's: y_i = ⟨a_i, x⟩ for a few rows.
  GaussianOptions o;
  o.m = M, o.seed = 5;
  for (int64_t r : {int64_t{0}, M / 2, M - 3}) {
    auto rows = gaussian_rows(o, N, r, r + 3);
    auto want = x.flatten(1).matmul(rows.t());
    EXPECT_TRUE(torch::allclose(y.slice(1, r, r + 3), want, 1e-4, 1e-4)) << "rows " << r;
  }
  // ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ at this size too.
  double lhs = (y.to(torch::kFloat64) * y.to(torch::kFloat64)).sum().item<double>();
  double rhs = (x.to(torch::kFloat64) * xt.to(torch::kFloat64)).sum().item<double>();
  EXPECT_NEAR(lhs, rhs, 1e-5 * std::abs(lhs));
}

}  // namespace
}  // namespace tweedie::op
