// tweedie lowrank: generate (or load) a low-rank recovery problem, run GD / ScaledGD /
// ScaledGD(λ), write the estimate, the per-iteration errors (CSV), convergence plots (SVG) and a
// report (JSON). List-valued options (--method, --kappa, --rank, --fit-rank, --ratio, --outliers)
// run every combination on problems drawn from the same seed, so one command reproduces one figure.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <sstream>

#include "cli/command.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/memory.h"
#include "tweedie/core/progress.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/version.h"
#include "tweedie/io/npy.h"
#include "tweedie/lowrank/matrix.h"
#include "tweedie/io/plot.h"
#include "tweedie/lowrank/tucker.h"

namespace tweedie::cli {
namespace {

using namespace tweedie::lowrank;
using tweedie::io::PlotOptions;
using tweedie::io::PlotSeries;
using tweedie::io::write_line_plot;
namespace fs = std::filesystem;

std::string fmt(const char* pattern, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, v);
  return buf;
}

// What one run produced, whatever the problem class.
struct RunOutcome {
  std::string label;
  nlohmann::json problem, options, result;
  std::vector<IterationStats> history;
  std::string stop;
  int64_t iterations = 0;
  double kappa = 1;
  std::string series_key;  // the label without κ, for the iterations-vs-κ plot
  torch::Tensor left, right, estimate;
};

class LowRankCommand : public Command {
 public:
  LowRankCommand()
      : Command("lowrank", "Low-rank recovery (sensing, completion, robust PCA, Tucker) by GD, ScaledGD, ScaledGD(λ)") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("-o,--output", out_, "Output directory: errors.csv, summary.csv, convergence.svg, report.json, estimate")
        ->required();
    app.add_option("--task", task_, "sensing, completion, rpca, tucker or powerlaw")
        ->check(CLI::IsMember({"sensing", "completion", "rpca", "tucker", "powerlaw"}));
    app.add_option("--n1", spec_.n1, "Rows (tensor: first dimension)")->check(CLI::PositiveNumber);
    app.add_option("--n2", n2_, "Columns (0 = n1)")->check(CLI::NonNegativeNumber);
    app.add_option("--n3", spec_.n3, "Tucker: third dimension (0 = n1)")->check(CLI::NonNegativeNumber);
    app.add_option("--rank", ranks_, "True rank r (powerlaw: rank of the approximation); list = sweep")->delimiter(',');
    app.add_option("--kappa", kappas_, "Condition number κ: σ*_i = linspace(1, 1/κ, r); list = sweep")->delimiter(',');
    app.add_option("--ratio", ratios_, "Sampling ratio p in (0, 1] (completion, tucker, powerlaw); list = sweep")
        ->delimiter(',');
    app.add_option("--measurements", spec_.measurements, "Sensing: m Gaussian measurements (0 = 5 r (n1+n2)/2)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--outliers", outliers_, "Robust PCA: outlier fraction α (also the solver's α); list = sweep")
        ->delimiter(',');
    app.add_option("--outlier-scale", spec_.outlier_scale, "Robust PCA: outliers ~ N(0, (scale·rms X*)²)");
    app.add_option("--decay", spec_.decay, "Power law: σ_i = i^(-decay)");
    app.add_option("--noise", spec_.noise, "Gaussian noise σ added to every observation")->check(CLI::NonNegativeNumber);
    app.add_flag("--symmetric", spec_.symmetric, "Sensing: PSD truth U Σ Uᵀ fitted as X Xᵀ (n2 = n1)");
    app.add_option("--dtype", dtype_, "float64 or float32")->check(CLI::IsMember({"float64", "float32"}));
    app.add_option("--observations", observations_,
                   "Load instead of generating: y [m] (sensing), Y [n1,n2] (completion, rpca) or [n1,n2,n3] (tucker)");
    app.add_option("--operator", operator_, "Sensing: A [m, n1, n2] (.npy)");
    app.add_option("--mask", mask_, "Completion / tucker: observed entries, nonzero = observed (.npy)");
    app.add_option("--truth", truth_, "Loaded problems: the truth X* (.npy), for the error column");
    app.add_option("--method", methods_, "gd, scaledgd or scaledgd-lambda; list = compare")->delimiter(',');
    app.add_option("--eta", eta_, "Step size η (0 = 0.5 for matrices, 0.3 for tucker)")->check(CLI::NonNegativeNumber);
    app.add_option("--fit-rank", fit_ranks_, "Fitted rank r' (0 = r; r' > r over-parameterises); list = sweep")
        ->delimiter(',');
    app.add_option("--init", init_, "spectral, random, or auto (random for scaledgd-lambda, else spectral)")
        ->check(CLI::IsMember({"auto", "spectral", "random"}));
    app.add_option("--init-scale", matrix_.init_scale, "Random init: X0 = α N(0, 1/n)")->check(CLI::PositiveNumber);
    app.add_option("--lambda", matrix_.lambda, "ScaledGD(λ): λ (0 = lambda-factor · σ_r of the spectral matrix)");
    app.add_option("--lambda-factor", matrix_.lambda_factor, "ScaledGD(λ): λ = factor · σ_r(spectral matrix)");
    app.add_option("--sigma-max", matrix_.sigma_max, "GD: step η/σ_max (0 = σ₁ of the spectral matrix)");
    app.add_option("--projection", matrix_.projection, "Completion: scaled projection B = c √(r/n) σ₁ (0 = off)");
    app.add_option("--iterations", iterations_, "Maximum iterations (0 = 1000, tucker 2000)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--tolerance", stop_.tolerance, "Stop at this relative error to the truth (0 = off)");
    app.add_option("--change-tolerance", stop_.change_tolerance,
                   "Stop when ‖X_t − X_{t−1}‖/‖X_t‖ falls below (0 = off; loaded problems without truth: tolerance)");
    app.add_option("--divergence", stop_.divergence, "Stop when the error exceeds this");
    app.add_option("--svd-power-iterations", matrix_.spectral.power_iterations,
                   "Randomized SVD (large completion starts): subspace iterations");
    app.add_option("--history-stride", stride_, "errors.csv: every k-th iteration (first and last always)")
        ->check(CLI::PositiveNumber);
    app.add_flag("--save-problem", save_problem_, "Also write the generated problem (npy) to OUTPUT/problem/");
    app.add_option("--title", title_, "Plot title (default: the task and sizes)");
  }

