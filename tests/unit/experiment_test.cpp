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

TEST(ExperimentConfig, SetForFixesValuesForOneProblemUnderTheSameLabel) {
  json j = base();
  j["methods"][0]["set_for"] = {{"p1", {{"zeta", 0.25}, {"lr", 2}}}};
  auto cfg = ExperimentConfig::from_json(j, "t.json");
  auto cells = expand(cfg);
  // problem a keeps the 2 x 3 grid; on p1 zeta is fixed (a 2-point lambda sweep) and lr is added
  ASSERT_EQ(cells.size(), (2u * 3 + 1) + (2 + 1));
  EXPECT_EQ(cells[0].id, "a/diff-onebit/lambda=0.01_zeta=0");
  EXPECT_EQ(cells[7].id, "p1/diff-onebit/lambda=0.01");
  EXPECT_EQ(cells[7].settings, (std::vector<std::string>{"lambda=0.01", "steps=3", "zeta=0.25", "lr=2"}));
  EXPECT_EQ(cells[8].settings[0], "lambda=0.1");
  EXPECT_EQ(cells[9].id, "p1/dms/default");
  // a problem that does not exist, or a value that is not an object, is refused
  j["methods"][0]["set_for"] = {{"nope", {{"zeta", 1}}}};
  EXPECT_THROW(ExperimentConfig::from_json(j, "t.json"), InputError);
  j["methods"][0]["set_for"] = {{"a", 3}};
  EXPECT_THROW(ExperimentConfig::from_json(j, "t.json"), InputError);
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
