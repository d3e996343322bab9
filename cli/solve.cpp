// tweedie solve: recover images from a problem (tweedie simulate's DIR, or an inline
// --input/--op/--channel) with a solver and a diffusion prior (none for the methods that train
// their own network: self-diffusion, dip). Writes the estimate (NPY + PNG),
// a comparison picture (truth | Aᵀy | estimate) and report.json (metrics when the truth is
// known, cost, every resolved option, the prior's hash, the version).
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/command.h"
#include "cli/images.h"
#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/progress.h"
#include "tweedie/core/registry.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/version.h"
#include "tweedie/diffusion/prior.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/plot.h"
#include "tweedie/io/png.h"
#include "tweedie/metric/bands.h"
#include "tweedie/metric/classifier.h"
#include "tweedie/metric/suite.h"
#include "tweedie/solve/batched.h"
#include "tweedie/solve/solver.h"

namespace tweedie::cli {
namespace {

namespace fs = std::filesystem;

class SolveCommand : public Command {
 public:
  SolveCommand() : Command("solve", "Recover images from measurements with a solver and a diffusion prior") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("-p,--problem", problem_, "Problem directory (or its problem.json) written by 'tweedie simulate'");
    app.add_option("-i,--input", inputs_, "Inline problem: images to simulate measurements from (as for simulate)");
    app.add_option("--op", op_, "Inline problem: operator spec");
    app.add_option("--channel", channel_, "Inline problem: channel spec");
    app.add_option("--method", method_, "Solver (see --list)");
    app.add_option("--set", settings_, "Solver option KEY=VALUE (repeatable; see --list)");
    app.add_option("--prior", model_, "Prior weights (.safetensors or .pt), gmm:FILE for a Gaussian-mixture prior, or a prior by name "
                   "(NAME:KEY=VALUE; see --list)");
    app.add_option("--arch", arch_, "Prior architecture JSON (default: beside the weights, or embedded)");
    app.add_option("--truth", truth_, "Ground truth for metrics (default: the problem's x.npy, if any)");
    app.add_option("--classifier", classifier_,
                   "Classifier for the feature metrics: auto (the shipped one, for Fashion-MNIST-like images), none, "
                   "or weights");
    app.add_option("--preview-every", preview_every_,
                   "Write the current estimate to previews/step_NNNN.{png,npy} every N steps (0 = never)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--bands", bands_,
                   "With a truth: error by frequency band (N radial bands) at every step -> bands.csv, bands.svg "
                   "(steps that report the whole chunk; self-diffusion and DIP report one item at a time, so use --batch 1 "
                   "with one item)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--batch", batch_, "Items solved together (0 = all; with --samples, rows: items x draws)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--samples", samples_,
                   "K posterior draws per measurement (0 = one estimate): writes samples.npy [N, K, ...], mean.npy, "
                   "std.npy and samples.png/.svg (truth | A^T y | mean | std | draws); estimate.npy is the mean")
        ->check(CLI::NonNegativeNumber);
    app.add_option("-o,--output", out_, "Output directory");
    app.add_flag("--list", list_, "List solvers with their options and defaults, then exit");
  }

