// Single-index models (seed 000, the lemma behind SIM-DMIS): with A_ij ~ N(0, 1) and
// y = f(A x) + noise, ‖x‖ = 1, the link-agnostic estimate w = Aᵀy/M satisfies E w = μ x with
// μ = E[f(g) g], g ~ N(0, 1), and fluctuates around it:
//   E‖w_⊥‖² = (N − 1) E[y²]/M,   Var w_∥ = (E[y² g²] − μ²)/M,
// so cos(w, x) ≈ μ / √(μ² + ((N − 1) E[y²] + E[y² g²] − μ²)/M), which grows with M.
// Only the operator and y are used to form w — never the channel.
#include <gtest/gtest.h>

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/problem.h"

namespace tweedie {
namespace {

struct Link {
  std::string channel;
  double mu, Ey2, Ey2g2;  // E[f(g)g], E[y²], E[y²g²]
};

double predicted_cosine(const Link& l, int64_t N, int64_t M) {
  return l.mu / std::sqrt(l.mu * l.mu + ((N - 1) * l.Ey2 + l.Ey2g2 - l.mu * l.mu) / static_cast<double>(M));
}

double measured_cosine(const Link& l, int64_t N, int64_t M, uint64_t seed) {
  auto gen = make_generator(seed + 100);
  auto x = torch::randn({1, N}, gen, torch::kFloat32);
  x = x / x.norm();
  Problem p = make_problem("gaussian:m=" + std::to_string(M) + ",var=1,impl=dense", l.channel, {N}, seed);
  auto y = simulate(p, x);
  auto w = p.op->adjoint(y) / static_cast<double>(M);  // operator + y only
  return (w * x).sum().item<double>() / w.norm().item<double>();
}

TEST(SingleIndexLemma, CosineOfAty_MatchesMuPrediction) {
  const int64_t N = 1024;
  const double s1 = 0.1, s3 = 0.05;
  // 1-bit: y = sign(g + e), e ~ N(0, s1²): μ = √(2/π)/√(1 + s1²) (Stein), y² = 1, E[y²g²] = 1.
  // cubic: y = g³ + e: μ = E g⁴ = 3, E y² = E g⁶ + s3² = 15 + s3², E[y²g²] = E g⁸ + s3² = 105 + s3².
  std::vector<Link> links{{"sign:sigma=0.1", std::sqrt(2 / M_PI) / std::sqrt(1 + s1 * s1), 1.0, 1.0},
                          {"cubic:sigma=0.05", 3.0, 15 + s3 * s3, 105 + s3 * s3}};
  for (auto& l : links) {
    SCOPED_TRACE(l.channel);
    double previous = 0;
    for (int64_t M : {N / 4, N, 4 * N}) {
      double mean = 0;
      const int reps = 3;
      for (int r = 0; r < reps; ++r) mean += measured_cosine(l, N, M, 10 * r + 1) / reps;
      double want = predicted_cosine(l, N, M);
      std::printf("  %-18s M = %5ld: cos = %.4f, predicted %.4f\n", l.channel.c_str(), static_cast<long>(M), mean, want);
      EXPECT_GT(mean, previous);  // grows with M
      previous = mean;
      if (M == 4 * N) {
        EXPECT_NEAR(mean, want, 0.05 * want);
      }
    }
  }
}

}  // namespace
}  // namespace tweedie
