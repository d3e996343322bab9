#include "tweedie/experiment/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <numeric>
#include <set>
#include <sstream>

#include "tweedie/core/fs.h"
#include "tweedie/core/registry.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/png.h"
#include "tweedie/io/plot.h"
#include "tweedie/metric/suite.h"

namespace tweedie::experiment::detail {

namespace fs = std::filesystem;
using nlohmann::json;

std::string safe(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '=') ? c : '_';
  return out;
}

// mean and standard error (sample sd / √n) of finite values
std::pair<double, double> mean_se(const std::vector<double>& v) {
  std::vector<double> f;
  for (double x : v)
    if (std::isfinite(x)) f.push_back(x);
  if (f.empty()) return {NAN, NAN};
  double mu = 0;
  for (double x : f) mu += x;
  mu /= static_cast<double>(f.size());
  if (f.size() < 2) return {mu, NAN};
  double ss = 0;
  for (double x : f) ss += (x - mu) * (x - mu);
  return {mu, std::sqrt(ss / static_cast<double>(f.size() - 1)) / std::sqrt(static_cast<double>(f.size()))};
}

std::string fmt(double v, int digits) {
  if (!std::isfinite(v)) return "–";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string setting_text(const Cell& c) {
  std::string s;
  for (auto& kv : c.settings) s += (s.empty() ? "" : " ") + kv;
  return s.empty() ? "defaults" : s;
}

namespace {

torch::Tensor stretch(const torch::Tensor& t) {
  auto flat = t.flatten(1);
  auto lo = std::get<0>(flat.min(1, true)), hi = std::get<0>(flat.max(1, true));
  return ((flat - lo) / (hi - lo).clamp_min(1e-12) * 2 - 1).view_as(t);
}

// One sweep's CSV (PSNR/SSIM mean ± SE and NFE per point) and plot (mean PSNR, one line per
// combination of the swept settings other than the swept key).
class Sweep {
 public:
  explicit Sweep(const std::string& lead_columns) {
    csv_ << lead_columns << "psnr_mean,psnr_se,ssim_mean,ssim_se,nfe,other_settings\n";
  }
  bool empty() const { return series_.empty(); }
  // A point: `lead` is the row's leading CSV fields (ending in ','), x its abscissa.
  void add(const Cell& c, const json& result, const std::string& skip_key, const std::string& lead, double x) {
    std::string others;
    for (auto& [k, v] : c.swept)
      if (k != skip_key) others += (others.empty() ? "" : " ") + k + "=" + v;
    auto [pm, pse] = mean_se(result["metrics"]["psnr"].get<std::vector<double>>());
    auto [sm, sse] = mean_se(result["metrics"]["ssim"].get<std::vector<double>>());
    csv_ << lead << pm << "," << pse << "," << sm << "," << sse << "," << result["cost"]["nfe"].get<int64_t>() << ",\""
         << others << "\"\n";
    auto& ser = series_[others];
    ser.label = others.empty() ? c.method->label : c.method->label + " " + others;
    ser.markers = true;
    ser.x.push_back(x);
    ser.y.push_back(pm);
  }
  // stem.csv always; stem.svg when the abscissae are numbers (each line drawn left to right).
  void write(const fs::path& stem, bool plot, const std::string& title, const std::string& x_label) const {
    atomic_write_file(stem.string() + ".csv", csv_.str());
    if (!plot) return;
    std::vector<io::PlotSeries> list;
    for (const auto& [k, ser] : series_) {
      std::vector<size_t> order(ser.x.size());
      std::iota(order.begin(), order.end(), size_t{0});
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ser.x[a] < ser.x[b]; });
      io::PlotSeries sorted{ser.label, {}, {}, true};
      for (size_t o : order) sorted.x.push_back(ser.x[o]), sorted.y.push_back(ser.y[o]);
      list.push_back(sorted);
    }
    io::PlotOptions po;
    po.title = title;
    po.x_label = x_label;
    po.y_label = "PSNR (dB)";
    po.log_y = false;
    io::write_line_plot(stem.string() + ".svg", list, po);
  }

 private:
  std::ostringstream csv_;
  std::map<std::string, io::PlotSeries> series_;
};

