#include "tweedie/experiment/experiment.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/interrupt.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/version.h"
#include "tweedie/diffusion/gmm_posterior.h"
#include "tweedie/experiment/posterior_scores.h"
#include "tweedie/experiment/report.h"
#include "tweedie/data/reference.h"
#include "tweedie/diffusion/prior.h"
#include "tweedie/io/npy.h"
#include "tweedie/metric/suite.h"
#include "tweedie/problem.h"
#include "tweedie/solve/batched.h"
#include "tweedie/solve/exact.h"
#include "tweedie/solve/solver.h"

namespace tweedie::experiment {

namespace fs = std::filesystem;
using nlohmann::json;
using detail::fmt;
using detail::mean_se;
using detail::safe;
using detail::setting_text;
using detail::Workspace;

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

}  // namespace

ExperimentConfig ExperimentConfig::from_json(const json& j, const std::string& where) {
  only_keys(j, {"name", "description", "images", "seed", "batch", "prior", "classifier", "samples", "reference_draws",
                "problems", "methods", "output"},
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
    c.samples = j.value("samples", int64_t{0});
    c.reference_draws = j.value("reference_draws", int64_t{256});
    c.output = j.value("output", "");
  } catch (const json::exception& e) {
    throw json_input_error(where, e);
  }
  require(!c.name.empty() && safe(c.name) == c.name, where + ": 'name' must be non-empty [A-Za-z0-9.-=]");
  require(!c.images.empty(), where + ": 'images' is empty");
  require(c.batch >= 0, where + ": 'batch' must be >= 0");
  require(c.samples >= 0, where + ": 'samples' must be >= 0 (0 = one estimate per image)");
  require(c.reference_draws >= 2, where + ": 'reference_draws' must be >= 2");
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
  const std::set<std::string> names_of_problems = names;
  names.clear();
  for (size_t i = 0; i < j["methods"].size(); ++i) {
    const json& m = j["methods"][i];
    std::string w = where + ": methods[" + std::to_string(i) + "]";
    only_keys(m, {"label", "method", "set", "set_for"}, w);
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
    if (m.contains("set_for")) {
      const std::string ws = w + ".set_for";
      require(m["set_for"].is_object(), ws + ": expected an object {problem: {key: value}}");
      for (auto& [problem, set] : m["set_for"].items()) {
        require(names_of_problems.count(problem) == 1, ws + "." + problem + ": no problem of that name");
        require(set.is_object(), ws + "." + problem + ": expected an object {key: value}");
        for (auto& [k, v] : set.items()) s.per_problem[problem].emplace_back(k, value_text(v, ws + "." + problem + "." + k));
      }
    }
    c.methods.push_back(s);
  }
  return c;
}

std::vector<std::pair<std::string, std::vector<std::string>>> MethodSpec::settings_for(const std::string& problem) const {
  auto out = settings;
  auto it = per_problem.find(problem);
  if (it == per_problem.end()) return out;
  for (const auto& [k, v] : it->second) {
    auto same = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == k; });
    if (same != out.end())
      same->second = {v};
    else
      out.emplace_back(k, std::vector<std::string>{v});
  }
  return out;
}

std::vector<Cell> expand(const ExperimentConfig& config) {
  std::vector<Cell> cells;
  for (const auto& p : config.problems) {
    for (const auto& m : config.methods) {
      // cartesian product over the listed values (keys in JSON object order, i.e. sorted; the
      // first key varies fastest)
      const auto settings = m.settings_for(p.name);
      std::vector<size_t> idx(settings.size(), 0);
      while (true) {
        Cell c{&p, &m, {}, {}, ""};
        std::string key;
        for (size_t k = 0; k < settings.size(); ++k) {
          const auto& [name, values] = settings[k];
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
          if (++idx[k] < settings[k].second.size()) break;
          idx[k] = 0;
        }
        if (k == idx.size()) break;
      }
    }
  }
  return cells;
}

// ---- stage 1: plan ------------------------------------------------------------------------------