  int run() override {
    if (!out_.empty()) check_output_dir(out_, "--output");
    require(!methods_.empty() && !ranks_.empty() && !kappas_.empty() && !ratios_.empty() && !outliers_.empty(),
            "list options need at least one value");
    spec_.task = parse_task(task_);
    spec_.n2 = n2_ > 0 ? n2_ : spec_.n1;
    spec_.dtype = dtype_ == "float32" ? torch::kFloat32 : torch::kFloat64;
    for (auto& m : methods_)
      require(!(parse_method(m) == Method::scaledgd_lambda && spec_.task == Task::tucker),
              "tucker completion supports the methods gd and scaledgd");
    loaded_ = !observations_.empty();
    if (loaded_)
      require(ranks_.size() == 1 && kappas_.size() == 1 && ratios_.size() == 1 && outliers_.size() == 1,
              "a loaded problem takes one --rank and one --outliers (no sweeps over problem settings)");
    std::vector<RunOutcome> runs;
    size_t problems = ranks_.size() * kappas_.size() * ratios_.size() * outliers_.size();
    require(!save_problem_ || (problems == 1 && !loaded_), "--save-problem needs exactly one generated problem");
    for (int64_t rank : ranks_)
      for (double ratio : ratios_)
        for (double outliers : outliers_)
          for (double kappa : kappas_) {
            ProblemSpec s = spec_;
            s.rank = rank;
            s.ratio = ratio;
            s.outliers = outliers;
            s.kappa = kappa;
            solve_problem(s, runs);
          }
    write_outputs(runs);
    return 0;
  }

 private:
  // Label parts for the settings that vary across this command's runs.
  std::string label_of(const std::string& method, const ProblemSpec& s, int64_t fit_rank, bool with_kappa) const {
    std::string l = method;
    if (with_kappa && kappas_.size() > 1) l += " κ=" + fmt("%g", s.kappa);
    if (ranks_.size() > 1) l += " r=" + std::to_string(s.rank);
    if (fit_ranks_.size() > 1) l += " r'=" + std::to_string(fit_rank > 0 ? fit_rank : s.rank);
    if (ratios_.size() > 1) l += " p=" + fmt("%g", s.ratio);
    if (outliers_.size() > 1) l += " α=" + fmt("%g", s.outliers);
    return l;
  }

  nlohmann::json spec_json(const ProblemSpec& s, int64_t observations) const {
    return {{"task", task_name(s.task)}, {"n1", s.n1}, {"n2", s.n2}, {"n3", s.task == Task::tucker ? (s.n3 > 0 ? s.n3 : s.n1) : 0},
            {"rank", s.rank}, {"kappa", s.kappa}, {"ratio", s.ratio}, {"observations", observations},
            {"outliers", s.outliers}, {"outlier_scale", s.outlier_scale}, {"decay", s.decay}, {"noise", s.noise},
            {"symmetric", s.symmetric}, {"dtype", dtype_}, {"loaded", loaded_}, {"observations_file", observations_},
            {"operator_file", operator_}, {"mask_file", mask_}, {"truth_file", truth_}};
  }