void write_results_csv(const std::vector<Cell>& cells, const std::vector<json>& results, int64_t n,
                       const fs::path& out) {
  std::ostringstream csv;
  csv << "problem,label,method,setting,image,";
  for (const auto& metric : metric::per_image_metrics()) csv << metric.name << ",";
  csv << "nfe,seconds_per_image\n";
  csv << std::setprecision(10);
  for (size_t i = 0; i < cells.size(); ++i) {
    const json& m = results[i]["metrics"];
    const double spi = results[i]["cost"]["seconds"].get<double>() / static_cast<double>(n);
    for (int64_t k = 0; k < n; ++k) {
      auto at = [&](const char* key) {
        const auto& v = m[key];
        return v.size() > static_cast<size_t>(k) && !v[k].is_null() ? fmt(v[k].get<double>(), 6) : std::string();
      };
      csv << cells[i].problem->name << "," << cells[i].method->label << "," << cells[i].method->method << ",\""
          << setting_text(cells[i]) << "\"," << k << ",";
      for (const auto& metric : metric::per_image_metrics()) csv << at(metric.name) << ",";
      csv << results[i]["cost"]["nfe"].get<int64_t>() << "," << spi << "\n";
    }
  }
  atomic_write_file((out / "results.csv").string(), csv.str());
}

// The comparison picture of a problem (comparison_<problem>.png): its first rows images, as
// columns truth, Aᵀy (linear real operators) and the first cell of each method label. One
// definition, read by the picture and by its caption in table.md.
struct Comparison {
  int64_t rows = 0;
  bool adjoint = false;
  std::vector<size_t> cells;  // indices into the cell list, one per label, in order
};

Comparison comparison_of(const ProblemSpec& p, const std::vector<Cell>& cells, const Workspace& s) {
  Comparison c;
  c.rows = std::min<int64_t>(s.x.size(0), 8);
  const Problem& pr = s.problems.at(p.name);
  c.adjoint = pr.op->linear() && !s.ys.at(p.name).is_complex();
  std::set<std::string> seen;
  for (size_t i = 0; i < cells.size(); ++i)
    if (cells[i].problem == &p && seen.insert(cells[i].method->label).second) c.cells.push_back(i);
  return c;
}

// The "where the time went" section of table.md: per cell and for the whole table, the solve's
// seconds split by activity (Cost::activity: network forward passes, backward passes through
// the network, likelihood gradients with their operator products, the solver's other
// arithmetic), then scoring (metrics) and output. Cells stored by a build without the split
// show "–".
void write_time_breakdown(const std::vector<Cell>& cells, const std::vector<json>& results, std::ostringstream& md) {
  static const char* const kSolve[] = {"network", "network_grad", "likelihood", "other"};
  static const char* const kScore[] = {"metrics", "output"};
  std::map<std::string, double> total;
  double solve_total = 0;
  bool any = false;
  std::ostringstream rows;
  for (size_t i = 0; i < cells.size(); ++i) {
    const json& cost = results[i]["cost"];
    const double seconds = cost.value("seconds", 0.0);
    rows << "| " << cells[i].problem->name << " | " << cells[i].method->label << " | " << setting_text(cells[i])
         << " | " << fmt(seconds, 1) << " |";
    const json by = cost.value("seconds_by_activity", json::object());
    const json score = results[i].value("scoring_seconds", json::object());
    const bool has = !by.empty();
    any = any || has;
    for (const char* k : kSolve) {
      const double v = by.value(k, 0.0);
      rows << " " << (has ? fmt(v, 1) + " (" + fmt(seconds > 0 ? 100 * v / seconds : 0.0, 0) + "%)" : "–") << " |";
      total[k] += v;
    }
    for (const char* k : kScore) {
      rows << " " << (has ? fmt(score.value(k, 0.0), 2) : "–") << " |";
      total[k] += score.value(k, 0.0);
    }
    solve_total += seconds;
    rows << "\n";
  }
  if (!any) return;
  md << "\n## Where the time went\n\nWall seconds of each cell's solve split by activity (network: the prior's "
        "forward passes; network_grad: backward passes through it; likelihood: likelihood gradients and data "
        "steps with their operator products; other: the solver's own arithmetic), then scoring and output "
        "after the solve.\n\n| problem | method | setting | solve s | network | network_grad | likelihood | "
        "other | metrics s | output s |\n|---|---|---|---|---|---|---|---|---|---|\n"
     << rows.str() << "| **all cells** | | | **" << fmt(solve_total, 1) << "** |";
  for (const char* k : kSolve)
    md << " **" << fmt(total[k], 1) << " (" << fmt(solve_total > 0 ? 100 * total[k] / solve_total : 0.0, 0) << "%)** |";
  for (const char* k : kScore) md << " **" << fmt(total[k], 2) << "** |";
  md << "\n";
}