namespace {

std::vector<double> to_vector(const torch::Tensor& t) {
  if (!t.defined()) return {};
  auto c = t.to(torch::kFloat64).contiguous().cpu();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Whether draws for `problem` can be scored: a mixture prior, and a reference posterior for the
// problem (solve/exact.h's one rule: closed form, probit Gibbs or MALA).
bool scoreable_problem(const Problem& problem, const diffusion::Prior& prior) {
  return prior.gmm && solve::reference_posterior(problem) != solve::ReferencePosterior::kNone;
}

}  // namespace

struct Runner::State {
  ExperimentConfig cfg;
  RunOptions options;
  fs::path out;
  std::vector<Cell> cells;
  std::vector<json> cell_options;  // each cell's resolved solver options
  std::vector<json> descriptions;  // what a stored cell must match to be kept
  // each problem's reference posterior (samples > 0), made at its first scored cell
  std::map<std::string, experiment::PosteriorReference> references;
  bool needs_prior = false;        // self-diffusion and DIP bring their own network
  Workspace ws;
};

Runner::Runner(ExperimentConfig config, const RunOptions& o) : s_(std::make_unique<State>()) {
  State& st = *s_;
  st.cfg = std::move(config);
  st.options = o;
  const ExperimentConfig& cfg = st.cfg;
  require(!cfg.output.empty(), "experiment " + cfg.name + ": no output directory (set 'output' or --output)");
  st.out = fs::path(cfg.output);
  st.cells = expand(cfg);
  // Validate every cell's options before any work: a typo in the last cell must not cost hours.
  for (const auto& c : st.cells) {
    Params p = solve::resolve_solver(c.method->method, c.settings);
    const auto& entry = solve::solver_registry().find(c.method->method);
    st.cell_options.push_back(entry.make.describe(p));
    st.needs_prior = st.needs_prior || entry.make.uses_prior;
  }

  Workspace& s = st.ws;
  s.device = parse_device(o.device);
  std::vector<torch::Tensor> parts;
  for (auto& ref : cfg.images) {
    parts.push_back(data::load_reference(ref));
    require(parts.back().sizes().slice(1) == parts[0].sizes().slice(1),
            "experiment " + cfg.name + ": images '" + ref + "' differ in shape from '" + cfg.images[0] + "'");
  }
  s.x = torch::cat(parts).contiguous();
  if (st.needs_prior)
    s.prior = diffusion::load_prior(cfg.prior.empty() ? kDefaultPrior : cfg.prior, s.device);
  s.classifier = metric::choose_classifier(cfg.classifier, s.x);
  op::Shape item(s.x.sizes().begin() + 1, s.x.sizes().end());
  for (const auto& p : cfg.problems) {
    Problem pr = make_problem(p.op, p.channel, item, cfg.seed);
    s.ys[p.name] = simulate(pr, s.x);
    s.problems[p.name] = pr;
  }
  if (st.needs_prior) s.prior.require_items(item, "experiment " + cfg.name, "the images are");
  for (auto& [name, pr] : s.problems) pr.op->to(s.device);
  if (o.require_exact_posterior) {
    require(cfg.samples >= 2, "posterior-eval " + cfg.name + ": set 'samples' to K >= 2 draws per measurement");
    require(st.needs_prior && s.prior.gmm != nullptr,
            "posterior-eval " + cfg.name + ": needs a Gaussian-mixture prior ('prior': \"gmm:FILE\"), whose posterior is exact");
    for (const auto& [name, pr] : s.problems)
      require(scoreable_problem(pr, s.prior),
              "posterior-eval " + cfg.name + ": problem " + name + " (" + pr.op->spec() + " + " + pr.channel->spec() +
                  ") has no reference posterior: it needs real measurements and a noisy channel (noise_std > 0)");
  }

  for (size_t i = 0; i < st.cells.size(); ++i) {
    const Cell& c = st.cells[i];
    const Problem& pr = s.problems.at(c.problem->name);
    st.descriptions.push_back(
        {{"problem", {{"name", c.problem->name}, {"op", pr.op->spec()}, {"channel", pr.channel->spec()}}},
         {"method", c.method->method},
         {"label", c.method->label},
         {"options", st.cell_options[i]},
         {"images", cfg.images},
         {"seed", cfg.seed},
         {"batch", cfg.batch},
         {"prior_sha256", s.prior.sha256},
         {"classifier", cfg.classifier}});
    if (cfg.samples > 0) {  // only then: cells stored before the key existed stay valid
      st.descriptions.back()["samples"] = cfg.samples;
      if (scoreable_problem(pr, s.prior)) st.descriptions.back()["reference_draws"] = cfg.reference_draws;
    }
  }
}

Runner::~Runner() = default;

const std::vector<Cell>& Runner::cells() const { return s_->cells; }

std::string Runner::tag(size_t i) const {
  return "cell " + std::to_string(i + 1) + "/" + std::to_string(s_->cells.size()) + " " + s_->cells[i].id;
}

std::optional<json> Runner::stored(size_t i) const {
  const fs::path dir = s_->out / "cells" / s_->cells[i].id;
  if (!fs::exists(dir / "cell.json") || !fs::exists(dir / "estimate.npy")) return std::nullopt;
  json old = json::parse(read_file((dir / "cell.json").string()), nullptr, false);
  if (old.is_discarded() || old.value("description", json()) != s_->descriptions[i]) return std::nullopt;
  return old;
}

std::vector<size_t> Runner::pending() const {
  std::vector<size_t> todo;
  for (size_t i = 0; i < s_->cells.size(); ++i)
    if (!stored(i)) todo.push_back(i);
  return todo;
}

// ---- stage 2: run a cell --------------------------------------------------------------------------

json Runner::run_cell(size_t i) {
  check_interrupt();  // between cells (and at every network evaluation inside one): stored cells stay
  State& st = *s_;
  const ExperimentConfig& cfg = st.cfg;
  Workspace& s = st.ws;
  const Cell& c = st.cells[i];
  const fs::path dir = st.out / "cells" / c.id;
  Params params = solve::resolve_solver(c.method->method, c.settings);
  const Problem& problem = s.problems.at(c.problem->name);
  const torch::Tensor& y = s.ys.at(c.problem->name);
  torch::Generator gen = make_generator(cfg.seed);  // per cell: independent of the order (and rank) cells run in
  solve::BatchedOptions bo;
  bo.batch = cfg.batch;
  bo.device = s.device;
  json r;
  try {
    solve::BatchedResult solved;
    solve::Draws draws;
    if (cfg.samples > 0) {
      draws = solve::solve_draws(c.method->method, params, problem, y, s.prior.denoiser.get(), gen, cfg.samples, bo);
      solved.estimate = draws.mean;
      solved.cost = draws.cost;
      solved.calls = draws.calls;
    } else {
      solved = solve::solve_batched(c.method->method, params, problem, y, s.prior.denoiser.get(), gen, bo);
    }
    const ActivityTimes scoring0 = activity_times();
    metric::ImageMetrics m;
    {
      ActivityScope metrics_scope(Activity::kMetrics);
      m = metric::compute_image_metrics(solved.estimate, s.x, s.classifier ? &s.classifier : nullptr);
    }
    json metrics = json::object();
    for (const auto& metric : metric::per_image_metrics()) metrics[metric.name] = to_vector(m.*metric.values);
    if (m.classifier_frechet_distance) metrics["classifier_frechet_distance"] = *m.classifier_frechet_distance;
    json posterior;
    if (cfg.samples > 0) {
      ActivityScope metrics_scope(Activity::kMetrics);
      const int64_t N = s.x.size(0), K = cfg.samples;
      const auto d = metric::compute_image_metrics(draws.samples.flatten(0, 1), s.x.repeat_interleave(K, 0), nullptr);
      metrics["draw_psnr"] = to_vector(d.psnr.view({N, K}).mean(1));
      metrics["draw_ssim"] = to_vector(d.ssim.view({N, K}).mean(1));
      if (scoreable_problem(problem, s.prior) && K >= 2) {
        auto found = st.references.find(c.problem->name);
        if (found == st.references.end()) {
          // from its own seed: the same reference in every cell, whichever rank makes it
          torch::Generator ref_gen = make_generator(cfg.seed + 1);
          PosteriorReference ref;
          // a sampled reference is kept beside the cells (references/PROBLEM.safetensors), keyed
          // by what it was sampled from, so a resumed run reuses it
          const auto kind = solve::reference_posterior(problem);
          const std::string ref_path = (st.out / "references" / (c.problem->name + ".safetensors")).string();
          const std::string ref_key =
              json{{"op", c.problem->op}, {"channel", c.problem->channel}, {"images", cfg.images}, {"seed", cfg.seed},
                   {"reference_draws", cfg.reference_draws}, {"samples", K}, {"prior", s.prior.sha256}}
                  .dump();
          const bool sampled = kind != solve::ReferencePosterior::kClosedForm;
          auto kept = sampled ? load_reference(ref_path, ref_key) : std::nullopt;
          if (kept) ref = std::move(*kept);
          else switch (kind) {
            case solve::ReferencePosterior::kClosedForm: {
              const diffusion::GmmPosterior post(*s.prior.gmm, op::dense_matrix(*problem.op, s.device), y.reshape({N, -1}),
                                                 problem.channel->noise_std(), "experiment " + cfg.name);
              ref = exact_reference(post, cfg.reference_draws, K, ref_gen);
              break;
            }
            case solve::ReferencePosterior::kProbitGibbs: {
              // 4 chains, 500 sweeps of warm-up, 2000 kept: the mixture's modes make some items mix
              // slowly (tests/unit/gmm_posterior_test.cpp); posterior.md reports the R̂ reached
              diffusion::ProbitGibbsOptions go;
              go.chains = 4;
              go.warmup = 500;
              go.iterations = 2000;
              ref = gibbs_reference(*s.prior.gmm, op::dense_matrix(*problem.op, s.device), y.reshape({N, -1}),
                                    problem.channel->noise_std(), cfg.reference_draws, K, go, ref_gen);
              break;
            }
            default: {
              // 4 chains, 2000 steps of warm-up, 4000 kept (every 8th stored: 2000 states per item);
              // posterior.md reports R̂, ESS and the acceptance rate
              diffusion::MalaOptions mo;
              mo.chains = 4;
              mo.warmup = 2000;
              mo.iterations = 4000;
              mo.thin = 8;
              ref = mala_reference(*s.prior.gmm, problem, y, cfg.reference_draws, K, mo, ref_gen);
            }
          }
          if (sampled && !kept) save_reference(ref_path, ref, ref_key);
          found = st.references.emplace(c.problem->name, std::move(ref)).first;
        }
        posterior = score_draws(*s.prior.gmm, found->second, draws.samples).to_json();
        posterior["reference"] = found->second.describe();
      }
    }
    {
      ActivityScope output(Activity::kOutput);
      fs::create_directories(dir);
      io::write_npy((dir / "estimate.npy").string(), solved.estimate);
      if (cfg.samples > 0) io::write_npy((dir / "samples.npy").string(), draws.samples);
    }
    // Scoring and output after the solve (cost.seconds is the solve's alone).
    const ActivityTimes scoring = activity_times() - scoring0;
    r = {{"cost", solved.cost.to_json()},
         {"metrics", metrics},
         {"solve_calls", solved.calls},
         {"scoring_seconds", scoring.to_json()}};
    if (!posterior.is_null()) r["posterior"] = posterior;
  } catch (const InputError& e) {
    // Options were validated before any cell ran, so what fails here depends on the data: a step
    // size that diverges, typically. A sweep over step sizes must go on and show it, so the cell
    // is kept as failed (no metrics; a blank column in the comparison) instead of ending the run.
    fs::create_directories(dir);
    io::write_npy((dir / "estimate.npy").string(), torch::zeros_like(s.x));
    json empty_metrics = json::object();
    for (const auto& metric : metric::per_image_metrics()) empty_metrics[metric.name] = json::array();
    r = {{"cost", solve::Cost{}.to_json()}, {"failed", e.what()}, {"metrics", empty_metrics}, {"solve_calls", 0}};
  }
  r["description"] = st.descriptions[i];
  // Written last and atomically: a cell is stored exactly when its cell.json is (a process killed
  // before this leaves the cell to be redone by the next run).
  atomic_write_file((dir / "cell.json").string(), r.dump(1) + "\n");
  return r;
}

// ---- stage 3: merge and report ------------------------------------------------------------------

void Runner::report() const {
  const State& st = *s_;
  std::vector<json> results;
  for (size_t i = 0; i < st.cells.size(); ++i) {
    auto r = stored(i);
    if (!r) throw InternalError("experiment " + st.cfg.name + ": " + tag(i) + " is not stored in " +
                                (st.out / "cells").string() + " after every rank finished");
    results.push_back(std::move(*r));
  }
  detail::write_report(st.cfg, st.cells, results, st.ws, st.out);
  json grid = {{"name", st.cfg.name},
               {"version", TWEEDIE_VERSION " " TWEEDIE_GIT_HASH},
               {"prior", st.needs_prior ? st.ws.prior.describe() : json(nullptr)},
               {"images", st.cfg.images},
               {"seed", st.cfg.seed},
               {"cells", json::array()}};
  for (size_t i = 0; i < st.cells.size(); ++i)
    grid["cells"].push_back({{"id", st.cells[i].id}, {"settings", st.cells[i].settings}, {"options", st.cell_options[i]}});
  atomic_write_file((st.out / "experiment.json").string(), grid.dump(2) + "\n");
}

// ---- the three stages over the ranks --------------------------------------------------------------

int64_t run_experiment(const ExperimentConfig& cfg, const RunOptions& o, Distributed* dist) {
  Distributed single;
  Distributed& d = dist != nullptr ? *dist : single;
  const std::string me = d.active() ? d.who() + ": " : "";
  auto log = [&](const std::string& line) {
    if (o.log) o.log(me + line);
  };
  Runner runner(cfg, o);  // every rank validates and loads; errors before any work
  const size_t n = runner.cells().size();
  // Every rank starts taking cells at once (a rank slow to load still gets its share), and a
  // rank that failed to load stops the others here, before any work.
  d.barrier("every rank has loaded " + cfg.name);
  // Rank 0 decides what is left, before any rank stores anything, and tells the others.
  std::vector<size_t> todo;
  if (d.is_root()) todo = runner.pending();
  todo = json::parse(d.broadcast_string("experiment/pending", json(todo).dump())).get<std::vector<size_t>>();
  if (d.is_root()) {
    std::set<size_t> left(todo.begin(), todo.end());
    for (size_t i = 0; i < n; ++i) {
      if (!left.count(i)) log(runner.tag(i) + ": done before, kept");
      else if (o.dry_run) log(runner.tag(i) + ": to run");
    }
  }
  if (o.dry_run) {
    d.barrier("dry run of " + cfg.name);  // rank 0 serves the store: it leaves after the others have read it
    return 0;
  }

  // The work queue: a counter in the TCPStore; each rank takes the next cell when it is free, so
  // a fast rank takes more. One process: the same loop over a local counter.
  int64_t computed_here = 0;
  for (;;) {
    const int64_t k = d.counter_add("experiment/next-cell", 1) - 1;
    if (k >= static_cast<int64_t>(todo.size())) break;
    const size_t i = todo[static_cast<size_t>(k)];
    log(runner.tag(i) + ": running (" + setting_text(runner.cells()[i]) + ")");
    json r = runner.run_cell(i);
    ++computed_here;
    if (r.contains("failed")) {
      log(runner.tag(i) + ": failed (" + r["failed"].get<std::string>() + "); kept as failed, the run goes on");
      continue;
    }
    auto [pm, pse] = mean_se(r["metrics"]["psnr"].get<std::vector<double>>());
    log(runner.tag(i) + ": PSNR " + fmt(pm, 2) + " ± " + fmt(pse, 2) + " dB, " +
        std::to_string(r["cost"]["nfe"].get<int64_t>()) + " NFE, " + fmt(r["cost"]["seconds"].get<double>(), 1) + " s");
  }
  d.barrier("every cell of " + cfg.name + " stored");
  if (!d.is_root()) {
    log(std::to_string(computed_here) + " cells computed by this rank; rank 0 writes the report");
    return computed_here;
  }
  runner.report();
  log("wrote " + cfg.output + ": results.csv, table.md, comparison_*.png (" + std::to_string(todo.size()) +
      " cells computed, " + std::to_string(n - todo.size()) + " kept" +
      (d.active() ? ", " + std::to_string(computed_here) + " by this rank" : "") + ")");
  return static_cast<int64_t>(todo.size());
}

}  // namespace tweedie::experiment
