// Experiment configs: parsing, validation errors and the expansion of sweeps into cells.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tweedie/core/error.h"
#include "tweedie/experiment/experiment.h"

namespace tweedie::experiment {
namespace {

using nlohmann::json;

json base() {
  return json::parse(R"({"name": "t", "images": "fashion-mnist:test:0-1",
    "problems": [{"name": "a", "op": "gaussian:m=8"}, {"op": "identity", "channel": "gaussian:sigma=0.1"}],
    "methods": [{"method": "diff-onebit", "set": {"lambda": [0.01, 0.1], "zeta": [0, 0.5, 1], "steps": 3}},
                {"label": "dms", "method": "sim-dms"}]})");
}

TEST(ExperimentConfig, ExpandsTheCartesianProductOfSweptValues) {
  auto cfg = ExperimentConfig::from_json(base(), "t.json");
  ASSERT_EQ(cfg.problems.size(), 2u);
  EXPECT_EQ(cfg.problems[1].name, "p1");
  EXPECT_EQ(cfg.problems[0].channel, "gaussian:sigma=0.05");
  auto cells = expand(cfg);
  ASSERT_EQ(cells.size(), 2u * (2 * 3 + 1));
  EXPECT_EQ(cells[0].id, "a/diff-onebit/lambda=0.01_zeta=0");
  EXPECT_EQ(cells[0].settings, (std::vector<std::string>{"lambda=0.01", "steps=3", "zeta=0"}));  // keys sorted
  EXPECT_EQ(cells[1].swept.at("lambda"), "0.1");
  EXPECT_EQ(cells[5].swept.at("zeta"), "1");
  EXPECT_EQ(cells[6].id, "a/dms/default");
  EXPECT_TRUE(cells[6].settings.empty());
  std::set<std::string> ids;
  for (auto& c : cells) EXPECT_TRUE(ids.insert(c.id).second) << c.id;
}

TEST(ExperimentConfig, MalformedConfigsAreInputErrors) {
  auto bad = [](auto edit) {
    json j = base();
    edit(j);
    return [j] { ExperimentConfig::from_json(j, "t.json"); };
  };
  EXPECT_THROW(bad([](json& j) { j.erase("images"); })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["imagez"] = 1; })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["problems"] = json::array(); })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["problems"][0].erase("op"); })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["problems"][1]["name"] = "a"; })(), InputError);       // not unique
  EXPECT_THROW(bad([](json& j) { j["methods"][1]["label"] = "diff-onebit"; })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["methods"][0]["set"]["lambda"] = json::array(); })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["methods"][0]["set"] = 3; })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["name"] = "a/b"; })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["batch"] = -1; })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["problems"][0]["sweep"] = 0.5; })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["problems"][0]["sweep"] = {{"sigma", "high"}}; })(), InputError);
  EXPECT_THROW(bad([](json& j) { j["problems"][0]["sweep"] = {{"a/b", 1}}; })(), InputError);
  // a problem axis parses into the spec
  json j = base();
  j["problems"][0]["sweep"] = {{"sigma", 0.5}};
  EXPECT_EQ(ExperimentConfig::from_json(j, "t.json").problems[0].sweep.at("sigma"), 0.5);
}

}  // namespace
}  // namespace tweedie::experiment
