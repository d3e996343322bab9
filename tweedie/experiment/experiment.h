#pragma once
// The experiment runner: a grid of problems × methods × hyper-parameters on a set of images,
// described by one JSON file (experiments/*.json), run cell by cell and resumable.
//
//   {"name": "onebit-cs", "images": ["fashion-mnist:test:0-99"], "seed": 0, "batch": 25,
//    "prior": "models/fmnist32/model.safetensors",          (optional; the shipped prior)
//    "classifier": "auto",   (optional: auto = the shipped one for Fashion-MNIST-like images, none, or a path)
//    "problems": [{"name": "s0.3", "op": "gaussian:ratio=0.5", "channel": "sign:sigma=0.3",
//                  "sweep": {"sigma": 0.3}}],                  (optional: an axis across problems)
//    "methods": [{"method": "diff-onebit", "set": {"lambda": [0.01, 0.02], "steps": 20}},
//                {"label": "sim-dmis", "method": "sim-dmis"}]}
//
// A value list in "set" is swept (the cartesian product over every listed key); scalars are
// fixed. Every (problem, method label, setting) is one cell, solved on all images in batches of
// "batch" and scored against the truth. A finished cell is stored in OUT/cells/ with its
// estimate and metrics, and is not recomputed when the experiment is run again (the cell's
// description — problem specs, method, resolved options, images, seed, prior hash — must match,
// otherwise it is recomputed).
//
// Outputs (OUT = the "output" key or --output): results.csv (one row per image per cell),
// table.md (mean ± standard error per cell), comparison_<problem>.png (rows: images; columns:
// truth, Aᵀy, then the first setting of every method label), sweep_<problem>_<label>_<key>.csv
// and .svg for every swept numeric key, sweep_<key>_<label>.csv/.svg for every problem axis,
// and experiment.json (the resolved grid, versions).
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace tweedie::experiment {

struct ProblemSpec {
  std::string name, op, channel;
  // Optional numeric coordinates of the problem ("sweep": {"sigma": 0.5}): a key that two or more
  // problems carry is an axis across problems, plotted as sweep_<key>_<label>.csv/.svg.
  std::map<std::string, double> sweep;
};

struct MethodSpec {
  std::string label;   // unique within the experiment (default: the method name)
  std::string method;  // solver registry name
  // key → values (one value = fixed, several = swept), as text for --set
  std::vector<std::pair<std::string, std::vector<std::string>>> settings;
};

struct ExperimentConfig {
  std::string name;
  std::string description;
  std::vector<std::string> images;
  uint64_t seed = 0;
  int64_t batch = 0;  // items per solve call (0 = all)
  std::string prior;  // empty = the shipped Fashion-MNIST prior
  std::string classifier = "auto";  // auto | none | path
  std::vector<ProblemSpec> problems;
  std::vector<MethodSpec> methods;
  std::string output;

  // InputError (naming `where` and the key) on anything malformed.
  static ExperimentConfig from_json(const nlohmann::json& j, const std::string& where);
};

// One cell of the grid.
struct Cell {
  const ProblemSpec* problem;
  const MethodSpec* method;
  std::vector<std::string> settings;  // "key=value", the fixed and this cell's swept values
  std::map<std::string, std::string> swept;  // the swept keys' values in this cell
  std::string id;  // "<problem>/<label>/<k=v,...>" (filesystem-safe)
};

std::vector<Cell> expand(const ExperimentConfig& config);

struct RunOptions {
  int threads = 0;
  std::string device = "cpu";
  bool quiet = false;
  bool dry_run = false;  // list the cells and which are done, run nothing
  // A line per event ("cell 3/12 ... done in 12 s"); stderr progress bars are the caller's.
  std::function<void(const std::string&)> log;
};

// Runs every unfinished cell, then writes the aggregate outputs. Returns the number of cells
// computed in this call.
int64_t run_experiment(const ExperimentConfig& config, const RunOptions& options);

}  // namespace tweedie::experiment
