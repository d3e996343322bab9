// tweedie doa: angle-of-arrival estimation with a uniform linear array (seed 004's radar task).
// Simulates snapshots of a few sources, then estimates the angle spectrum three ways: MUSIC on
// the sample covariance, the Bartlett beamformer Aᵀy, and an untrained-network solver
// (self-diffusion by default) on the covariance lags through the "ula" operator. Writes
// spectra.csv, spectra.svg (io/plot.h) and report.json with each method's angle RMSE.
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>

#include "cli/command.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/runtime.h"
#include "tweedie/io/plot.h"
#include "tweedie/op/ula.h"
#include "tweedie/solve/solver.h"

namespace tweedie::cli {
namespace {

namespace fs = std::filesystem;

class DoaCommand : public Command {
 public:
  DoaCommand() : Command("doa", "Angle-of-arrival estimation with a uniform linear array: MUSIC vs an untrained-network solver") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("--elements", elements_, "Antennas (half-wavelength spacing)")->check(CLI::Range(2, 1024));
    app.add_option("--grid", grid_, "Angle grid points over [-span, span] (the spectrum's length)")
        ->check(CLI::Range(2, 1 << 16));
    app.add_option("--span", span_, "Grid half-width in degrees")->check(CLI::Range(1.0, 90.0));
    app.add_option("--angles", angles_, "Source angles in degrees (comma separated)")->delimiter(',');
    app.add_option("--powers", powers_, "Source powers (default 1 each)")->delimiter(',');
    app.add_option("--snapshots", snapshots_, "Snapshots L")->check(CLI::PositiveNumber);
    app.add_option("--snr", snr_db_, "Per-source SNR in dB (noise power 10^(-snr/10))");
    app.add_option("--trials", trials_, "Independent trials (seeds seed, seed+1, ...); RMSE is averaged")
        ->check(CLI::PositiveNumber);
    app.add_option("--method", method_, "Solver without a prior (self-diffusion or dip)");
    app.add_option("--set", settings_,
                   "Solver option KEY=VALUE, over the radar defaults steps=30 iters=100 sigmoid=true "
                   "normalize=false width=16 depth=4 (seed 004 §4.2)");
    app.add_option("-o,--output", out_, "Output directory")->required();
  }

  int run() override {
    check_output_dir(out_, "--output");
    if (powers_.empty()) powers_.assign(angles_.size(), 1.0);
    require(!angles_.empty() && powers_.size() == angles_.size(), "--powers: one per --angles entry");
    // radar defaults (methods.md §7.5: T = 30, K = 100, lr 1e-3, β 1e-4 → 2e-2, sigmoid output), then --set
    std::map<std::string, std::string> kv = {{"steps", "30"},       {"iters", "100"}, {"sigmoid", "true"},
                                             {"normalize", "false"}, {"width", "16"},  {"depth", "4"}};
    if (method_ == "dip") kv = {{"iters", "3000"}, {"sigmoid", "true"}, {"normalize", "false"}, {"width", "16"}, {"depth", "4"}};
    for (auto& s : settings_) {
      auto eq = s.find('=');
      require(eq != std::string::npos && eq > 0, "--set '" + s + "': expected KEY=VALUE");
      kv[s.substr(0, eq)] = s.substr(eq + 1);
    }
    std::vector<std::string> set;
    for (auto& [k, v] : kv) set.push_back(k + "=" + v);
    const auto& entry = solve::solver_registry().find(method_);
    require(!entry.make.uses_prior, "tweedie doa runs solvers without a prior (self-diffusion, dip), not " + method_);
    Params params = solve::resolve_solver(method_, set);
    nlohmann::json options = entry.make.describe(params);

    const auto grid = op::ula_grid(grid_, span_);
    op::UlaOptions uo;
    uo.elements = elements_;
    uo.span = span_;
    Problem problem{op::make_ula({grid_}, uo), nullptr, common().seed, 0};
    // truth spectrum: each source's power on its nearest grid angle
    torch::Tensor truth = torch::zeros({1, grid_});
    std::vector<double> on_grid;
    for (size_t k = 0; k < angles_.size(); ++k) {
      require(std::abs(angles_[k]) <= span_, "--angles: " + std::to_string(angles_[k]) + " is outside the span");
      int64_t i = std::llround((angles_[k] + span_) / (2 * span_) * double(grid_ - 1));
      truth[0][i] += powers_[k];
      on_grid.push_back(grid[i]);
    }
    const double miss = 2 * span_;
    double rmse_music = 0, rmse_bartlett = 0, rmse_solver = 0, seconds = 0;
    torch::Tensor music, bartlett, estimate;
    for (int64_t t = 0; t < trials_; ++t) {
      torch::Generator gen = make_generator(common().seed + t);
      auto snap = op::simulate_ula_snapshots(on_grid, powers_, elements_, snapshots_, std::pow(10.0, -snr_db_ / 10), gen);
      const int64_t K = static_cast<int64_t>(angles_.size());
      music = op::music_spectrum(snap.covariance, K, grid);
      torch::Tensor y = snap.lags.to(torch::kComplexFloat).unsqueeze(0);
      bartlett = problem.op->adjoint(y)[0];
      solve::SolveContext ctx{problem, y, solve::no_prior(), gen, {}};
      solve::Result r = entry.make.run(params, ctx);
      estimate = r.estimate[0].detach();
      seconds += r.cost.seconds;
      rmse_music += op::angle_rmse(op::peak_angles(music, grid, K), on_grid, miss) / double(trials_);
      rmse_bartlett += op::angle_rmse(op::peak_angles(bartlett, grid, K), on_grid, miss) / double(trials_);
      rmse_solver += op::angle_rmse(op::peak_angles(estimate, grid, K), on_grid, miss) / double(trials_);
    }
    write_outputs(grid, truth[0], music, bartlett, estimate, options, rmse_music, rmse_bartlett, rmse_solver, seconds);
    return 0;
  }

