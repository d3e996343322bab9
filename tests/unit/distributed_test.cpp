// The distributed context in a single process (the multi-rank behaviour is tested end to end on
// 127.0.0.1 in tests/cli/test_distributed.py) and the shared batch loop, solve::solve_batched.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>

#include "tweedie/core/distributed.h"
#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/gaussian_prior.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/problem.h"
#include "tweedie/solve/batched.h"

namespace tweedie {
namespace {

// Sets (or, with nullopt, unsets) the torchrun variables for one test, restoring them after.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::optional<std::string>>& vars) {
    for (const char* k : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"}) {
      const char* v = std::getenv(k);
      saved_[k] = v ? std::optional<std::string>(v) : std::nullopt;
      ::unsetenv(k);
    }
    for (auto& [k, v] : vars)
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
  }
  ~ScopedEnv() {
    for (auto& [k, v] : saved_) {
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

std::string input_error(DistMode mode) {
  try {
    DistEnv env;
    read_dist_env(mode, env);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Distributed, WithoutTheVariablesIsOneProcessAndEveryCollectiveIsTheIdentity) {
  ScopedEnv env({});
  Distributed d = Distributed::from_env(DistMode::kAuto);
  EXPECT_FALSE(d.active());
  EXPECT_EQ(d.rank(), 0);
  EXPECT_EQ(d.world_size(), 1);
  EXPECT_TRUE(d.is_root());
  torch::Tensor t = torch::arange(5, torch::kFloat32), before = t.clone();
  d.all_reduce_sum(t, "t");
  d.broadcast(t, "t");
  d.barrier("nothing");
  EXPECT_TRUE(torch::equal(t, before));
  EXPECT_EQ(d.broadcast_string("k", "v"), "v");
  // the work queue's counter, local: 1, 2, 3 … per key
  EXPECT_EQ(d.counter_add("q", 1), 1);
  EXPECT_EQ(d.counter_add("q", 1), 2);
  EXPECT_EQ(d.counter_add("other", 1), 1);
}

TEST(Distributed, EnvironmentIsCheckedAndNamed) {
  {
    ScopedEnv env({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}});
    EXPECT_EQ(input_error(DistMode::kAuto), "RANK=2 but WORLD_SIZE=2: RANK must be below WORLD_SIZE");
    DistEnv e;
    EXPECT_FALSE(read_dist_env(DistMode::kOff, e)) << "--dist off ignores the variables";
  }
  {
    ScopedEnv env({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29511"},
                   {"LOCAL_RANK", "1"}});
    DistEnv e;
    ASSERT_TRUE(read_dist_env(DistMode::kAuto, e));
    EXPECT_EQ(e.rank, 1);
    EXPECT_EQ(e.world_size, 2);
    EXPECT_EQ(e.master_addr, "10.0.0.1");
    EXPECT_EQ(e.port, 29511);
    EXPECT_EQ(e.local_rank, 1);
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "70000"}});
    EXPECT_NE(input_error(DistMode::kAuto).find("MASTER_PORT=70000"), std::string::npos);
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}});
    EXPECT_NE(input_error(DistMode::kAuto).find("MASTER_ADDR is not set"), std::string::npos);
  }
  {
    ScopedEnv env({});
    EXPECT_NE(input_error(DistMode::kOn).find("is not set"), std::string::npos);
    EXPECT_EQ(input_error(DistMode::kAuto), "");
  }
  EXPECT_THROW(parse_dist_mode("maybe"), InputError);
  EXPECT_EQ(parse_dist_mode("on"), DistMode::kOn);
}

// ---- solve_batched ---------------------------------------------------------------------------------

TEST(SolveBatched, ChunksShareOneGeneratorAndCostsAdd) {
  op::Shape item{1, 8, 8};
  Problem problem = make_problem("gaussian:m=48", "sign:sigma=0.3", item, 3);
  torch::Generator g = make_generator(11);
  torch::Tensor x = (randn(op::with_batch(3, item), g) * 0.5).clamp(-1, 1);
  torch::Tensor y = simulate(problem, x);
  auto base = diffusion::make_schedule("linear", 1000);
  auto m = torch::zeros(item, torch::kFloat64), v = torch::full(item, 0.25, torch::kFloat64);
  diffusion::EpsDenoiser prior(diffusion::gaussian_eps_model(base, m, v), base);
  // diff-onebit with ζ = 1 draws fresh noise every step: the generator's path shows.
  Params params = solve::resolve_solver("diff-onebit", {"steps=4", "zeta=1"});

  // The loop by hand: chunks [0, 2) and [2, 3), one generator carried across.
  torch::Generator gen = make_generator(7);
  std::vector<torch::Tensor> parts;
  int64_t nfe = 0;
  for (auto [i, j] : {std::pair<int64_t, int64_t>{0, 2}, {2, 3}}) {
    torch::Tensor yb = y.slice(0, i, j);
    solve::SolveContext ctx{problem, yb, prior, gen, {}};
    auto r = solve::solver_registry().find("diff-onebit").make.run(params, ctx);
    parts.push_back(r.estimate);
    nfe += r.cost.nfe;
  }
  std::vector<std::pair<int64_t, int64_t>> chunks;
  solve::BatchedOptions o;
  o.batch = 2;
  o.chunk_done = [&](int64_t i, int64_t j, const solve::Result&) { chunks.emplace_back(i, j); };
  torch::Generator gen2 = make_generator(7);
  auto out = solve::solve_batched("diff-onebit", params, problem, y, &prior, gen2, o);
  EXPECT_TRUE(torch::equal(out.estimate, torch::cat(parts)));
  EXPECT_EQ(out.calls, 2);
  EXPECT_EQ(out.cost.nfe, nfe);
  EXPECT_EQ(chunks, (std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {2, 3}}));
  EXPECT_EQ(out.estimate.scalar_type(), torch::kFloat32);

  // Guard: the batch is part of the result (one call of 3 draws the noise in another order), so
  // the equality above is not vacuous.
  torch::Generator gen3 = make_generator(7);
  o.batch = 0;
  auto whole = solve::solve_batched("diff-onebit", params, problem, y, &prior, gen3, o);
  EXPECT_EQ(whole.calls, 1);
  EXPECT_FALSE(torch::allclose(whole.estimate, out.estimate));
  // A prior-based method without a prior is a defect of the caller.
  torch::Generator gen4 = make_generator(7);
  EXPECT_THROW(solve::solve_batched("diff-onebit", params, problem, y, nullptr, gen4, o), InternalError);
}

}  // namespace
}  // namespace tweedie
