// End to end at the seeds' scale (issue 15, item 3): Diff-OneBit and SIM-DMIS on a 3×256×256
// image with M/N = 1/16 one-bit measurements, on the FFHQ-256 DPS architecture
// (models/configs/ffhq256_dps.json, 93.6 M parameters) with random weights, as the checkpoint
// cannot be had here. Random weights cost the same per NFE as trained ones; the estimates are
// noise, so no quality is reported.
//
//   build/bench/bench_scale [--size 256] [--ratio 0.0625] [--threads 2] [--full]
//                           [--ops srht,gaussian] [--json FILE] [--md FILE]
//
// What it measures, each in this one run:
//  * the network: seconds per NFE at batch 1 (inference, minimum of 3 after a warm-up), and its
//    FLOPs from the U-Net's own count;
//  * each operator: seconds per likelihood gradient (A x, the probit NLL, its gradient through
//    Aᵀ: the unit Diff-OneBit spends 2000 of), and the peak memory a gradient adds;
//  * each solver on each operator: wall seconds per image, split into network time (timed inside
//    the ε-model) and the rest (likelihood gradients, the inner optimiser, solver arithmetic),
//    with peak resident memory.
// A solver at its default budget (Diff-OneBit 20 NFE + 2000 gradients; SIM-DMIS 150 NFE) takes
// hours with the matrix-free Gaussian on 2 cores, so by default each solver runs at a reduced
// budget (stated in the table) and its defaults are projected from the same run's measured
// seconds per NFE and per gradient; --full runs the defaults. Diff-OneBit on SRHT runs at its
// defaults always (about a minute), which checks the projection against a full run.
//
// Memory must stay O(N): the dense A would be M·N·4 bytes (9.7 GB at 256², M/N = 1/16); the
// table gives the process's peak beside it. The high-water mark is reset before each row
// (/proc/self/clear_refs), so each row's peak is its own.
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/memory.h"
#include "tweedie/core/runtime.h"
#include "tweedie/data/test_images.h"
#include "tweedie/diffusion/denoiser.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/diffusion/unet.h"
#include "tweedie/problem.h"
#include "tweedie/solve/likelihood.h"
#include "tweedie/solve/solver.h"
#include "bench_support.h"

namespace {

using namespace tweedie;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Args {
  int64_t size = 256;
  double ratio = 1.0 / 16;
  int threads = 0;
  bool full = false;
  std::vector<std::string> ops{"srht", "gaussian"};
  std::string json_path, md_path;
};

// The flags, by CLI11 (as the tweedie CLI); a malformed value is a one-line error.
void add_flags(CLI::App& app, Args& a) {
  app.add_option("--size", a.size, "image size (3 x size x size)")->check(CLI::Range(int64_t{32}, int64_t{1024}));
  app.add_option("--ratio", a.ratio, "M/N")->check(CLI::Range(1e-6, 1.0));
  app.add_option("--threads", a.threads, "intra-op threads (0: TWEEDIE_BENCH_THREADS, else 2)");
  app.add_flag("--full", a.full, "run every solver at its defaults (hours with the matrix-free Gaussian)");
  app.add_option("--ops", a.ops, "operators")->delimiter(',')->check(CLI::IsMember({"srht", "gaussian"}));
  app.add_option("--json", a.json_path, "write the results as JSON");
  app.add_option("--md", a.md_path, "write the table as Markdown");
}

// The FFHQ-256 DPS network at `size`, random weights (seed 0), with an ε-model that adds the
// wall time of every forward call to `*network_seconds`.
struct TimedPrior {
  diffusion::UNet net{nullptr};
  diffusion::Schedule base;
  std::shared_ptr<diffusion::EpsDenoiser> denoiser;
  std::shared_ptr<double> network_seconds = std::make_shared<double>(0);
};

// Seconds per NFE at batch 1, inference mode: the fastest of 3 calls after a warm-up.
double time_nfe(diffusion::UNet& net, const torch::Tensor& x) {
  const torch::Tensor t = torch::full({1}, 500, torch::kLong);
  double best = 1e30;
  for (int r = 0; r < 4; ++r) {
    torch::InferenceMode guard;
    const auto t0 = Clock::now();
    net->forward(x, t);
    if (r > 0) best = std::min(best, seconds_since(t0));  // r = 0 warms up
  }
  return best;
}


TimedPrior make_prior(int64_t size) {
  std::ifstream f(data_path("models/configs/ffhq256_dps.json"));
  require(f.good(), "models/configs/ffhq256_dps.json not found");
  json j = json::parse(f);
  j["unet_kwargs"]["image_size"] = size;
  torch::manual_seed(0);
  TimedPrior p;
  p.net = diffusion::UNet(diffusion::UNetConfig::from_json(j));
  p.net->eval();
  p.base = diffusion::make_schedule("linear", 1000);
  diffusion::EpsDenoiserOptions options;
  options.variance = diffusion::VarianceType::kLearnedRange;
  auto net = p.net;
  auto seconds = p.network_seconds;
  diffusion::EpsModel model = [net, seconds](const torch::Tensor& x, const torch::Tensor& t) mutable {
    const auto t0 = Clock::now();
    torch::Tensor out = net->forward(x, t);
    *seconds += seconds_since(t0);
    return out;
  };
  p.denoiser = std::make_shared<diffusion::EpsDenoiser>(model, p.base, options);
  return p;
}

torch::Tensor test_image(int64_t size) {
  torch::Tensor x = data::load_test_image("astronaut").unsqueeze(0);  // [1, 3, 512, 512] in [-1, 1]
  if (x.size(-1) != size)
    x = torch::nn::functional::interpolate(
        x, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{size, size}).mode(torch::kArea));
  return x.contiguous();
}