// table.md: mean ± standard error per cell, one table per problem, then what each tile of the
// problem's comparison picture shows (its columns, and each estimate's PSNR).
void write_table(const ExperimentConfig& cfg, const std::vector<Cell>& cells, const std::vector<json>& results,
                 const Workspace& s, const fs::path& out) {
  const int64_t n = s.x.size(0);
  std::ostringstream md;
  md << "# " << cfg.name << "\n\n" << (cfg.description.empty() ? "" : cfg.description + "\n\n");
  md << n << " images (" << nlohmann::json(cfg.images).dump() << "), seed " << cfg.seed
     << (s.prior.sha256.empty() ? std::string(", no prior") : ", prior sha256 " + s.prior.sha256.substr(0, 16))
     << ". Mean ± standard error over images.\n";
  for (const auto& p : cfg.problems) {
    md << "\n## " << p.name << ": `" << s.problems.at(p.name).op->spec() << "` + `"
       << s.problems.at(p.name).channel->spec() << "`\n\n";
    md << "| method | setting | NFE | PSNR (dB) | SSIM | cosine | ‖x̂‖/‖x‖−1 |" << (s.classifier ? " feature dist | Fréchet |" : "")
       << " s/image |\n|---|---|---|---|---|---|---|" << (s.classifier ? "---|---|" : "") << "---|\n";
    for (size_t i = 0; i < cells.size(); ++i) {
      if (cells[i].problem != &p) continue;
      const json& m = results[i]["metrics"];
      auto cell = [&](const char* key, int d) {
        auto [mu, se] = mean_se(m[key].get<std::vector<double>>());
        return fmt(mu, d) + (std::isfinite(se) ? " ± " + fmt(se, d) : "");
      };
      md << "| " << cells[i].method->label << " | " << setting_text(cells[i]) << " | "
         << results[i]["cost"]["nfe"].get<int64_t>() << " | "
         << (results[i].contains("failed") ? std::string("failed: diverged or stopped") : cell("psnr", 2)) << " | "
         << cell("ssim", 3) << " | " << cell("cosine", 3) << " | " << cell("rel_norm_error", 3) << " | ";
      if (s.classifier)
        md << cell("classifier_feature_distance", 3) << " | "
           << (m.contains("classifier_frechet_distance") ? fmt(m["classifier_frechet_distance"].get<double>(), 2) : "–")
           << " | ";
      md << fmt(results[i]["cost"]["seconds"].get<double>() / static_cast<double>(n), 2) << " |\n";
    }
    if (s.x.dim() != 4) continue;
    const Comparison c = comparison_of(p, cells, s);
    md << "\n`comparison_" << p.name << ".png`: one row per image (the first " << c.rows
       << "); its columns and each estimate's PSNR (dB):\n\n| image | truth |" << (c.adjoint ? " Aᵀy |" : "");
    for (size_t i : c.cells) md << " " << cells[i].method->label << " |";
    md << "\n|---|---|" << (c.adjoint ? "---|" : "");
    for (size_t k = 0; k < c.cells.size(); ++k) md << "---|";
    md << "\n";
    for (int64_t k = 0; k < c.rows; ++k) {
      md << "| " << k << " | |" << (c.adjoint ? " |" : "");
      for (size_t i : c.cells) {
        const auto& v = results[i]["metrics"]["psnr"];
        md << " " << (v.size() > static_cast<size_t>(k) && !v[k].is_null() ? fmt(v[k].get<double>(), 2) : "–") << " |";
      }
      md << "\n";
    }
  }
  write_time_breakdown(cells, results, md);
  atomic_write_file((out / "table.md").string(), md.str());
}

// comparison_<problem>.png (comparison_of): 96-pixel tiles, captioned in table.md.
void write_comparisons(const ExperimentConfig& cfg, const std::vector<Cell>& cells, const Workspace& s,
                       const fs::path& out) {
  if (s.x.dim() != 4) return;
  for (const auto& p : cfg.problems) {
    const Comparison c = comparison_of(p, cells, s);
    std::vector<torch::Tensor> cols{s.x.slice(0, 0, c.rows)};
    if (c.adjoint) {
      torch::NoGradGuard no_grad;
      cols.push_back(stretch(s.problems.at(p.name).op->adjoint(s.ys.at(p.name).slice(0, 0, c.rows).to(s.device)).cpu()));
    }
    for (size_t i : c.cells)
      cols.push_back(io::read_npy((out / "cells" / cells[i].id / "estimate.npy").string()).slice(0, 0, c.rows).clamp(-1, 1));
    auto grid = torch::stack(cols, 1).flatten(0, 1);
    io::write_png((out / ("comparison_" + p.name + ".png")).string(),
                  io::make_grid(grid, static_cast<int64_t>(cols.size()), 2, 1.0, io::kDisplayTile));
  }
}