  StopOptions stop_for(Task task) const {
    StopOptions o = stop_;
    o.max_iterations = iterations_ > 0 ? iterations_ : task == Task::tucker ? 2000 : 1000;
    if (loaded_ && truth_.empty() && o.change_tolerance == 0) o.change_tolerance = o.tolerance;
    return o;
  }

  Monitor progress_monitor(Progress& bar) const {
    return [&bar](const IterationStats& s) {
      double shown = std::isnan(s.error) ? s.residual : s.error;
      bar.update(s.iteration, (std::isnan(s.error) ? "residual " : "error ") + fmt("%.3e", shown));
      return true;
    };
  }

  ProgressOptions progress_options() const {
    ProgressOptions po;
    po.quiet = common().quiet;
    return po;
  }

  void solve_problem(const ProblemSpec& s, std::vector<RunOutcome>& runs) {
    if (s.task == Task::tucker) return solve_tucker_problem(s, runs);
    MatrixProblem p = loaded_ ? load_matrix(s) : generate(s);
    if (save_problem_) save(p);
    for (const auto& method : methods_)
      for (int64_t fit : fit_ranks_) {
        MatrixOptions o = matrix_;
        o.method = parse_method(method);
        o.eta = eta_ > 0 ? eta_ : 0.5;
        o.rank = fit;
        o.init = init_ == "auto" ? (o.method == Method::scaledgd_lambda ? Init::random : Init::spectral) : parse_init(init_);
        o.stop = stop_for(s.task);
        RunOutcome r;
        r.label = label_of(method, s, fit, true);
        r.series_key = label_of(method, s, fit, false);
        r.kappa = s.kappa;
        auto gen = make_generator(common().seed + 1);  // every method starts from the same draws
        reset_peak_resident();
        Progress bar("lowrank " + r.label, o.stop.max_iterations, progress_options());
        MatrixResult res = solve_matrix(p, o, gen, progress_monitor(bar));
        bar.finish();
        r.problem = spec_json(s, p.observations());
        if (!p.truth.singular_values.empty())
          r.problem["truth_condition_number"] = p.truth.singular_values.front() / p.truth.singular_values.back();
        r.options = to_json(o);
        std::vector<double> top(res.spectrum.begin(), res.spectrum.begin() + std::min<size_t>(res.spectrum.size(), 20));
        r.result = {{"sigma_max", res.sigma_max}, {"lambda", res.lambda}, {"spectral_values", top},
                    {"init_seconds", res.init_seconds}};
        finish_run(r, res.history, res.stop, res.seconds);
        r.left = res.left;
        r.right = res.right;
        runs.push_back(std::move(r));
      }
  }

  void solve_tucker_problem(const ProblemSpec& s, std::vector<RunOutcome>& runs) {
    TuckerProblem p = loaded_ ? load_tucker(s) : [&] {
      auto gen = make_generator(common().seed);
      return generate_tucker_problem(s, gen, device());
    }();
    if (save_problem_) {
      io::write_npy(problem_path("observations.npy"), p.Y.cpu());
      io::write_npy(problem_path("mask.npy"), p.mask.cpu().to(torch::kUInt8));
      io::write_npy(problem_path("truth.npy"), p.truth.cpu());
    }
    for (const auto& method : methods_) {
      TuckerOptions o;
      o.method = parse_method(method);
      if (eta_ > 0) o.eta = eta_;
      o.init = init_ == "random" ? Init::random : Init::spectral;
      o.sigma_max = matrix_.sigma_max;
      o.stop = stop_for(Task::tucker);
      RunOutcome r;
      r.label = label_of(method, s, 0, true);
      r.series_key = label_of(method, s, 0, false);
      r.kappa = s.kappa;
      auto gen = make_generator(common().seed + 1);
      reset_peak_resident();
      Progress bar("lowrank " + r.label, o.stop.max_iterations, progress_options());
      TuckerResult res = solve_tucker(p, o, gen, progress_monitor(bar));
      bar.finish();
      r.problem = spec_json(s, static_cast<int64_t>(p.mask.sum().item<double>()));
      if (!p.core_singular_values.empty()) {
        auto [lo, hi] = std::minmax_element(p.core_singular_values.begin(), p.core_singular_values.end());
        r.problem["truth_condition_number"] = *hi / *lo;
      }
      r.options = to_json(o);
      r.result = {{"sigma_max", res.sigma_max}, {"init_seconds", res.init_seconds}};
      finish_run(r, res.history, res.stop, res.seconds);
      r.estimate = res.estimate();
      runs.push_back(std::move(r));
    }
  }

