// Spec strings, problem.json round trips (bit-identical operators), version checks and the
// validation of measurements loaded from disk.
#include <gtest/gtest.h>

#include <fstream>

#include "support/test_support.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/registry.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/version.h"
#include "tweedie/io/npy.h"
#include "tweedie/problem.h"

namespace tweedie {
namespace {

TEST(Spec, ParsesNamesAndParameters) {
  auto s = parse_spec(" gaussian: m = 392, var=1 ", "--op");
  EXPECT_EQ(s.name, "gaussian");
  ASSERT_EQ(s.args.size(), 2u);
  EXPECT_EQ(s.args[0], (std::pair<std::string, std::string>{"m", "392"}));
  EXPECT_EQ(parse_spec("identity", "--op").args.size(), 0u);
  EXPECT_THROW(parse_spec(":m=3", "--op"), InputError);
  EXPECT_THROW(parse_spec("g:m", "--op"), InputError);
  for (double v : {0.1, 1.0 / 3.0, 3.0, 1e-300, -2.5e10}) EXPECT_EQ(std::stod(format_number(v)), v);
  EXPECT_EQ(format_number(0.5), "0.5");
  EXPECT_EQ(format_number(3), "3");
}

TEST(Version, Comparison) {
  EXPECT_TRUE(version_newer("0.2.0", "0.1.9"));
  EXPECT_TRUE(version_newer("1.0", "0.9.9"));
  EXPECT_FALSE(version_newer("0.1.0", "0.1.0"));
  EXPECT_FALSE(version_newer("0.1", "0.1.0"));
  EXPECT_THROW(version_newer("x.1", "0.1"), InputError);
}

TEST(Problem, JsonRoundTripRebuildsBitIdenticalOperatorAndNoise) {
  auto x = torch::rand({2, 1, 16, 16}) * 2 - 1;
  for (auto [op, ch] : std::vector<std::pair<std::string, std::string>>{
           {"gaussian:m=64", "sign:sigma=0.5"},
           {"gaussian:m=64,impl=matrix-free", "logistic"},
           {"motion-blur:size=9|random-mask:ratio=0.5", "gaussian:sigma=0.05"},
           {"mri:accel=4", "gaussian:sigma=0.01"},
           {"srht:ratio=0.25&box-mask:size=4", "quantize:bits=3,sigma=0.01"}}) {
    SCOPED_TRACE(op + " + " + ch);
    Problem p = make_problem(op, ch, {1, 16, 16}, 7);
    auto y = simulate(p, x);  // resolves data-driven parameters (quantize delta)
    auto j = problem_to_json(p);
    Problem q = problem_from_json(nlohmann::json::parse(j.dump()), "problem.json");
    EXPECT_EQ(q.op->spec(), p.op->spec());
    EXPECT_EQ(q.channel->spec(), p.channel->spec());
    EXPECT_TRUE(torch::equal(q.op->apply(x), p.op->apply(x)));
    EXPECT_TRUE(torch::equal(simulate(q, x), y));
    EXPECT_TRUE(torch::isfinite(p.channel->nll(p.op->apply(x), y)).all().item<bool>());
  }
}

TEST(Problem, FutureVersionsAndBrokenFilesAreRefused) {
  Problem p = make_problem("identity", "gaussian:sigma=0.1", {1, 4, 4}, 1);
  auto j = problem_to_json(p);
  EXPECT_NO_THROW(problem_from_json(j, "p.json"));
  auto expect_error = [](const nlohmann::json& bad, const std::string& needle) {
    try {
      problem_from_json(bad, "p.json");
      ADD_FAILURE() << "accepted " << bad.dump();
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto future = j;
  future["tweedie_version"] = "99.0.0";
  expect_error(future, "newer than this tweedie");
  future = j;
  future["format_version"] = kProblemFormatVersion + 1;
  expect_error(future, "newer than this tweedie");
  auto missing = j;
  missing.erase("x_shape");
  expect_error(missing, "x_shape");
  auto wrong = j;
  wrong["format"] = "something-else";
  expect_error(wrong, "not a tweedie problem");
  auto shape = j;
  shape["y_shape"] = {1, 4, 5};
  expect_error(shape, "y_shape");
  auto bad_op = j;
  bad_op["operator"]["spec"] = "warp:speed=9";
  expect_error(bad_op, "unknown operator 'warp'");
}

TEST(Problem, LoadValidatesMeasurements) {
  auto dir = test::scratch_dir();
  Problem p = make_problem("gaussian:m=8", "sign:sigma=0.5", {16}, 3);
  auto x = torch::randn({2, 16});
  auto y = simulate(p, x);
  atomic_write_file((dir / "problem.json").string(), problem_to_json(p).dump());
  io::write_npy((dir / "y.npy").string(), y);
  auto lp = load_problem(dir.string());
  EXPECT_TRUE(torch::equal(lp.y, y));
  EXPECT_TRUE(torch::equal(lp.problem.op->apply(x), p.op->apply(x)));
  auto expect_error = [&](const torch::Tensor& bad, const std::string& needle) {
    io::write_npy((dir / "y.npy").string(), bad);
    try {
      load_problem((dir / "problem.json").string());
      ADD_FAILURE() << "accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto nan = y.clone();
  nan[0][3] = std::numeric_limits<float>::quiet_NaN();
  expect_error(nan, "NaN or Inf");
  auto inf = y.clone();
  inf[1][0] = std::numeric_limits<float>::infinity();
  expect_error(inf, "NaN or Inf");
  expect_error(torch::ones({2, 9}), "expected [B, 8]");
  expect_error(y * 0.5, "-1 or +1");
  expect_error(torch::ones({2, 8}, torch::kComplexFloat), "complex");
}

}  // namespace
}  // namespace tweedie