  int run() override {
    if (list_) {
      std::cout << solve::solver_registry().help()
                << "\npriors by name (--prior NAME:KEY=VALUE; or a weights file, or gmm:FILE):\n"
                << diffusion::prior_registry().help();
      return 0;
    }
    require(!method_.empty(), "--method is required (see 'tweedie solve --list')");
    require(!out_.empty(), "--output is required (a directory)");
    // Options, output and every input first: a typo fails before anything slow happens.
    check_output_dir(out_, "--output");
    Params params = solve::resolve_solver(method_, settings_);
    const auto& entry = solve::solver_registry().find(method_);
    nlohmann::json options = entry.make.describe(params);

    torch::Tensor y, truth;
    nlohmann::json problem_json;
    Problem problem = load_or_make_problem(y, truth, problem_json);
    std::string classifier_note;
    metric::Classifier classifier{nullptr};
    if (truth.defined() && is_image_batch(truth)) classifier = metric::choose_classifier(classifier_, truth, &classifier_note);
    diffusion::Prior prior;  // none for methods with their own untrained network
    if (entry.make.uses_prior) {
      prior = diffusion::load_prior(model_, device(), arch_);
      prior.require_items(problem.op->in_shape(), "", "the problem's operator takes");
    }
    problem.op->to(device());

    const int64_t n = y.size(0), per = batch_ > 0 ? std::min(batch_, n) : n;
    torch::Generator gen = make_generator(common().seed);
    ProgressOptions po;
    po.quiet = common().quiet;
    po.unit = "step";
    std::vector<std::vector<double>> band_rows;  // per step of the first chunk: error by frequency band
    std::unique_ptr<Progress> bar;  // per chunk, made at its first step, when the solver has said how many
    solve::BatchedOptions bo;
    bo.batch = batch_;
    bo.device = device();
    bo.chunk_monitor = [&](int64_t i, int64_t j) -> solve::Monitor {
      bar.reset();
      const std::string label = method_ + (n > per ? " " + std::to_string(i) + "-" + std::to_string(j - 1) : "");
      return [&, i, j, label](const solve::StepReport& p) {
        if (!bar) bar = std::make_unique<Progress>(label, p.num_steps, po);
        if (preview_every_ > 0 && p.step % preview_every_ == 0 && p.x0.defined()) write_preview(p.x0, i, p.step);
        if (bands_ > 0 && truth.defined() && p.x0.defined() && p.x0.size(0) == j - i)
          band_rows.push_back(metric::band_errors(p.x0.cpu(), truth.slice(0, i, j), bands_));
        std::ostringstream s;
        s << (p.phase.empty() ? "" : p.phase + " ") << "nfe " << p.nfe;
        if (!std::isnan(p.misfit)) s << " misfit " << std::setprecision(4) << p.misfit;
        bar->update(p.step, s.str());
        return true;
      };
    };
    bo.chunk_done = [&](int64_t, int64_t, const solve::Result& r) {
      if (bar) bar->finish("nfe " + std::to_string(r.cost.nfe) + ", " + Progress::format_duration(r.cost.seconds));
    };
    const diffusion::EpsDenoiser* denoiser = entry.make.uses_prior ? prior.denoiser.get() : nullptr;
    torch::Tensor estimate;
    solve::Cost total;
    int64_t chunks = 0;
    if (samples_ > 0) {
      require(bands_ == 0, "--bands follows one estimate per item; leave it out with --samples");
      solve::Draws draws = solve::solve_draws(method_, params, problem, y, denoiser, gen, samples_, bo);
      estimate = draws.mean;
      total = draws.cost;
      chunks = draws.calls;
      write_draws(problem, y, truth, draws);
    } else {
      solve::BatchedResult solved = solve::solve_batched(method_, params, problem, y, denoiser, gen, bo);
      estimate = solved.estimate;
      total = solved.cost;
      chunks = solved.calls;
    }
    if (!band_rows.empty()) write_bands(band_rows);
    write_outputs(problem, y, truth, estimate, options,
                  entry.make.uses_prior ? prior.describe() : nlohmann::json(nullptr), problem_json, total, chunks,
                  classifier, classifier_note);
    return 0;
  }

 private:
  Problem load_or_make_problem(torch::Tensor& y, torch::Tensor& truth, nlohmann::json& problem_json) {
    Problem problem;
    std::string truth_source = "--input";  // names the truth's origin in messages
    if (!problem_.empty()) {
      require(inputs_.empty() && op_.empty() && channel_.empty(),
              "give --problem or an inline problem (--input/--op/--channel), not both");
      LoadedProblem lp = load_problem(problem_);
      problem = lp.problem;
      y = lp.y;
      problem_json = lp.json;
      std::string x_file = lp.json.value("x_file", "");
      if (truth_.empty() && !x_file.empty() && fs::exists(fs::path(lp.dir) / x_file)) {
        truth_source = (fs::path(lp.dir) / x_file).string();
        truth = io::read_npy(truth_source).to(torch::kFloat32);
      }
    } else {
      require(!inputs_.empty() && !op_.empty(), "--problem DIR, or --input with --op (and --channel), is required");
      truth = load_images(inputs_);
      op::Shape item(truth.sizes().begin() + 1, truth.sizes().end());
      problem = make_problem(op_, channel_.empty() ? "gaussian:sigma=0.05" : channel_, item, common().seed);
      y = simulate(problem, truth);
      problem_json = problem_to_json(problem, {{"inputs", inputs_}});
    }
    if (!truth_.empty()) {
      truth_source = "--truth " + truth_;
      truth = load_images({truth_});
    }
    if (truth.defined()) {
      op::Shape item(truth.sizes().begin() + 1, truth.sizes().end());
      require(item == problem.op->in_shape() && truth.size(0) == y.size(0),
              truth_source + ": " + op::shape_text(truth.sizes().vec()) + " does not match the problem's " +
                  std::to_string(y.size(0)) + " items of shape " + op::shape_text(problem.op->in_shape()));
    }
    return problem;
  }

