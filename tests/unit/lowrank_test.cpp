// Low-rank recovery (tweedie/lowrank): exact recovery of every problem class, GD and ScaledGD
// agreeing at κ = 1 (and not at κ = 10), ScaledGD's invariance to re-balancing the factors,
// ScaledGD(λ) from a small random start, the spectral SVD, the sparse estimator, errors on bad
// input, and the SVG plot. Small sizes: the whole suite runs in a few seconds.
#include <gtest/gtest.h>

#include <cmath>

#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"
#include "tweedie/lowrank/matrix.h"
#include "tweedie/io/plot.h"
#include "tweedie/lowrank/problem.h"
#include "tweedie/lowrank/tucker.h"

namespace tweedie::lowrank {
namespace {

using torch::Tensor;
using io::line_plot_svg;
using io::PlotOptions;
using io::PlotSeries;

ProblemSpec spec_of(Task task, int64_t n, int64_t r, double kappa = 1) {
  ProblemSpec s;
  s.task = task;
  s.n1 = n;
  s.n2 = n + 10;  // rectangular, so n1/n2 mix-ups show
  s.rank = r;
  s.kappa = kappa;
  return s;
}

ProblemSpec tucker_spec(int64_t n1, int64_t n2, int64_t n3, int64_t r, double kappa, double ratio) {
  ProblemSpec s;
  s.task = Task::tucker;
  s.n1 = n1;
  s.n2 = n2;
  s.n3 = n3;
  s.rank = r;
  s.kappa = kappa;
  s.ratio = ratio;
  return s;
}

MatrixProblem make(const ProblemSpec& s, uint64_t seed = 1) {
  auto gen = make_generator(seed);
  return generate_matrix_problem(s, gen);
}

// PSD sensing 20×20, rank 2, κ = 10, m = 300: the ScaledGD(λ) setting.
MatrixProblem psd_sensing() {
  auto s = spec_of(Task::sensing, 20, 2, 10);
  s.n2 = 20;
  s.symmetric = true;
  s.measurements = 300;
  return make(s);
}

// 80×90, rank 3, κ = 5, half of the entries observed: well sampled.
MatrixProblem well_sampled_completion() {
  auto s = spec_of(Task::completion, 80, 3, 5);
  s.ratio = 0.5;
  return make(s);
}

MatrixResult solve(const MatrixProblem& p, MatrixOptions o, uint64_t seed = 2) {
  auto gen = make_generator(seed);
  return solve_matrix(p, o, gen);
}

MatrixOptions with(Method m, int64_t iterations, double tolerance = 1e-10) {
  MatrixOptions o;
  o.method = m;
  o.stop.max_iterations = iterations;
  o.stop.tolerance = tolerance;
  return o;
}

double dense_error(const Tensor& X, const MatrixProblem& p) {
  auto T = dense_truth(p);
  return ((X - T).norm() / T.norm()).item<double>();
}

// An invertible r×r matrix with condition number ~ `cond`.
Tensor ill_conditioned(int64_t r, double cond, uint64_t seed) {
  auto gen = make_generator(seed);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto Q1 = std::get<0>(torch::linalg_qr(torch::randn({r, r}, gen, f64)));
  auto Q2 = std::get<0>(torch::linalg_qr(torch::randn({r, r}, gen, f64)));
  auto s = torch::logspace(0, std::log10(cond), r, 10.0, f64);
  return Q1.mm(torch::diag(s)).mm(Q2.t());
}

// ---- exact recovery, noiseless and well sampled ------------------------------------------------

TEST(LowRankRecovery, SensingScaledGdAndGd) {
  auto s = spec_of(Task::sensing, 20, 2, 3);
  s.measurements = 400;
  auto p = make(s);
  for (Method m : {Method::scaledgd, Method::gd}) {
    auto res = solve(p, with(m, 3000));
    SCOPED_TRACE(method_name(m));
    EXPECT_EQ(res.stop, "tolerance");
    EXPECT_LT(dense_error(res.estimate(), p), 1e-6);  // checked densely, not through the solver's own metric
    EXPECT_LT(res.history.back().residual, 1e-8);
  }
}

TEST(LowRankRecovery, CompletionScaledGdAndGd) {
  auto p = well_sampled_completion();
  for (Method m : {Method::scaledgd, Method::gd}) {
    auto res = solve(p, with(m, 2000));
    SCOPED_TRACE(method_name(m));
    EXPECT_EQ(res.stop, "tolerance");
    EXPECT_LT(dense_error(res.estimate(), p), 1e-6);
  }
}

TEST(LowRankRecovery, CompletionWithScaledProjection) {
  auto p = well_sampled_completion();
  auto o = with(Method::scaledgd, 500);
  o.projection = 3;
  auto res = solve(p, o);
  EXPECT_EQ(res.stop, "tolerance");
  EXPECT_LT(dense_error(res.estimate(), p), 1e-6);
}

TEST(LowRankRecovery, RobustPcaRecoversLowRankPartDespiteOutliers) {
  auto s = spec_of(Task::rpca, 80, 3, 5);
  s.outliers = 0.1;
  auto p = make(s);
  // The outliers are large: the plain observations are far from X*.
  ASSERT_GT(dense_error(p.Y, p), 1.0);
  auto res = solve(p, with(Method::scaledgd, 500));
  EXPECT_EQ(res.stop, "tolerance");
  EXPECT_LT(dense_error(res.estimate(), p), 1e-6);
}

TEST(LowRankRecovery, TuckerCompletionScaledGd) {
  auto gen = make_generator(1);
  auto p = generate_tucker_problem(tucker_spec(24, 20, 16, 3, 3, 0.3), gen);
  TuckerOptions o;
  o.stop.max_iterations = 600;
  auto res = solve_tucker(p, o, gen);
  EXPECT_EQ(res.stop, "tolerance");
  EXPECT_LT(((res.estimate() - p.truth).norm() / p.truth.norm()).item<double>(), 1e-6);
}

TEST(LowRankRecovery, SymmetricSensingFromSmallRandomInitWithExactRank) {
  // ScaledGD(λ) with the correct rank converges exactly from a random start (seed 003, ICML 2023).
  auto p = psd_sensing();
  auto o = with(Method::scaledgd_lambda, 600, 1e-8);
  o.init = Init::random;
  auto res = solve(p, o);
  EXPECT_EQ(res.stop, "tolerance");
  EXPECT_LT(dense_error(res.estimate(), p), 1e-6);
  EXPECT_TRUE(torch::equal(res.left, res.right));
}

// ---- GD vs ScaledGD -------------------------------------------------------------------------

// At κ = 1 the spectral start is balanced with RᵀR ≈ LᵀL ≈ Σ₀ ≈ σ₁ I, so ScaledGD with step η is GD
// with step η/σ₁ up to O(‖Σ₀ − σ₁I‖) terms: the first updates point the same way, the trajectories
// stay much closer to each other than to X*, and both need about as many iterations. At κ = 10 the
// preconditioner is far from a multiple of I and GD needs many times more iterations.
TEST(LowRankScaledGd, AgreesWithGdAtKappaOneOnly) {
  auto s = spec_of(Task::completion, 80, 3, 1);
  s.n2 = 80;
  s.ratio = 0.6;
  auto p = make(s);
  auto gen = make_generator(2);
  auto start = initialize(p, with(Method::scaledgd, 0), gen);
  std::vector<Tensor> sgd_path, gd_path;
  auto record = [&](std::vector<Tensor>& path, Method m, int64_t T) {
    auto o = with(m, 1);
    MatrixStart st = start;
    MatrixResult res;
    for (int64_t t = 0; t <= T; ++t) {
      path.push_back(st.left.mm(st.right.t()));
      res = iterate(p, st, o);
      st.left = res.left;
      st.right = res.right;
    }
  };
  record(sgd_path, Method::scaledgd, 40);
  record(gd_path, Method::gd, 40);
  auto X = dense_truth(p);
  double e0 = ((sgd_path[0] - X).norm() / X.norm()).item<double>();
  ASSERT_GT(e0, 0.05);  // a start that still has far to go
  double step1 = ((sgd_path[1] - gd_path[1]).norm() / (sgd_path[1] - sgd_path[0]).norm()).item<double>();
  EXPECT_LT(step1, 0.15);
  double apart = 0;
  for (size_t t = 0; t < sgd_path.size(); ++t)
    apart = std::max(apart, ((sgd_path[t] - gd_path[t]).norm() / X.norm()).item<double>());
  EXPECT_LT(apart, 0.2 * e0);

  auto to_tol = [&](const MatrixProblem& q, Method m, int64_t cap) { return solve(q, with(m, cap, 1e-8)); };
  auto a = to_tol(p, Method::scaledgd, 400), b = to_tol(p, Method::gd, 400);
  ASSERT_EQ(a.stop, "tolerance");
  ASSERT_EQ(b.stop, "tolerance");
  EXPECT_LT(std::abs(a.iterations - b.iterations), 0.25 * static_cast<double>(a.iterations));

  s.kappa = 10;
  auto q = make(s);
  auto c = to_tol(q, Method::scaledgd, 400);
  ASSERT_EQ(c.stop, "tolerance");
  auto d = to_tol(q, Method::gd, 3 * c.iterations);
  EXPECT_EQ(d.stop, "max-iterations");  // GD is more than 3× slower at κ = 10
  EXPECT_GT(d.history.back().error, 1e-8);
}

// ScaledGD commutes with (L, R) → (L Q, R Q⁻ᵀ): the products L_t R_tᵀ are the same from both
// starts (seed 003, "invariance to invertible transforms"). GD's are not.
TEST(LowRankScaledGd, InvariantToFactorRebalancing) {
  auto s = spec_of(Task::completion, 60, 3, 10);
  s.ratio = 0.5;
  auto p = make(s);
  auto gen = make_generator(2);
  auto start = initialize(p, with(Method::scaledgd, 0), gen);
  auto Q = ill_conditioned(3, 50, 9);
  MatrixStart moved = start;
  moved.left = start.left.mm(Q);
  moved.right = start.right.mm(torch::linalg_inv(Q).t());
  ASSERT_LT((moved.left.mm(moved.right.t()) - start.left.mm(start.right.t())).norm().item<double>(), 1e-12);
  for (Method m : {Method::scaledgd, Method::gd}) {
    auto o = with(m, 20, 0);
    auto a = iterate(p, start, o), b = iterate(p, moved, o);
    double gap = ((a.estimate() - b.estimate()).norm() / a.estimate().norm()).item<double>();
    if (m == Method::scaledgd) {
      EXPECT_LT(gap, 1e-9);
      for (size_t t = 0; t < a.history.size(); ++t) EXPECT_NEAR(a.history[t].error, b.history[t].error, 1e-9);
    } else {
      EXPECT_GT(gap, 1e-3) << "GD is not invariant; the test would not notice a broken preconditioner otherwise";
    }
  }
}

TEST(LowRankScaledGd, TuckerInvariantToFactorRebalancing) {
  auto gen = make_generator(3);
  auto p = generate_tucker_problem(tucker_spec(16, 14, 12, 2, 5, 0.4), gen);
  TuckerOptions o;
  o.stop = {15, 0, 0, 1e3};
  auto start = tucker_initialize(p, o, gen);
  TuckerFactors moved = start;
  for (int64_t k = 0; k < 3; ++k) {
    auto Q = ill_conditioned(2, 20, 10 + static_cast<uint64_t>(k));
    moved.factors[k] = start.factors[k].mm(Q);                                  // U_k → U_k Q_k
    moved.core = mode_product(moved.core, torch::linalg_inv(Q), k);             // S → S ×_k Q_k⁻¹
  }
  auto a = tucker_iterate(p, start, o), b = tucker_iterate(p, moved, o);
  EXPECT_LT(((a.estimate() - b.estimate()).norm() / a.estimate().norm()).item<double>(), 1e-9);
}

// ---- ScaledGD(λ), over-parameterised, small random start ------------------------------------

TEST(LowRankScaledGdLambda, PicksUpTheSignalFasterThanGdWhenOverparameterized) {
  auto p = psd_sensing();
  auto o = with(Method::scaledgd_lambda, 150, 0);
  o.rank = 6;  // r' = 3 r*
  o.init = Init::random;
  o.init_scale = 1e-6;
  auto fast = solve(p, o);
  o.method = Method::gd;
  auto slow = solve(p, o);
  EXPECT_GT(fast.lambda, 0);
  EXPECT_LT(fast.history.back().error, 1e-3);
  EXPECT_GT(slow.history.back().error, 1e-2);
  EXPECT_EQ(fast.left.size(1), 6);
}

// ---- building blocks ------------------------------------------------------------------------

TEST(LowRankSpectral, RandomizedSvdMatchesFullSvd) {
  auto gen = make_generator(4);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto U = std::get<0>(torch::linalg_qr(torch::randn({300, 40}, gen, f64)));
  auto V = std::get<0>(torch::linalg_qr(torch::randn({200, 40}, gen, f64)));
  auto sv = torch::arange(1, 41, f64).pow(-2.0);
  auto M = U.mm(torch::diag(sv)).mm(V.t());
  SpectralOptions o;
  o.full_svd_limit = 0;  // force the randomized path
  auto svd = top_svd(M, 5, o, gen);
  EXPECT_TRUE(torch::allclose(svd.S, sv.slice(0, 0, 5), 1e-10, 0));
  auto P = svd.U.mm(svd.U.t()), P_true = U.slice(1, 0, 5).mm(U.slice(1, 0, 5).t());
  EXPECT_LT((P - P_true).norm().item<double>(), 1e-8);
}

TEST(LowRankError, FactoredDistanceIsAccurateForTinyDifferences) {
  auto gen = make_generator(5);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto L = torch::randn({50, 4}, gen, f64), R = torch::randn({40, 4}, gen, f64), D = torch::randn({40, 4}, gen, f64);
  EXPECT_NEAR(factored_distance(L, R, L, D), (L.mm(R.t()) - L.mm(D.t())).norm().item<double>(), 1e-10);
  double eps = 1e-12;
  double exact = eps * L.mm(D.t()).norm().item<double>();  // ‖L Rᵀ − L (R + εD)ᵀ‖ = ε ‖L Dᵀ‖
  EXPECT_NEAR(factored_distance(L, R, L, R + eps * D) / exact, 1.0, 1e-2);
  EXPECT_NEAR(factored_norm(L, R), L.mm(R.t()).norm().item<double>(), 1e-9);
}

TEST(LowRankRpca, SparsifyKeepsEntriesLargestInRowAndColumn) {
  auto gen = make_generator(6);
  auto Z = torch::randn({10, 20}, gen, torch::TensorOptions().dtype(torch::kFloat64));
  auto S = sparsify(Z, 0.2);  // ⌊0.2·20⌋ = 4 per row, ⌊0.2·10⌋ = 2 per column
  auto a = Z.abs();
  for (int64_t i = 0; i < 10; ++i)
    for (int64_t j = 0; j < 20; ++j) {
      int64_t above_in_row = (a[i] > a[i][j]).sum().item<int64_t>();
      int64_t above_in_col = (a.select(1, j) > a[i][j]).sum().item<int64_t>();
      double expected = above_in_row < 4 && above_in_col < 2 ? Z[i][j].item<double>() : 0.0;
      EXPECT_EQ(S[i][j].item<double>(), expected) << i << "," << j;
    }
  EXPECT_EQ(sparsify(Z, 0.04).count_nonzero().item<int64_t>(), 0);  // ⌊0.04·10⌋ = 0 per column
}

TEST(LowRankProblem, KappaSweepSharesFactorsAndSamplingPattern) {
  auto s = spec_of(Task::completion, 50, 4, 1);
  auto a = make(s);
  s.kappa = 100;
  auto b = make(s);
  EXPECT_TRUE(torch::equal(a.rows, b.rows));
  EXPECT_TRUE(torch::equal(a.cols, b.cols));
  ASSERT_EQ(b.truth.singular_values.size(), 4u);
  EXPECT_DOUBLE_EQ(b.truth.singular_values.front() / b.truth.singular_values.back(), 100);
  auto sv = torch::linalg_svdvals(dense_truth(b));
  EXPECT_NEAR(sv[0].item<double>() / sv[3].item<double>(), 100, 1e-8);
  EXPECT_NEAR(b.ratio, static_cast<double>(b.values.numel()) / (50.0 * 60.0), 0.05);

  s.task = Task::powerlaw;
  s.ratio = 1;
  auto pl = make(s);
  EXPECT_EQ(pl.values.numel(), 50 * 60);
  auto M = observed_matrix(pl);
  auto Msv = torch::linalg_svdvals(M);
  EXPECT_NEAR(Msv[9].item<double>(), 0.1, 1e-10);  // σ_i = 1/i
  auto best = torch::linalg_svd(M, false);         // truth = best rank-4 approximation
  auto Mr = std::get<0>(best).slice(1, 0, 4).mm(torch::diag(std::get<1>(best).slice(0, 0, 4))).mm(
      std::get<2>(best).slice(0, 0, 4));
  EXPECT_LT((Mr - dense_truth(pl)).norm().item<double>(), 1e-10);
}

TEST(LowRankProblem, CompressedPatternMatchesDenseProducts) {
  auto p = make(spec_of(Task::completion, 30, 2));
  auto dense = observed_matrix(p);
  // Shuffle the entries, as a hand-built problem might hold them; index_entries restores order.
  auto gen = make_generator(7);
  auto order = torch::randperm(p.values.numel(), gen, torch::TensorOptions().dtype(torch::kLong));
  p.rows = p.rows.index_select(0, order);
  p.cols = p.cols.index_select(0, order);
  p.values = p.values.index_select(0, order);
  index_entries(p);
  auto key = p.rows * p.n2 + p.cols;
  EXPECT_TRUE((key.slice(0, 1) > key.slice(0, 0, -1)).all().item<bool>());
  EXPECT_TRUE(torch::equal(observed_matrix(p), dense));
  EXPECT_TRUE(torch::equal(observed_csr(p, p.values).to_dense(), dense));
  EXPECT_TRUE(torch::equal(observed_csr_transpose(p, p.values).to_dense(), dense.t()));
  EXPECT_NO_THROW(validate(p));
}

TEST(LowRankProblem, BadInputIsAnInputError) {
  auto s = spec_of(Task::completion, 10, 3);
  s.rank = 11;  // > min(10, 20)
  EXPECT_THROW(make(s), InputError);
  s.rank = 3;
  for (double ratio : {0.0, -0.1, 1.5, static_cast<double>(NAN)}) {
    s.ratio = ratio;
    EXPECT_THROW(make(s), InputError) << ratio;
    s.task = Task::tucker;
    auto gen = make_generator(0);
    EXPECT_THROW(generate_tucker_problem(s, gen), InputError) << ratio;
    s.task = Task::completion;
  }
  s.ratio = 0.5;
  s.kappa = 0.5;
  EXPECT_THROW(make(s), InputError);

  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto Y = torch::ones({6, 5}, f64), mask = torch::ones({6, 5}, f64);
  EXPECT_THROW(completion_problem(Y, mask, 6), InputError);  // rank > dims
  EXPECT_THROW(completion_problem(Y, torch::zeros({6, 5}, f64), 2), InputError);  // nothing observed
  Y[2][3] = NAN;
  EXPECT_THROW(completion_problem(Y, mask, 2), InputError);  // non-finite observed value
  mask[2][3] = 0;
  EXPECT_NO_THROW(completion_problem(Y, mask, 2));  // a NaN where nothing is observed is fine
  EXPECT_THROW(rpca_problem(Y, 2, 0.1), InputError);
  EXPECT_THROW(tucker_problem(torch::full({4, 4, 4}, INFINITY, f64), torch::ones({4, 4, 4}, f64), 2), InputError);
  auto A = torch::randn({30, 4, 4}, f64), y = torch::randn({30}, f64);
  y[0] = INFINITY;
  EXPECT_THROW(sensing_problem(A, y, 2, false), InputError);
  EXPECT_THROW(sensing_problem(A, torch::randn({29}, f64), 2, false), InputError);

  auto p = make(spec_of(Task::completion, 20, 2));
  auto o = with(Method::scaledgd, 5);
  o.rank = 21;  // fitted rank > dims
  EXPECT_THROW(solve(p, o), InputError);
  o.rank = 0;
  o.eta = 0;
  EXPECT_THROW(solve(p, o), InputError);
  EXPECT_THROW(parse_method("newton"), InputError);
  EXPECT_THROW(parse_task("hankel"), InputError);
}

TEST(LowRankStop, DivergenceAndMonitor) {
  auto p = make(spec_of(Task::completion, 30, 2));
  auto o = with(Method::gd, 200);
  o.eta = 50;  // far beyond stability
  int64_t seen = 0;
  auto gen = make_generator(2);
  auto res = solve_matrix(p, o, gen, [&](const IterationStats& s) {
    EXPECT_EQ(s.iteration, seen++);
    return true;
  });
  EXPECT_EQ(res.stop, "diverged");
  EXPECT_EQ(seen, static_cast<int64_t>(res.history.size()));
  EXPECT_LT(res.iterations, 200);
  // a monitor that returns false stops the run after that row, as a solver's does
  o.eta = 0.5;
  auto gen2 = make_generator(2);
  auto stopped = solve_matrix(p, o, gen2, [](const IterationStats& s) { return s.iteration < 3; });
  EXPECT_EQ(stopped.stop, "stopped");
  EXPECT_EQ(stopped.history.size(), 4u);
}

TEST(LowRankPlot, SvgHasOneLinePerSeriesAndEscapesLabels) {
  PlotSeries a{"GD κ=10 <cap>", {0, 1, 2, 3}, {1, 1e-2, 1e-4, 1e-6}};
  PlotSeries b{"ScaledGD", {0, 1, 2}, {1, NAN, 1e-8}};  // NaN splits the line in two
  PlotOptions o;
  o.title = "a & b";
  auto svg = line_plot_svg({a, b}, o);
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = svg.find(needle); at != std::string::npos; at = svg.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<polyline"), 3u);
  EXPECT_NE(svg.find("GD κ=10 &lt;cap&gt;"), std::string::npos);
  EXPECT_NE(svg.find("a &amp; b"), std::string::npos);
  EXPECT_NE(svg.find(">1e-08<"), std::string::npos);  // decade ticks down to the smallest value
  EXPECT_EQ(svg.rfind("</svg>\n"), svg.size() - 7);
}

}  // namespace
}  // namespace tweedie::lowrank