  void finish_run(RunOutcome& r, std::vector<IterationStats> history, const std::string& stop, double seconds) const {
    const IterationStats& last = history.back();
    r.history = std::move(history);
    r.stop = stop;
    r.iterations = last.iteration;
    int64_t peak = peak_resident_bytes();
    r.result.update({{"iterations", last.iteration}, {"stop", stop}, {"final_error", last.error},
                     {"final_residual", last.residual}, {"seconds", seconds},
                     {"peak_rss_mb", peak > 0 ? static_cast<double>(peak) / 1048576.0 : NAN}});
    std::string err = std::isnan(last.error) ? "residual " + fmt("%.3e", last.residual) : "error " + fmt("%.3e", last.error);
    say(r.label + ": " + std::to_string(last.iteration) + " iterations, " + err + " (" + stop + "), " +
        fmt("%.2f s", seconds));
  }

  MatrixProblem generate(const ProblemSpec& s) const {
    auto gen = make_generator(common().seed);
    return generate_matrix_problem(s, gen, device());
  }

  MatrixProblem load_matrix(const ProblemSpec& s) const {
    auto dtype = spec_.dtype;
    auto Y = io::read_npy(observations_).to(device());
    MatrixProblem p;
    if (s.task == Task::sensing) {
      require(!operator_.empty(), "--operator A.npy [m, n1, n2] is required to load a sensing problem");
      p = sensing_problem(io::read_npy(operator_).to(device()), Y, s.rank, s.symmetric, dtype);
    } else if (s.task == Task::completion) {
      require(!mask_.empty(), "--mask is required to load a completion problem");
      p = completion_problem(Y, io::read_npy(mask_).to(device()), s.rank, dtype);
    } else if (s.task == Task::rpca) {
      p = rpca_problem(Y, s.rank, s.outliers, dtype);
    } else {
      throw InputError("--task " + task_name(s.task) + " cannot be loaded (use completion for a power-law matrix)");
    }
    if (!truth_.empty()) set_truth(p, io::read_npy(truth_));
    return p;
  }

  TuckerProblem load_tucker(const ProblemSpec& s) const {
    require(!mask_.empty(), "--mask is required to load a tucker problem");
    auto p = tucker_problem(io::read_npy(observations_).to(device()), io::read_npy(mask_).to(device()), s.rank,
                            spec_.dtype);
    if (!truth_.empty()) set_truth(p, io::read_npy(truth_));
    return p;
  }

  std::string problem_path(const char* name) const { return (fs::path(out_) / "problem" / name).string(); }

  void save(const MatrixProblem& p) const {
    if (p.task == Task::sensing) {
      io::write_npy(problem_path("operator.npy"), p.A.cpu().view({p.A.size(0), p.n1, p.n2}));
      io::write_npy(problem_path("observations.npy"), p.y.cpu());
    } else {
      io::write_npy(problem_path("observations.npy"), observed_matrix(p).cpu());
      if (p.task == Task::completion) io::write_npy(problem_path("mask.npy"), observed_mask(p).cpu().to(torch::kUInt8));
    }
    io::write_npy(problem_path("truth.npy"), dense_truth(p).cpu());
  }

