// tweedie experiment: run a grid of problems × methods × settings from a JSON config
// (experiments/*.json), resumable, writing results.csv, table.md, comparison grids and sweeps;
// sharded over the ranks of a torchrun-style launch (docs/distributed.md).
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/experiment/experiment.h"

namespace tweedie::cli {
namespace {

class ExperimentCommand : public Command {
 public:
  ExperimentCommand() : Command("experiment", "Run an experiment grid (methods x problems x settings), resumable") {}

 protected:
  ExperimentCommand(const std::string& name, const std::string& help, bool posterior)
      : Command(name, help), posterior_(posterior) {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("experiment", config_,
                   "Experiment JSON; a relative path missing here is looked up in the data directory, so "
                   "experiments/onebit-demo.json works from anywhere")
        ->required();
    app.add_option("-o,--output", out_, "Output directory (default: the config's 'output')");
    app.add_option("--prior", prior_,
                   "Prior for every cell, instead of the config's 'prior' (weights, or gmm:FILE); give -o too, "
                   "so the results land beside, not over, the config's");
    app.add_flag("--dry-run", dry_run_, "List the cells and which are already done; run nothing");
    add_dist_options(app, dist_opt_);
  }

  // Finished cells are kept as they finish (a killed grid resumes); every cell's options, the
  // images and the output directory are checked before the first one runs.
  bool writes_incrementally() const override { return true; }

  int run() override {
    // The environment first: a bad RANK fails before anything slow happens.
    Distributed dist = join_group(dist_opt_);
    config_ = data_path(config_);
    auto j = read_json_file(config_);
    experiment::ExperimentConfig cfg;
    try {
      cfg = experiment::ExperimentConfig::from_json(j, config_);
    } catch (const nlohmann::json::exception& e) {
      throw json_input_error(config_, e);  // a wrongly typed value: the file and its key path
    }
    if (!prior_.empty()) {
      require(!out_.empty(), "--prior: give --output as well, so the results of another prior do not land in the "
                             "config's output directory");
      cfg.prior = prior_;
    }
    if (!out_.empty()) cfg.output = out_;
    if (!cfg.output.empty()) check_output_dir(cfg.output, out_.empty() ? config_ + ": 'output'" : "--output", dist.rank());
    experiment::RunOptions o;
    o.device = common().device;
    o.quiet = common().quiet;
    o.dry_run = dry_run_;
    o.require_exact_posterior = posterior_;
    o.log = [this](const std::string& line) { say(line); };
    experiment::run_experiment(cfg, o, &dist);
    return 0;
  }

 private:
  std::string config_, out_, prior_;
  bool dry_run_ = false, posterior_ = false;
  DistOptions dist_opt_;
};

// tweedie posterior-eval: the same runner on a config with "samples" and a gmm: prior; every cell's
// K draws are scored against the exact posterior (posterior.md, calibration_<problem>.svg).
class PosteriorEvalCommand : public ExperimentCommand {
 public:
  PosteriorEvalCommand()
      : ExperimentCommand("posterior-eval",
                          "Score solvers' posterior draws against the exact posterior of a Gaussian-mixture prior "
                          "(an experiment config with 'samples'): MMSE gap, calibration, energy distance, mode coverage",
                          true) {}
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(ExperimentCommand);
TWEEDIE_REGISTER_COMMAND(PosteriorEvalCommand);
}  // namespace tweedie::cli