// sweep_<problem>_<label>_<key>.csv/.svg: per problem, label and swept key, mean ± SE of PSNR
// against the value (plotted when numeric).
void write_setting_sweeps(const ExperimentConfig& cfg, const std::vector<Cell>& cells, const std::vector<json>& results,
                          const fs::path& out) {
  for (const auto& p : cfg.problems) {
    for (const auto& m : cfg.methods) {
      for (const auto& [key, values] : m.settings_for(p.name)) {
        if (values.size() < 2) continue;
        Sweep sw(key + ",");
        bool numeric = true;
        for (size_t i = 0; i < cells.size(); ++i) {
          if (cells[i].problem != &p || cells[i].method != &m) continue;
          const std::string& v = cells[i].swept.at(key);
          char* end = nullptr;
          double xv = std::strtod(v.c_str(), &end);
          numeric = numeric && end && *end == '\0';
          sw.add(cells[i], results[i], key, v + ",", xv);
        }
        std::string stem = "sweep_" + p.name + "_" + m.label + "_" + safe(key);
        sw.write(out / stem, numeric, cfg.name + " / " + p.name + ": PSNR vs " + key, key);
      }
    }
  }
}

// sweep_<key>_<label>.csv/.svg: a key two or more problems carry, PSNR against its value per label.
void write_problem_axes(const ExperimentConfig& cfg, const std::vector<Cell>& cells, const std::vector<json>& results,
                        const fs::path& out) {
  std::map<std::string, int> axis_count;
  for (const auto& p : cfg.problems)
    for (const auto& kv : p.sweep) ++axis_count[kv.first];
  for (const auto& [key, count] : axis_count) {
    if (count < 2) continue;
    for (const auto& m : cfg.methods) {
      Sweep sw(key + ",problem,");
      for (size_t i = 0; i < cells.size(); ++i) {
        auto at = cells[i].problem->sweep.find(key);
        if (cells[i].method != &m || at == cells[i].problem->sweep.end() || results[i].contains("failed")) continue;
        sw.add(cells[i], results[i], "", format_number(at->second) + "," + cells[i].problem->name + ",", at->second);
      }
      if (!sw.empty())
        sw.write(out / ("sweep_" + key + "_" + safe(m.label)), true, cfg.name + ": PSNR vs " + key + " (across problems)",
                 key);
    }
  }
}

}  // namespace

