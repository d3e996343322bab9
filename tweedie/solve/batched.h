#pragma once
// The batch loop every caller of a solver shares (`tweedie solve`, the experiment runner): the
// items of y are solved `batch` at a time, in order, with one generator carried from chunk to
// chunk, so the result is a function of (method, options, problem, y, prior, seed, batch) and
// never of who calls it. Estimates come back on the CPU as float32, costs summed (peak memory:
// the largest).
#include <torch/torch.h>

#include <functional>
#include <string>

#include "tweedie/core/registry.h"
#include "tweedie/solve/solver.h"

namespace tweedie::solve {

struct BatchedOptions {
  int64_t batch = 0;                       // items per solver call (0 = all at once)
  torch::Device device = torch::kCPU;      // where each chunk of y is moved before the call
  // The monitor for the chunk of items [begin, end) (progress bars, previews); may be empty.
  std::function<Monitor(int64_t begin, int64_t end)> chunk_monitor;
  // Called after each chunk with its result (to finish a progress bar, say); may be empty.
  std::function<void(int64_t begin, int64_t end, const Result&)> chunk_done;
};

struct BatchedResult {
  torch::Tensor estimate;  // [N, in_shape...], CPU float32
  Cost cost;               // summed over chunks; peak_rss_bytes the largest
  int64_t calls = 0;       // solver calls made (⌈N / batch⌉)
  int64_t steps = 0;       // outer steps of the last call
  bool stopped_early = false;  // whether a monitor stopped any call
};

// Adds `c` to `total` (counts and seconds summed, peak memory the maximum).
void add_cost(Cost& total, const Cost& c);

// Solves y [N, out_shape...] with the registered solver `method` and its resolved `params`.
// `prior` is ignored (no_prior() is passed) for solvers that bring their own network
// (uses_prior = false) and must be non-null otherwise. Exceptions from the solver (InputError for
// a diverging step size, say) propagate; nothing is written.
BatchedResult solve_batched(const std::string& method, const Params& params, const Problem& problem,
                            const torch::Tensor& y, const diffusion::EpsDenoiser* prior, torch::Generator& gen,
                            const BatchedOptions& options = {});

// K posterior draws per measurement (issue 28): y is repeated item-major (rows i·K … i·K + K − 1
// are item i's), the rows solved as one batch of N·K independent problems by solve_batched
// (`options.batch` counts rows), so a solver that batches draws all K at once. Each row has its
// own noise from the one generator: the draws are independent runs of the solver.
struct Draws {
  torch::Tensor samples;  // [N, K, in_shape...], CPU float32
  torch::Tensor mean;     // [N, in_shape...]: the draws' mean
  torch::Tensor std;      // [N, in_shape...]: their per-pixel standard deviation (K − 1 in the
                          // denominator; zeros when K = 1)
  Cost cost;              // of all N·K rows
  int64_t calls = 0, steps = 0;
  bool stopped_early = false;
};
Draws solve_draws(const std::string& method, const Params& params, const Problem& problem, const torch::Tensor& y,
                  const diffusion::EpsDenoiser* prior, torch::Generator& gen, int64_t draws,
                  const BatchedOptions& options = {});

}  // namespace tweedie::solve