  // bands.csv (step, band_0 … band_{n−1}) and bands.svg: one line per band against the step.
  void write_bands(const std::vector<std::vector<double>>& rows) const {
    std::ostringstream csv;
    csv << "step";
    for (int64_t b = 0; b < bands_; ++b) csv << ",band_" << b;
    csv << "\n";
    std::vector<io::PlotSeries> series(bands_);
    for (int64_t b = 0; b < bands_; ++b)
      series[b].label = "band " + std::to_string(b) + " (|f| in [" + format_number(double(b) / bands_) + ", " +
                        format_number(double(b + 1) / bands_) + "] of max)";
    for (size_t s = 0; s < rows.size(); ++s) {
      csv << s + 1;
      for (int64_t b = 0; b < bands_; ++b) {
        csv << "," << rows[s][b];
        series[b].x.push_back(double(s + 1));
        series[b].y.push_back(rows[s][b]);
      }
      csv << "\n";
    }
    atomic_write_file((fs::path(out_) / "bands.csv").string(), csv.str());
    io::PlotOptions po;
    po.title = method_ + ": relative error by frequency band";
    po.x_label = "step (noise level)";
    po.y_label = "|F(x_hat - x)| in the band / |x|";
    io::write_line_plot((fs::path(out_) / "bands.svg").string(), series, po);
  }

  // previews/step_NNNN[_iFIRST].{npy,png}: the solver's current estimate of the chunk from item `first`.
  void write_preview(const torch::Tensor& x0, int64_t first, int64_t step) const {
    std::ostringstream name;
    name << "step_" << std::setw(4) << std::setfill('0') << step;
    if (first > 0) name << "_i" << first;
    const std::string base = (fs::path(out_) / "previews" / name.str()).string();
    torch::Tensor x = x0.detach().to(torch::kCPU, torch::kFloat32);
    io::write_npy(base + ".npy", x);
    if (is_image_batch(x)) write_image_png(base + ".png", x.clamp(-1, 1));
  }

  void write_outputs(const Problem& problem, const torch::Tensor& y, const torch::Tensor& truth,
                     const torch::Tensor& estimate, const nlohmann::json& options, const nlohmann::json& prior,
                     const nlohmann::json& problem_json, const solve::Cost& cost, int64_t chunks,
                     metric::Classifier& classifier, const std::string& classifier_note) const {
    auto path = [&](const char* name) { return (fs::path(out_) / name).string(); };
    io::write_npy(path("estimate.npy"), estimate);
    nlohmann::json report = {{"command", "tweedie solve"},
                             {"samples", samples_},
                             {"version", TWEEDIE_VERSION " " TWEEDIE_GIT_HASH},
                             {"method", method_},
                             {"options", options},
                             {"seed", common().seed},
                             {"batch", batch_},
                             {"solve_calls", chunks},
                             {"prior", prior},
                             {"problem", problem_json},
                             {"items", estimate.size(0)},
                             {"cost", cost.to_json()}};
    std::ostringstream line;
    line << method_ << ": " << estimate.size(0) << " item" << (estimate.size(0) == 1 ? "" : "s") << ", " << cost.nfe
         << " NFE, " << std::fixed << std::setprecision(1) << cost.seconds << " s";
    if (truth.defined() && !is_image_batch(truth)) {
      // vectors (1-D signals, spectra): ‖x̂ − x‖ and ‖x̂ − x‖/‖x‖ per item
      auto err = (estimate - truth).flatten(1).norm(2, 1), rel = err / truth.flatten(1).norm(2, 1);
      report["metrics"] = {{"l2_error", std::vector<double>(err.data_ptr<float>(), err.data_ptr<float>() + err.numel())},
                           {"rel_error", std::vector<double>(rel.data_ptr<float>(), rel.data_ptr<float>() + rel.numel())},
                           {"mean", {{"l2_error", err.mean().item<double>()}, {"rel_error", rel.mean().item<double>()}}}};
      line << ", error " << std::setprecision(4) << err.mean().item<double>() << " (relative "
           << rel.mean().item<double>() << ")";
    } else if (truth.defined()) {
      std::ostringstream draws_line;
      auto m = metric::compute_image_metrics(estimate, truth, classifier ? &classifier : nullptr);
      report["metrics"] = metric::to_json(m);
      if (samples_ > 0) {
        // each draw against the truth: the metrics of every draw (item-major, N·K), then per item
        // the mean over its draws
        const int64_t K = samples_;
        auto d = metric::compute_image_metrics(draws_.flatten(0, 1), truth.repeat_interleave(K, 0), nullptr);
        report["metrics_draws"] = metric::to_json(d);
        report["metrics_draws"]["psnr_per_item"] = tensor_list(d.psnr.view({-1, K}).mean(1));
        report["metrics_draws"]["ssim_per_item"] = tensor_list(d.ssim.view({-1, K}).mean(1));
        draws_line << " (the mean of " << K << " draws; one draw " << std::fixed << std::setprecision(2)
                   << d.psnr.mean().item<double>() << " dB)";
      }
      if (!classifier) report["metrics"]["classifier_skipped"] = classifier_note;
      line << ", PSNR " << std::setprecision(2) << m.psnr.mean().item<double>() << " dB, SSIM "
           << std::setprecision(3) << m.ssim.mean().item<double>() << draws_line.str();
    }
    // The PNGs' provenance leaves out what varies between identical runs (seconds, memory), so the
    // same command and seed write the same bytes; report.json keeps the whole cost.
    nlohmann::json provenance = report;
    provenance["cost"].erase("seconds");
    provenance["cost"].erase("peak_rss_bytes");
    provenance["cost"].erase("seconds_by_activity");
    std::map<std::string, std::string> text{{"tweedie", provenance.dump()}};
    if (is_image_batch(estimate)) {
      write_image_png(path("estimate.png"), estimate, 8, text);
      // comparison: one row per item — truth | Aᵀy (linear operators) | estimate
      std::vector<torch::Tensor> cols;
      if (truth.defined()) cols.push_back(truth);
      if (problem.op->linear() && !y.is_complex()) {
        torch::NoGradGuard no_grad;
        cols.push_back(viewable(problem.op->adjoint(y.to(estimate.device())).cpu()));
      }
      cols.push_back(estimate.clamp(-1, 1));
      auto rows = torch::stack(cols, 1).flatten(0, 1);
      write_image_png(path("comparison.png"), rows, static_cast<int64_t>(cols.size()), text, io::kDisplayTile);
    }
    atomic_write_file(path("report.json"), report.dump(2) + "\n");
    say(line.str() + " -> " + out_);
  }