// posterior.md and calibration_<problem>.svg, for cells scored against the exact posterior
// (experiment "samples" with a gmm: prior on a linear Gaussian problem; posterior_scores.h).
void write_posterior(const ExperimentConfig& cfg, const std::vector<Cell>& cells, const std::vector<json>& results,
                     const Workspace& s, const fs::path& out) {
  bool any = false;
  for (const auto& r : results) any = any || r.contains("posterior");
  if (!any) return;
  const int64_t n = s.x.size(0), K = cfg.samples;
  std::ostringstream md;
  md << "# " << cfg.name << ": draws against the exact posterior\n\n"
     << n << " measurements, K = " << K << " draws each, " << cfg.reference_draws
     << " exact reference draws (energy distance). Mean ± standard error over measurements; in brackets the "
        "same score of K exact draws (what a perfect sampler reaches at this K). MMSE gap ‖mean − E[x|y]‖²/tr Cov "
        "(K exact draws: 1/K); coverage: exact probability inside the draws' central 50 % / 90 % intervals; "
        "energy distance to the exact posterior; mode TV: total variation between the draws' most likely mixture "
        "components and the exact weights (posterior_scores.h).\n";
  for (const auto& p : cfg.problems) {
    std::vector<io::PlotSeries> series;
    bool floor_drawn = false;
    std::ostringstream rows;
    std::string reference;
    for (size_t i = 0; i < cells.size(); ++i) {
      if (cells[i].problem != &p || !results[i].contains("posterior")) continue;
      const json& q = results[i]["posterior"];
      if (reference.empty()) {
        // cells stored before the reference was recorded were all scored against the exact posterior
        const json r = q.value("reference", json{{"kind", "exact"}, {"draws", cfg.reference_draws}});
        const std::string draws = std::to_string(r["draws"].get<int64_t>());
        std::string met;  // how many measurements the chains met on (R̂ ≤ 1.1), where recorded
        if (r.contains("rhat")) {
          const auto rh = r["rhat"].get<std::vector<double>>();
          const auto ok = std::count_if(rh.begin(), rh.end(), [](double v) { return v <= 1.1; });
          met = "; R̂ ≤ 1.1 on " + std::to_string(ok) + " of " + std::to_string(rh.size()) + " measurements";
        }
        const std::string diagnostics = ", largest split-R̂ " + fmt(r.value("rhat_max", 1.0), 3) + ", smallest ESS " +
                                        fmt(r.value("ess_min", 0.0), 0) + met;
        if (r["kind"] == "exact") {
          reference = "Reference: the exact posterior (closed form; " + draws + " exact draws for the energy distance).";
        } else if (r["kind"] == "gibbs") {
          reference = "Reference: the Gibbs sampler (gmm_gibbs.h; " + draws +
                      " of its draws per measurement, coverage counted over them)" + diagnostics + ".";
        } else {
          const double rhat = r.value("rhat_max", 1.0);
          reference = "Reference: MALA on the exact log-posterior (gmm_mala.h; " + draws +
                      " of its draws per measurement, coverage counted over them)" + diagnostics + ", acceptance " +
                      fmt(r.value("accept", 0.0), 2) + ", mode jumps accepted " + fmt(r.value("jump_accept", 0.0), 3) + "." +
                      (rhat > 1.1 ? " **R̂ above 1.1: the chains did not meet on every measurement, so this reference "
                                    "is not trusted and the scores below are not a verdict.**"
                                  : "");
        }
      }
      auto cell = [&](const std::string& key, int d) {
        auto [mu, se] = mean_se(q[key].get<std::vector<double>>());
        auto [fm, fse] = mean_se(q["floor_" + key].get<std::vector<double>>());
        return fmt(mu, d) + " ± " + fmt(se, d) + " [" + fmt(fm, d) + "]";
      };
      auto mean_of = [&](const json& v) { return mean_se(v.get<std::vector<double>>()).first; };
      rows << "| " << cells[i].method->label << " | " << setting_text(cells[i]) << " | " << cell("mmse_gap", 3) << " | "
           << cell("coverage50", 3) << " | " << cell("coverage90", 3) << " | " << cell("energy", 2) << " | "
           << cell("mode_tv", 3) << " | " << fmt(mean_of(results[i]["metrics"]["psnr"]), 2) << " | "
           << fmt(mean_of(results[i]["metrics"]["draw_psnr"]), 2) << " | "
           << fmt(results[i]["cost"]["seconds"].get<double>() / static_cast<double>(n * K), 3) << " |\n";
      const std::string label = cells[i].method->label + (cells[i].swept.empty() ? "" : " " + setting_text(cells[i]));
      series.push_back({label, {0.0, 0.5, 0.9, 1.0},
                        {0.0, mean_of(q["coverage50"]), mean_of(q["coverage90"]), 1.0}, true});
      if (!floor_drawn) {
        series.push_back({"exact draws (same K)", {0.0, 0.5, 0.9, 1.0},
                          {0.0, mean_of(q["floor_coverage50"]), mean_of(q["floor_coverage90"]), 1.0}, true});
        series.push_back({"nominal", {0.0, 1.0}, {0.0, 1.0}, false});
        floor_drawn = true;
      }
    }
    if (series.empty()) continue;
    md << "\n## " << p.name << ": `" << s.problems.at(p.name).op->spec() << "` + `"
       << s.problems.at(p.name).channel->spec() << "`\n\n" << reference << "\n\n"
       << "| method | setting | MMSE gap | coverage 50 % | coverage 90 % | energy distance | mode TV | PSNR of the mean "
          "| PSNR of a draw | s/draw |\n|---|---|---|---|---|---|---|---|---|---|\n"
       << rows.str() << "\n`calibration_" << p.name << ".svg`: coverage against the nominal level.\n";
    io::PlotOptions po;
    po.title = cfg.name + " / " + p.name + ": calibration of the draws";
    po.x_label = "nominal central interval";
    po.y_label = "exact posterior probability inside";
    po.log_y = false;
    io::write_line_plot((out / ("calibration_" + safe(p.name) + ".svg")).string(), series, po);
  }
  atomic_write_file((out / "posterior.md").string(), md.str());
}

void write_report(const ExperimentConfig& cfg, const std::vector<Cell>& cells, const std::vector<json>& results,
                  const Workspace& ws, const fs::path& out) {
  write_posterior(cfg, cells, results, ws, out);
  write_results_csv(cells, results, ws.x.size(0), out);
  write_table(cfg, cells, results, ws, out);
  write_comparisons(cfg, cells, ws, out);
  write_setting_sweeps(cfg, cells, results, out);
  write_problem_axes(cfg, cells, results, out);
}

}  // namespace tweedie::experiment::detail