// --ops names (CLI11 admits only these two) as operator specs.
std::string op_spec(const std::string& op, double ratio) {
  std::ostringstream s;
  s.precision(17);
  if (op == "srht") s << "srht:ratio=" << ratio;
  else s << "gaussian:ratio=" << ratio << ",impl=matrix-free";
  return s.str();
}

double mb(int64_t bytes) { return static_cast<double>(bytes) / 1e6; }

struct Row {
  std::string solver, op, settings;
  int64_t nfe = 0, grads = 0;
  double wall = 0, network = 0, peak_mb = 0, start_mb = 0;  // peak, and resident at the start
  double default_nfe = 0, default_grads = 0;
  double projected = 0;  // seconds per image at the default budget, from this row's rates
  bool ran_defaults = false;
};

}  // namespace

int main(int argc, char** argv) {
  tweedie::keep_freed_memory();  // as the CLI does (runtime.h)
  CLI::App app{"Diff-OneBit and SIM-DMIS at the seeds' scale"};
  Args a;
  add_flags(app, a);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "bench_scale: error: %s\n", e.what());
    return 2;
  }
  try {
    require(a.size % 32 == 0, "--size must be a multiple of 32, got " + std::to_string(a.size));
    set_threads(a.threads > 0 ? a.threads : bench::bench_threads(2));
    torch::NoGradGuard no_grad_outside_solvers;  // solvers enable gradients where they need them
    const int64_t n = 3 * a.size * a.size;
    const int64_t m = static_cast<int64_t>(a.ratio * static_cast<double>(n));
    std::fprintf(stderr, "bench_scale: 3x%lldx%lld, N = %lld, M = %lld, %d threads\n", (long long)a.size,
                 (long long)a.size, (long long)n, (long long)m, torch::get_num_threads());

    // ---- the network ---------------------------------------------------------------------------
    TimedPrior prior = make_prior(a.size);
    const torch::Tensor x = test_image(a.size);
    // Per NFE in the network's default activation layout (the figure the solvers run at), then
    // in the other one, so that the layout choice is checked at this size too.
    using Layout = tweedie::diffusion::UNetImpl::Layout;
    const Layout default_layout = prior.net->layout(), other_layout = Layout::kNchw;
    double t_nfe = 0;
    {
      reset_peak_resident();
      const int64_t rss0 = resident_bytes();
      t_nfe = time_nfe(prior.net, x);
      std::fprintf(stderr, "network: %.3f s per NFE (%.1f GFLOP, %s), forward peak +%.0f MB\n", t_nfe,
                   prior.net->flops_per_image() / 1e9, layout_name(default_layout), mb(peak_resident_bytes() - rss0));
    }
    json out = {{"size", a.size},
                {"n", n},
                {"m", m},
                {"threads", torch::get_num_threads()},
                {"parameters", prior.net->num_parameters()},
                {"gflop_per_nfe", prior.net->flops_per_image() / 1e9},
                {"network_seconds_per_nfe", t_nfe},
                {"network_layout", layout_name(default_layout)},
                {"dense_matrix_mb", 4.0 * static_cast<double>(m) * static_cast<double>(n) / 1e6}};

    // ---- operators and solvers -----------------------------------------------------------------
    std::vector<Row> rows;
    json ops = json::object();
    for (const std::string& op : a.ops) {
      const std::string spec = op_spec(op, a.ratio);
      Problem problem = make_problem(spec, "sign:sigma=0.5", {3, a.size, a.size}, 0);
      const torch::Tensor y = simulate(problem, x);
      // one likelihood gradient: A x, the probit NLL, Aᵀ(∂NLL/∂(A x))
      const solve::Likelihood data(problem, y);
      const torch::Tensor at = torch::zeros_like(x);
      double t_grad = 1e30;
      reset_peak_resident();
      const int64_t rss0 = resident_bytes();
      // SRHT: one warm-up call, then the fastest of 5; the matrix-free Gaussian: one call (seconds)
      const bool cheap = op == "srht";
      if (cheap) data.grad(at);
      for (int r = 0; r < (cheap ? 5 : 1); ++r) {
        const auto t0 = Clock::now();
        data.grad(at);
        t_grad = std::min(t_grad, seconds_since(t0));
      }
      const double grad_peak = mb(peak_resident_bytes() - rss0);
      std::fprintf(stderr, "%s: %.4f s per likelihood gradient, peak +%.0f MB\n", op.c_str(), t_grad, grad_peak);
      ops[op] = {{"spec", spec}, {"seconds_per_gradient", t_grad}, {"gradient_peak_extra_mb", grad_peak}};

      struct Case {
        std::string solver;
        std::vector<std::string> set;  // the reduced budget ({} = defaults)
        double default_nfe, default_grads;
      };
      const bool srht = op == "srht";
      std::vector<Case> cases = {
          {"diff-onebit", a.full || srht ? std::vector<std::string>{} : std::vector<std::string>{"steps=2", "inner_steps=2"},
           20, 2000},
          {"sim-dmis", a.full ? std::vector<std::string>{} : std::vector<std::string>{"inversion_steps=4", "sampling_steps=2"},
           150, 0}};
      for (const Case& c : cases) {
        Params params = solve::resolve_solver(c.solver, c.set);
        const auto& entry = solve::solver_registry().find(c.solver);
        torch::Generator gen = make_generator(0);
        solve::SolveContext ctx{problem, y, *prior.denoiser, gen, {}};
        *prior.network_seconds = 0;
        reset_peak_resident();
        const double start_mb = mb(resident_bytes());
        std::fprintf(stderr, "%s on %s (%s): running\n", c.solver.c_str(), op.c_str(),
                     c.set.empty() ? "defaults" : "reduced budget");
        const auto t0 = Clock::now();
        solve::Result r = entry.make.run(params, ctx);
        Row row;
        row.wall = seconds_since(t0);
        row.solver = c.solver;
        row.op = op;
        for (const auto& s : c.set) row.settings += (row.settings.empty() ? "" : ",") + s;
        if (row.settings.empty()) row.settings = "defaults";
        row.nfe = r.cost.nfe;
        row.grads = r.cost.likelihood_grads;
        row.network = *prior.network_seconds;
        row.peak_mb = mb(peak_resident_bytes());
        row.start_mb = start_mb;
        row.default_nfe = c.default_nfe;
        row.default_grads = c.default_grads;
        row.ran_defaults = c.set.empty();
        // projection at the defaults from this row's own rates: network per NFE, rest per gradient
        // (SIM-DMIS: rest is per run, its few operator products do not scale with NFE)
        const double per_nfe = row.network / static_cast<double>(std::max<int64_t>(row.nfe, 1));
        const double rest = row.wall - row.network;
        row.projected = c.default_nfe * per_nfe +
                        (row.grads > 0 ? c.default_grads * rest / static_cast<double>(row.grads) : rest);
        std::fprintf(stderr, "  %.1f s: network %.1f s (%lld NFE), rest %.1f s (%lld gradients), peak %.0f MB\n",
                     row.wall, row.network, (long long)row.nfe, rest, (long long)row.grads, row.peak_mb);
        rows.push_back(row);
      }
    }
    out["operators"] = ops;
    // The other layout last, so that its buffers do not count in the rows' peak memory.
    prior.net->set_layout(other_layout);
    const double t_nfe_other = time_nfe(prior.net, x);
    prior.net->set_layout(default_layout);
    std::fprintf(stderr, "network in %s activations: %.3f s per NFE\n", layout_name(other_layout), t_nfe_other);
    out["network_seconds_per_nfe_other_layout"] = t_nfe_other;

    // ---- the table -----------------------------------------------------------------------------
    std::ostringstream md;
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "3×%lld×%lld, M/N = %g (M = %lld), FFHQ-256 DPS U-Net (random weights, %.1f GFLOP per NFE), %d threads: "
                  "%.2f s per NFE at batch 1 in %s activations (%.2f s in %s).\n\n",
                  (long long)a.size, (long long)a.size, a.ratio, (long long)m, prior.net->flops_per_image() / 1e9,
                  torch::get_num_threads(), t_nfe, layout_name(default_layout), t_nfe_other, layout_name(other_layout));
    md << buf;
    md << "| solver | operator | run | NFE | likelihood gradients | s / image | network s | rest s | peak MB (at start) | "
          "s / image at the defaults |\n|---|---|---|---|---|---|---|---|---|---|\n";
    json jrows = json::array();
    for (const Row& r : rows) {
      std::snprintf(buf, sizeof buf, "| %s | %s | %s | %lld | %lld | %.1f | %.1f | %.1f | %.0f (%.0f) | %.0f%s |\n",
                    r.solver.c_str(), r.op.c_str(), r.settings.c_str(), (long long)r.nfe, (long long)r.grads, r.wall,
                    r.network, r.wall - r.network, r.peak_mb, r.start_mb, r.projected, r.ran_defaults ? " (measured)" : " (projected)");
      md << buf;
      jrows.push_back({{"solver", r.solver},
                       {"operator", r.op},
                       {"settings", r.settings},
                       {"nfe", r.nfe},
                       {"likelihood_grads", r.grads},
                       {"seconds", r.wall},
                       {"network_seconds", r.network},
                       {"peak_mb", r.peak_mb},
                       {"resident_at_start_mb", r.start_mb},
                       {"default_nfe", r.default_nfe},
                       {"default_likelihood_grads", r.default_grads},
                       {"seconds_at_defaults", r.projected},
                       {"ran_defaults", r.ran_defaults}});
    }
    std::snprintf(buf, sizeof buf, "\nThe dense A would take %.0f MB.\n", 4.0 * double(m) * double(n) / 1e6);
    md << buf;
    out["rows"] = jrows;
    std::cout << md.str();
    if (!a.json_path.empty()) atomic_write_file(a.json_path, out.dump(2) + "\n");
    if (!a.md_path.empty()) atomic_write_file(a.md_path, md.str());
    return 0;
  } catch (const InputError& e) {
    std::fprintf(stderr, "bench_scale: error: %s\n", e.what());
    return 2;
  }
}
