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
// Running is three stages (Runner): plan (expand the grid, validate every cell's options, load
// the images, prior and measurements), run cells (each stored atomically in OUT/cells/<id>/), and
// merge and report (read every stored cell, write the outputs below). run_experiment drives them
// over the ranks of a Distributed context: rank 0 lists the unfinished cells, every rank takes
// cells from a work queue in the TCPStore until none are left, and rank 0 writes the report once
// all have stored theirs (docs/distributed.md). OUT must be one directory all ranks see.
//
// Outputs (OUT = the "output" key or --output): results.csv (one row per image per cell),
// table.md (mean ± standard error per cell), comparison_<problem>.png (rows: images; columns:
// truth, Aᵀy, then the first setting of every method label), sweep_<problem>_<label>_<key>.csv
// and .svg for every swept numeric key, sweep_<key>_<label>.csv/.svg for every problem axis,
// and experiment.json (the resolved grid, versions).
#include <nlohmann/json.hpp>

#include "tweedie/core/distributed.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>
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
  // "set_for": {problem: {key: value}}: fixed values for one problem that replace or add to
  // `settings` there (a setting tuned per task on validation images, kept under one label).
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> per_problem;
  // The settings in force for `problem`: `settings` with its per_problem values applied.
  std::vector<std::pair<std::string, std::vector<std::string>>> settings_for(const std::string& problem) const;
};

struct ExperimentConfig {
  std::string name;
  std::string description;
  std::vector<std::string> images;
  uint64_t seed = 0;
  int64_t batch = 0;  // items per solve call (0 = all)
  std::string prior;  // empty = the shipped Fashion-MNIST prior
  std::string classifier = "auto";  // auto | none | path
  // "samples": K > 0 solves every image K times (solve::solve_draws): the cell's estimate is the
  // draws' mean, samples.npy holds the draws, and where the posterior is exact (a gmm: prior, a
  // linear operator, the gaussian channel) the cell carries posterior scores against it
  // (posterior_scores.h), with "reference_draws" exact draws per image for the energy distance.
  int64_t samples = 0;
  int64_t reference_draws = 256;
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
  // `tweedie posterior-eval`: every cell must be scored against the exact posterior (samples ≥ 2,
  // a gmm: prior, linear Gaussian problems); InputError before any work otherwise.
  bool require_exact_posterior = false;
  // A line per event ("cell 3/12 ... done in 12 s"); stderr progress bars are the caller's.
  std::function<void(const std::string&)> log;
};

// The runner's stages. Not thread-safe; one Runner per process.
class Runner {
 public:
  // Stage 1, plan: expands the grid, resolves every cell's options, loads the images, prior and
  // classifier and simulates each problem's measurements (from the config's seed, so every
  // process holds the same). InputError, before any work, on anything malformed.
  Runner(ExperimentConfig config, const RunOptions& options);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  const std::vector<Cell>& cells() const;
  // "cell i+1/N <id>" for log lines.
  std::string tag(size_t i) const;
  // Cell i's stored result (OUT/cells/<id>/cell.json), if stored and describing this very
  // computation (problem specs, method, resolved options, images, seed, batch, prior hash).
  std::optional<nlohmann::json> stored(size_t i) const;
  // The indices of the cells not stored, in grid order.
  std::vector<size_t> pending() const;

  // Stage 2: solves cell i on every image (solve::solve_batched, a generator seeded per cell, so
  // the result does not depend on which process runs it or when) and stores it: estimate.npy,
  // then cell.json, each atomically. A solver InputError (a diverging step size) is stored as a
  // failed cell. Returns the stored result.
  nlohmann::json run_cell(size_t i);

  // Stage 3: reads every stored cell and writes results.csv, table.md, the comparison grids, the
  // sweeps and experiment.json. InternalError naming a cell that is not stored.
  void report() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Runs every unfinished cell, sharded over `dist`'s ranks (none or an inactive context: this
// process alone), then rank 0 writes the aggregate outputs. Returns the number of cells computed
// (on rank 0: by all ranks; elsewhere: by this rank).
int64_t run_experiment(const ExperimentConfig& config, const RunOptions& options, Distributed* dist = nullptr);

}  // namespace tweedie::experiment