  static std::vector<double> tensor_list(const torch::Tensor& t) {
    auto c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  }

  // samples.npy, mean.npy, std.npy, and the picture: one row per item, truth | Aᵀy | mean | std |
  // up to four draws, as samples.png and samples.svg (the PNG with its columns labelled). The std
  // column is shown on one scale for the whole picture: black 0, white the largest std.
  void write_draws(const Problem& problem, const torch::Tensor& y, const torch::Tensor& truth,
                   const solve::Draws& draws) {
    auto path = [&](const char* name) { return (fs::path(out_) / name).string(); };
    draws_ = draws.samples;
    io::write_npy(path("samples.npy"), draws.samples);
    io::write_npy(path("mean.npy"), draws.mean);
    io::write_npy(path("std.npy"), draws.std);
    if (!is_image_batch(draws.mean)) return;
    std::vector<torch::Tensor> cols;
    std::vector<std::string> labels;
    if (truth.defined()) cols.push_back(truth), labels.push_back("truth");
    if (problem.op->linear() && !y.is_complex()) {
      torch::NoGradGuard no_grad;
      cols.push_back(viewable(problem.op->adjoint(y).cpu())), labels.push_back("A^T y");
    }
    cols.push_back(draws.mean.clamp(-1, 1)), labels.push_back("mean");
    const double top = std::max(draws.std.max().item<double>(), 1e-12);
    cols.push_back(draws.std / top * 2 - 1), labels.push_back("std (white " + format_number(top) + ")");
    for (int64_t k = 0; k < std::min<int64_t>(4, samples_); ++k)
      cols.push_back(draws.samples.select(1, k).clamp(-1, 1)), labels.push_back("draw " + std::to_string(k + 1));
    const int64_t ncols = static_cast<int64_t>(cols.size()), rows = draws.mean.size(0);
    write_image_png(path("samples.png"), torch::stack(cols, 1).flatten(0, 1), ncols, {}, io::kDisplayTile);
    // the same picture with its columns named (an SVG over the PNG beside it)
    const int64_t tile = std::max<int64_t>(io::kDisplayTile, draws.mean.size(-1)) + 2, head = 24;
    std::ostringstream svg;
    svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\""
        << ncols * tile + 2 << "\" height=\"" << head + rows * tile + 2 << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    for (int64_t c = 0; c < ncols; ++c)
      svg << "<text x=\"" << c * tile + tile / 2 + 1 << "\" y=\"16\" text-anchor=\"middle\">" << labels[c] << "</text>\n";
    svg << "<image x=\"0\" y=\"" << head << "\" width=\"" << ncols * tile + 2 << "\" height=\"" << rows * tile + 2
        << "\" xlink:href=\"samples.png\" href=\"samples.png\"/>\n</svg>\n";
    atomic_write_file(path("samples.svg"), svg.str());
  }

  std::string problem_, op_, channel_, method_, arch_, truth_, out_, classifier_ = "auto";
  std::vector<std::string> inputs_, settings_;
  std::string model_ = kDefaultPrior;
  torch::Tensor draws_;  // the draws of a --samples run [N, K, ...], for the report's metrics
  int64_t batch_ = 0, preview_every_ = 0, bands_ = 0, samples_ = 0;
  bool list_ = false;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(SolveCommand);
}  // namespace tweedie::cli
