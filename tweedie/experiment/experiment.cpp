#include "tweedie/experiment/experiment.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <numeric>
#include <set>
#include <sstream>

#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/version.h"
#include "tweedie/data/reference.h"
#include "tweedie/diffusion/prior.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/png.h"
#include "tweedie/io/plot.h"
#include "tweedie/metric/suite.h"
#include "tweedie/problem.h"
#include "tweedie/solve/solver.h"

namespace tweedie::experiment {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- config -----------------------------------------------------------------------------------

namespace {

std::string value_text(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return format_number(v.get<double>());
  throw InputError(where + ": expected a string, number or boolean, got " + v.dump());
}

void only_keys(const json& j, const std::set<std::string>& known, const std::string& where) {
  if (!j.is_object()) throw InputError(where + ": expected an object");
  for (auto& [k, v] : j.items())
    if (!known.count(k)) throw InputError(where + ": unknown key '" + k + "'");
}

// Filesystem-safe rendering of a setting value.
std::string safe(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '=') ? c : '_';
  return out;
}

}  // namespace

ExperimentConfig ExperimentConfig::from_json(const json& j, const std::string& where) {
  only_keys(j, {"name", "description", "images", "seed", "batch", "prior", "classifier", "problems", "methods", "output"},
            where);
  ExperimentConfig c;
  try {
    c.name = j.at("name").get<std::string>();
    c.description = j.value("description", "");
    const json& im = j.at("images");
    if (im.is_string()) c.images = {im.get<std::string>()};
    else c.images = im.get<std::vector<std::string>>();
    c.seed = j.value("seed", uint64_t{0});
    c.batch = j.value("batch", int64_t{0});
    c.prior = j.value("prior", "");
    c.classifier = j.value("classifier", "auto");
    c.output = j.value("output", "");
  } catch (const json::exception& e) {
    throw json_input_error(where, e);
  }
  require(!c.name.empty() && safe(c.name) == c.name, where + ": 'name' must be non-empty [A-Za-z0-9.-=]");
  require(!c.images.empty(), where + ": 'images' is empty");
  require(c.batch >= 0, where + ": 'batch' must be >= 0");
  require(j.contains("problems") && j["problems"].is_array() && !j["problems"].empty(),
          where + ": 'problems' must be a non-empty list");
  require(j.contains("methods") && j["methods"].is_array() && !j["methods"].empty(),
          where + ": 'methods' must be a non-empty list");
  std::set<std::string> names;
  for (size_t i = 0; i < j["problems"].size(); ++i) {
    const json& p = j["problems"][i];
    std::string w = where + ": problems[" + std::to_string(i) + "]";
    only_keys(p, {"name", "op", "channel", "sweep"}, w);
    ProblemSpec s{p.value("name", ""), p.value("op", ""), p.value("channel", "gaussian:sigma=0.05"), {}};
    if (p.contains("sweep")) {
      require(p["sweep"].is_object(), w + ": 'sweep' must be an object of numbers, e.g. {\"sigma\": 0.5}");
      for (auto& [k, v] : p["sweep"].items()) {
        require(v.is_number() && std::isfinite(v.get<double>()) && !k.empty() && safe(k) == k,
                w + ": sweep." + k + " must be a finite number under a [A-Za-z0-9.-=] key");
        s.sweep[k] = v.get<double>();
      }
    }
    require(!s.op.empty(), w + ": 'op' is required");
    if (s.name.empty()) s.name = "p" + std::to_string(i);
    require(safe(s.name) == s.name && names.insert(s.name).second, w + ": name '" + s.name + "' is not unique/safe");
    c.problems.push_back(s);
  }
  names.clear();
  for (size_t i = 0; i < j["methods"].size(); ++i) {
    const json& m = j["methods"][i];
    std::string w = where + ": methods[" + std::to_string(i) + "]";
    only_keys(m, {"label", "method", "set"}, w);
    MethodSpec s;
    s.method = m.value("method", "");
    require(!s.method.empty(), w + ": 'method' is required");
    s.label = m.value("label", s.method);
    require(safe(s.label) == s.label && names.insert(s.label).second, w + ": label '" + s.label + "' is not unique/safe");
    if (m.contains("set")) {
      require(m["set"].is_object(), w + ".set: expected an object {key: value or [values]}");  // keys: the solver's
      for (auto& [k, v] : m["set"].items()) {
        std::vector<std::string> values;
        if (v.is_array()) {
          require(!v.empty(), w + ".set." + k + ": empty list");
          for (auto& e : v) values.push_back(value_text(e, w + ".set." + k));
        } else {
          values.push_back(value_text(v, w + ".set." + k));
        }
        s.settings.emplace_back(k, values);
      }
    }
    c.methods.push_back(s);
  }
  return c;
}