 private:
  void write_outputs(const std::vector<double>& grid, const torch::Tensor& truth, const torch::Tensor& music,
                     const torch::Tensor& bartlett, const torch::Tensor& estimate, const nlohmann::json& options,
                     double rmse_music, double rmse_bartlett, double rmse_solver, double seconds) const {
    auto unit = [](const torch::Tensor& s) {  // each spectrum scaled to max 1 for the plot
      auto d = s.to(torch::kFloat64).cpu();
      d = d / d.abs().max().clamp_min(1e-300);
      return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
    };
    auto tr = unit(truth), mu = unit(music), ba = unit(bartlett), es = unit(estimate);
    std::ostringstream csv;
    csv << "angle_deg,truth,music,bartlett," << method_ << "\n";
    for (size_t i = 0; i < grid.size(); ++i)
      csv << grid[i] << "," << tr[i] << "," << mu[i] << "," << ba[i] << "," << es[i] << "\n";
    atomic_write_file((fs::path(out_) / "spectra.csv").string(), csv.str());
    io::PlotOptions po;
    po.title = "Angle spectra (" + std::to_string(elements_) + " elements, " + std::to_string(snapshots_) +
               " snapshots, SNR " + format_number(snr_db_) + " dB)";
    po.x_label = "angle (degrees)";
    po.y_label = "spectrum / max";
    po.log_y = false;
    io::write_line_plot((fs::path(out_) / "spectra.svg").string(),
                        {{"truth", grid, tr, true}, {"MUSIC", grid, mu}, {"Bartlett (A^T y)", grid, ba},
                         {method_, grid, es}},
                        po);
    nlohmann::json report = {{"command", "tweedie doa"},
                             {"elements", elements_}, {"grid", grid_},     {"span", span_},
                             {"angles", angles_},     {"powers", powers_}, {"snapshots", snapshots_},
                             {"snr_db", snr_db_},     {"trials", trials_}, {"seed", common().seed},
                             {"method", method_},     {"options", options},
                             {"rmse_deg", {{"music", rmse_music}, {"bartlett", rmse_bartlett}, {method_, rmse_solver}}},
                             {"solver_seconds", seconds}};
    atomic_write_file((fs::path(out_) / "report.json").string(), report.dump(2) + "\n");
    std::ostringstream line;
    line << std::fixed << std::setprecision(3) << "angle RMSE (deg): MUSIC " << rmse_music << ", Bartlett "
         << rmse_bartlett << ", " << method_ << " " << rmse_solver << " -> " << out_;
    say(line.str());
  }

  int64_t elements_ = 16, grid_ = 256, snapshots_ = 50, trials_ = 1;
  double span_ = 60, snr_db_ = 10;
  std::vector<double> angles_ = {-20, 5, 12}, powers_;
  std::string method_ = "self-diffusion", out_;
  std::vector<std::string> settings_;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(DoaCommand);
}  // namespace tweedie::cli