  void write_outputs(const std::vector<RunOutcome>& runs) const {
    auto path = [&](const char* name) { return (fs::path(out_) / name).string(); };
    std::ostringstream errors, summary;
    errors << "run,label,iteration,error,residual,change,seconds\n";
    summary << "run,label,task,method,n1,n2,rank,fit_rank,kappa,ratio,outliers,observations,iterations,stop,"
               "final_error,final_residual,seconds,init_seconds,peak_rss_mb\n";
    nlohmann::json report_runs = nlohmann::json::array();
    std::vector<PlotSeries> curves;
    std::map<std::string, PlotSeries> by_kappa;
    bool any_truth = false;
    for (size_t i = 0; i < runs.size(); ++i) {
      const auto& r = runs[i];
      for (size_t k = 0; k < r.history.size(); ++k) {
        const auto& h = r.history[k];
        if (h.iteration % stride_ != 0 && k + 1 != r.history.size()) continue;
        errors << i << "," << r.label << "," << h.iteration << "," << fmt("%.6e", h.error) << ","
               << fmt("%.6e", h.residual) << "," << fmt("%.6e", h.change) << "," << fmt("%.4f", h.seconds) << "\n";
      }
      const auto& pj = r.problem;
      summary << i << "," << r.label << "," << pj["task"].get<std::string>() << ","
              << r.options["method"].get<std::string>() << "," << pj["n1"] << "," << pj["n2"] << "," << pj["rank"]
              << "," << r.options.value("fit_rank", int64_t{0}) << "," << pj["kappa"] << "," << pj["ratio"] << ","
              << pj["outliers"] << "," << pj["observations"] << "," << r.iterations << "," << r.stop << ","
              << fmt("%.6e", r.result["final_error"].get<double>()) << ","
              << fmt("%.6e", r.result["final_residual"].get<double>()) << ","
              << fmt("%.4f", r.result["seconds"].get<double>()) << ","
              << fmt("%.4f", r.result["init_seconds"].get<double>()) << ","
              << fmt("%.1f", r.result["peak_rss_mb"].get<double>()) << "\n";
      report_runs.push_back({{"label", r.label}, {"problem", r.problem}, {"options", r.options}, {"result", r.result}});
      PlotSeries c{r.label, {}, {}};
      any_truth = any_truth || !std::isnan(r.history.front().error);
      for (const auto& h : r.history) {
        c.x.push_back(static_cast<double>(h.iteration));
        c.y.push_back(std::isnan(h.error) ? h.residual : h.error);
      }
      curves.push_back(std::move(c));
      auto& k = by_kappa[r.series_key];
      if (k.label.empty()) k.label = r.series_key;
      if (r.stop == "max-iterations" && k.label == r.series_key) k.label += " (some capped)";
      k.markers = true;
      k.x.push_back(r.kappa);
      k.y.push_back(static_cast<double>(r.iterations));
    }
    atomic_write_file(path("errors.csv"), errors.str());
    atomic_write_file(path("summary.csv"), summary.str());
    std::string title = !title_.empty() ? title_ : "tweedie lowrank " + task_ + " " + std::to_string(spec_.n1) + "x" +
                                                        std::to_string(spec_.n2);
    PlotOptions po;
    po.title = title;
    po.x_label = "iteration";
    po.y_label = any_truth ? "relative error ‖X_t − X*‖_F / ‖X*‖_F" : "relative residual";
    write_line_plot(path("convergence.svg"), curves, po);
    if (kappas_.size() > 1) {
      std::vector<PlotSeries> series;
      for (auto& [key, s] : by_kappa) series.push_back(s);
      PlotOptions ko;
      ko.title = title + ": iterations to the stopping rule vs κ";
      ko.x_label = "condition number κ";
      ko.y_label = "iterations";
      ko.log_x = true;
      write_line_plot(path("iterations.svg"), series, ko);
    }
    if (runs.size() == 1) {
      const auto& r = runs.front();
      if (r.estimate.defined()) {
        io::write_npy(path("estimate.npy"), r.estimate.cpu());
      } else {
        io::write_npy(path("left.npy"), r.left.cpu());
        io::write_npy(path("right.npy"), r.right.cpu());
        if (r.left.size(0) * r.right.size(0) <= 10'000'000) io::write_npy(path("estimate.npy"), r.left.mm(r.right.t()).cpu());
      }
    }
    nlohmann::json report = {{"command", "tweedie lowrank"},
                             {"version", TWEEDIE_VERSION " " TWEEDIE_GIT_HASH},
                             {"seed", common().seed},
                             {"device", common().device},
                             {"threads", at::get_num_threads()},
                             {"runs", report_runs}};
    atomic_write_file(path("report.json"), report.dump(2) + "\n");
    say("wrote " + out_ + ": " + std::to_string(runs.size()) + " run" + (runs.size() == 1 ? "" : "s"));
  }

  std::string out_, task_ = "completion", dtype_ = "float64", init_ = "auto", title_;
  std::string observations_, operator_, mask_, truth_;
  ProblemSpec spec_;
  int64_t n2_ = 0, iterations_ = 0, stride_ = 1;
  std::vector<int64_t> ranks_{5}, fit_ranks_{0};
  std::vector<double> kappas_{1}, ratios_{0.2}, outliers_{0.1};
  std::vector<std::string> methods_{"scaledgd"};
  double eta_ = 0;
  MatrixOptions matrix_;
  StopOptions stop_;
  bool save_problem_ = false, loaded_ = false;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(LowRankCommand);
}  // namespace tweedie::cli
