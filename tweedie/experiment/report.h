#pragma once
// Internal to the experiment runner (experiment.cpp): the inputs every cell shares and the merge
// stage's writers. Not part of the library's interface.
//
// The report is a pure function of the config, the cells and their stored results (cell.json in
// OUT/cells/<id>/), so any process can write it once every cell is stored: in a sharded run,
// rank 0 does, after the others have stored theirs.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tweedie/diffusion/prior.h"
#include "tweedie/experiment/experiment.h"
#include "tweedie/metric/classifier.h"
#include "tweedie/problem.h"

namespace tweedie::experiment::detail {

// What every cell of a grid reads: the truth, the prior, the classifier, each problem and its
// measurements (simulated once from the config's seed, so every rank holds the same ones).
struct Workspace {
  torch::Tensor x;  // truth [N, C, H, W]
  diffusion::Prior prior;
  metric::Classifier classifier{nullptr};
  torch::Device device = torch::kCPU;
  std::map<std::string, Problem> problems;
  std::map<std::string, torch::Tensor> ys;
};

// Filesystem-safe rendering of a setting value.
std::string safe(const std::string& s);
// Mean and standard error (sample sd / √n) of the finite values; NaN when there are none.
std::pair<double, double> mean_se(const std::vector<double>& v);
// Fixed-point text, "–" for a non-finite value.
std::string fmt(double v, int digits);
// A cell's settings "k=v k=v", or "defaults".
std::string setting_text(const Cell& c);

// The merge stage: results.csv, table.md, comparison_<problem>.png, sweep_*.csv/.svg from the
// cells' results (results[i] is cells[i]'s cell.json). Every file written atomically.
void write_report(const ExperimentConfig& cfg, const std::vector<Cell>& cells, const std::vector<nlohmann::json>& results,
                  const Workspace& ws, const std::filesystem::path& out);

}  // namespace tweedie::experiment::detail