std::vector<Cell> expand(const ExperimentConfig& config) {
  std::vector<Cell> cells;
  for (const auto& p : config.problems) {
    for (const auto& m : config.methods) {
      // cartesian product over the listed values (keys in JSON object order, i.e. sorted; the
      // first key varies fastest)
      std::vector<size_t> idx(m.settings.size(), 0);
      while (true) {
        Cell c{&p, &m, {}, {}, ""};
        std::string key;
        for (size_t k = 0; k < m.settings.size(); ++k) {
          const auto& [name, values] = m.settings[k];
          c.settings.push_back(name + "=" + values[idx[k]]);
          if (values.size() > 1) {
            c.swept[name] = values[idx[k]];
            key += (key.empty() ? "" : ",") + name + "=" + values[idx[k]];
          }
        }
        c.id = p.name + "/" + m.label + "/" + (key.empty() ? "default" : safe(key));
        cells.push_back(std::move(c));
        size_t k = 0;
        for (; k < idx.size(); ++k) {
          if (++idx[k] < m.settings[k].second.size()) break;
          idx[k] = 0;
        }
        if (k == idx.size()) break;
      }
    }
  }
  return cells;
}

// ---- running ------------------------------------------------------------------------------------

namespace {

struct Shared {
  torch::Tensor x;  // truth [N, C, H, W]
  diffusion::Prior prior;
  metric::Classifier classifier{nullptr};
  torch::Device device = torch::kCPU;
  std::map<std::string, Problem> problems;
  std::map<std::string, torch::Tensor> ys;
};

std::vector<double> to_vector(const torch::Tensor& t) {
  if (!t.defined()) return {};
  auto c = t.to(torch::kFloat64).contiguous().cpu();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

json cell_description(const Cell& c, const Shared& s, const ExperimentConfig& cfg, const json& options) {
  const Problem& p = s.problems.at(c.problem->name);
  return {{"problem", {{"name", c.problem->name}, {"op", p.op->spec()}, {"channel", p.channel->spec()}}},
          {"method", c.method->method},
          {"label", c.method->label},
          {"options", options},
          {"images", cfg.images},
          {"seed", cfg.seed},
          {"batch", cfg.batch},
          {"prior_sha256", s.prior.sha256},
          {"classifier", cfg.classifier}};
}

json run_cell(const Cell& c, Shared& s, const ExperimentConfig& cfg, const fs::path& dir) {
  Params params = solve::resolve_solver(c.method->method, c.settings);
  const auto& entry = solve::solver_registry().find(c.method->method);
  const Problem& problem = s.problems.at(c.problem->name);
  const torch::Tensor& y = s.ys.at(c.problem->name);
  const int64_t n = y.size(0), per = cfg.batch > 0 ? std::min(cfg.batch, n) : n;
  torch::Generator gen = make_generator(cfg.seed);  // per cell: independent of the order cells run in
  std::vector<torch::Tensor> parts;
  solve::Cost cost;
  try {
    for (int64_t i = 0; i < n; i += per) {
      torch::Tensor yb = y.slice(0, i, std::min(n, i + per)).to(s.device);
      solve::SolveContext ctx{problem, yb, entry.make.uses_prior ? *s.prior.denoiser : solve::no_prior(), gen, {}};
      auto r = entry.make.run(params, ctx);
      parts.push_back(r.estimate.detach().to(torch::kCPU, torch::kFloat32));
      cost.nfe += r.cost.nfe;
      cost.network_grads += r.cost.network_grads;
      cost.likelihood_grads += r.cost.likelihood_grads;
      cost.seconds += r.cost.seconds;
      cost.peak_rss_bytes = std::max(cost.peak_rss_bytes, r.cost.peak_rss_bytes);
    }
  } catch (const InputError& e) {
    // Options were validated before any cell ran, so what fails here depends on the data: a step
    // size that diverges, typically. A sweep over step sizes must go on and show it, so the cell
    // is kept as failed (no metrics; a blank column in the comparison) instead of ending the run.
    fs::create_directories(dir);
    io::write_npy((dir / "estimate.npy").string(), torch::zeros_like(s.x));
    json empty = json::array();
    return {{"cost", cost.to_json()},
            {"failed", e.what()},
            {"metrics",
             {{"psnr", empty}, {"ssim", empty}, {"cosine", empty}, {"rel_norm_error", empty},
              {"classifier_feature_distance", empty}}},
            {"solve_calls", 0}};
  }
  torch::Tensor est = torch::cat(parts);
  auto m = metric::compute_image_metrics(est, s.x, s.classifier ? &s.classifier : nullptr);
  json metrics = {{"psnr", to_vector(m.psnr)},
                  {"ssim", to_vector(m.ssim)},
                  {"cosine", to_vector(m.cosine)},
                  {"rel_norm_error", to_vector(m.rel_norm_error)},
                  {"classifier_feature_distance", to_vector(m.classifier_feature_distance)}};
  if (m.classifier_frechet_distance) metrics["classifier_frechet_distance"] = *m.classifier_frechet_distance;
  fs::create_directories(dir);
  io::write_npy((dir / "estimate.npy").string(), est);
  return {{"cost", cost.to_json()}, {"metrics", metrics}, {"solve_calls", (n + per - 1) / per}};
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

void write_outputs(const ExperimentConfig& cfg, const std::vector<Cell>& cells, const std::vector<json>& results,
                   Shared& s, const fs::path& out) {
  // results.csv
  std::ostringstream csv;
  csv << "problem,label,method,setting,image,psnr,ssim,cosine,rel_norm_error,classifier_feature_distance,nfe,"
         "seconds_per_image\n";
  csv << std::setprecision(10);
  const int64_t n = s.x.size(0);
  for (size_t i = 0; i < cells.size(); ++i) {
    const json& m = results[i]["metrics"];
    const double spi = results[i]["cost"]["seconds"].get<double>() / static_cast<double>(n);
    for (int64_t k = 0; k < n; ++k) {
      auto at = [&](const char* key) {
        const auto& v = m[key];
        return v.size() > static_cast<size_t>(k) && !v[k].is_null() ? fmt(v[k].get<double>(), 6) : std::string();
      };
      csv << cells[i].problem->name << "," << cells[i].method->label << "," << cells[i].method->method << ",\""
          << setting_text(cells[i]) << "\"," << k << "," << at("psnr") << "," << at("ssim") << "," << at("cosine") << ","
          << at("rel_norm_error") << "," << at("classifier_feature_distance") << ","
          << results[i]["cost"]["nfe"].get<int64_t>() << "," << spi << "\n";
    }
  }
  atomic_write_file((out / "results.csv").string(), csv.str());

  // table.md
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
  }
  atomic_write_file((out / "table.md").string(), md.str());

  // comparison_<problem>.png: rows = first 8 images; columns: truth, Aᵀy, first setting of each label
  const int64_t rows = std::min<int64_t>(n, 8);
  if (s.x.dim() == 4) {
    for (const auto& p : cfg.problems) {
      std::vector<torch::Tensor> cols{s.x.slice(0, 0, rows)};
      const Problem& pr = s.problems.at(p.name);
      if (pr.op->linear() && !s.ys.at(p.name).is_complex()) {
        torch::NoGradGuard no_grad;
        cols.push_back(stretch(pr.op->adjoint(s.ys.at(p.name).slice(0, 0, rows).to(s.device)).cpu()));
      }
      std::set<std::string> seen;
      for (size_t i = 0; i < cells.size(); ++i) {
        if (cells[i].problem != &p || !seen.insert(cells[i].method->label).second) continue;
        cols.push_back(io::read_npy((out / "cells" / cells[i].id / "estimate.npy").string()).slice(0, 0, rows).clamp(-1, 1));
      }
      auto grid = torch::stack(cols, 1).flatten(0, 1);
      io::write_png((out / ("comparison_" + p.name + ".png")).string(), io::make_grid(grid, static_cast<int64_t>(cols.size())));
    }
  }

  // sweeps: per problem, label and swept key, mean ± SE of PSNR against the value (numeric only)
  for (const auto& p : cfg.problems) {
    for (const auto& m : cfg.methods) {
      for (const auto& [key, values] : m.settings) {
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

  // problem axes: a key two or more problems carry, PSNR against its value per method label
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

int64_t run_experiment(const ExperimentConfig& cfg, const RunOptions& o) {
  auto log = [&](const std::string& line) {
    if (o.log) o.log(line);
  };
  require(!cfg.output.empty(), "experiment " + cfg.name + ": no output directory (set 'output' or --output)");
  const fs::path out(cfg.output);
  std::vector<Cell> cells = expand(cfg);
  // Validate every cell's options before any work: a typo in the last cell must not cost hours.
  std::vector<json> options;
  bool needs_prior = false;  // self-diffusion and DIP bring their own network
  for (const auto& c : cells) {
    Params p = solve::resolve_solver(c.method->method, c.settings);
    const auto& entry = solve::solver_registry().find(c.method->method);
    options.push_back(entry.make.describe(p));
    needs_prior = needs_prior || entry.make.uses_prior;
  }

  Shared s;
  s.device = parse_device(o.device);
  std::vector<torch::Tensor> parts;
  for (auto& ref : cfg.images) {
    parts.push_back(data::load_reference(ref));
    require(parts.back().sizes().slice(1) == parts[0].sizes().slice(1),
            "experiment " + cfg.name + ": images '" + ref + "' differ in shape from '" + cfg.images[0] + "'");
  }
  s.x = torch::cat(parts).contiguous();
  if (needs_prior)
    s.prior = diffusion::load_prior(cfg.prior.empty() ? kDefaultPrior : cfg.prior, s.device);
  s.classifier = metric::choose_classifier(cfg.classifier, s.x);
  op::Shape item(s.x.sizes().begin() + 1, s.x.sizes().end());
  for (const auto& p : cfg.problems) {
    Problem pr = make_problem(p.op, p.channel, item, cfg.seed);
    s.ys[p.name] = simulate(pr, s.x);
    s.problems[p.name] = pr;
  }
  if (needs_prior) {
    op::Shape want = s.prior.item_shape();
    require(item == want, "experiment " + cfg.name + ": the prior makes images " + op::shape_text(want) +
                              " but the images are " + op::shape_text(item));
  }
  for (auto& [name, pr] : s.problems) pr.op->to(s.device);

  std::vector<json> results(cells.size());
  int64_t computed = 0;
  for (size_t i = 0; i < cells.size(); ++i) {
    const Cell& c = cells[i];
    const fs::path dir = out / "cells" / c.id;
    json desc = cell_description(c, s, cfg, options[i]);
    const std::string tag = "cell " + std::to_string(i + 1) + "/" + std::to_string(cells.size()) + " " + c.id;
    if (fs::exists(dir / "cell.json") && fs::exists(dir / "estimate.npy")) {
      json old = json::parse(read_file((dir / "cell.json").string()), nullptr, false);
      if (!old.is_discarded() && old.value("description", json()) == desc) {
        results[i] = old;
        log(tag + ": done before, kept");
        continue;
      }
    }
    if (o.dry_run) {
      log(tag + ": to run");
      continue;
    }
    log(tag + ": running (" + setting_text(c) + ")");
    json r = run_cell(c, s, cfg, dir);
    r["description"] = desc;
    atomic_write_file((dir / "cell.json").string(), r.dump(1) + "\n");
    results[i] = r;
    ++computed;
    if (r.contains("failed")) {
      log(tag + ": failed (" + r["failed"].get<std::string>() + "); kept as failed, the run goes on");
      continue;
    }
    auto [pm, pse] = mean_se(r["metrics"]["psnr"].get<std::vector<double>>());
    log(tag + ": PSNR " + fmt(pm, 2) + " ± " + fmt(pse, 2) + " dB, " + std::to_string(r["cost"]["nfe"].get<int64_t>()) +
        " NFE, " + fmt(r["cost"]["seconds"].get<double>(), 1) + " s");
  }
  if (o.dry_run) return 0;
  write_outputs(cfg, cells, results, s, out);
  json grid = {{"name", cfg.name},
               {"version", TWEEDIE_VERSION " " TWEEDIE_GIT_HASH},
               {"prior", needs_prior ? s.prior.describe() : json(nullptr)},
               {"images", cfg.images},
               {"seed", cfg.seed},
               {"cells", json::array()}};
  for (size_t i = 0; i < cells.size(); ++i)
    grid["cells"].push_back({{"id", cells[i].id}, {"settings", cells[i].settings}, {"options", options[i]}});
  atomic_write_file((out / "experiment.json").string(), grid.dump(2) + "\n");
  log("wrote " + out.string() + ": results.csv, table.md, comparison_*.png" + std::string(" (") +
      std::to_string(computed) + " cells computed, " + std::to_string(cells.size() - computed) + " kept)");
  return computed;
}

}  // namespace tweedie::experiment
