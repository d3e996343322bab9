#include "tweedie/solve/batched.h"

#include <algorithm>

#include "tweedie/core/error.h"

namespace tweedie::solve {

void add_cost(Cost& total, const Cost& c) {
  total.nfe += c.nfe;
  total.network_grads += c.network_grads;
  total.likelihood_grads += c.likelihood_grads;
  total.seconds += c.seconds;
  total.activity += c.activity;
  total.peak_rss_bytes = std::max(total.peak_rss_bytes, c.peak_rss_bytes);
}

BatchedResult solve_batched(const std::string& method, const Params& params, const Problem& problem,
                            const torch::Tensor& y, const diffusion::EpsDenoiser* prior, torch::Generator& gen,
                            const BatchedOptions& o) {
  const auto& entry = solver_registry().find(method);
  if (entry.make.uses_prior && prior == nullptr)
    throw InternalError("solve_batched: " + method + " needs a prior and none was given");
  const diffusion::EpsDenoiser& denoiser = entry.make.uses_prior ? *prior : no_prior();
  require(o.batch >= 0, "batch must be >= 0");
  const int64_t n = y.size(0), per = o.batch > 0 ? std::min(o.batch, n) : n;
  BatchedResult out;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < n; i += per, ++out.calls) {
    const int64_t j = std::min(n, i + per);
    torch::Tensor yb = y.slice(0, i, j).to(o.device);
    SolveContext ctx{problem, yb, denoiser, gen, o.chunk_monitor ? o.chunk_monitor(i, j) : Monitor{}};
    Result r = entry.make.run(params, ctx);
    parts.push_back(r.estimate.detach().to(torch::kCPU, torch::kFloat32));
    add_cost(out.cost, r.cost);
    out.steps = r.steps;
    out.stopped_early = out.stopped_early || r.stopped_early;
    if (o.chunk_done) o.chunk_done(i, j, r);
  }
  out.estimate = parts.empty() ? torch::Tensor() : torch::cat(parts);
  return out;
}

Draws solve_draws(const std::string& method, const Params& params, const Problem& problem, const torch::Tensor& y,
                  const diffusion::EpsDenoiser* prior, torch::Generator& gen, int64_t draws,
                  const BatchedOptions& options) {
  require(draws >= 1, "samples must be at least 1, got " + std::to_string(draws));
  const int64_t n = y.size(0);
  BatchedResult r = solve_batched(method, params, problem, y.repeat_interleave(draws, 0), prior, gen, options);
  Draws out;
  std::vector<int64_t> shape{n, draws};
  shape.insert(shape.end(), r.estimate.sizes().begin() + 1, r.estimate.sizes().end());
  out.samples = r.estimate.view(shape);
  out.mean = out.samples.mean(1);
  out.std = draws > 1 ? out.samples.std(1, /*unbiased=*/true) : torch::zeros_like(out.mean);
  out.cost = r.cost;
  out.calls = r.calls;
  out.steps = r.steps;
  out.stopped_early = r.stopped_early;
  return out;
}

}  // namespace tweedie::solve
