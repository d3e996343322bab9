#pragma once
// Parity with the authors' code (issue 27): each test replays a fixture that a generator in
// tests/parity/gen/ recorded by running the authors' own solver loop (their repository imported
// at generation time, never copied here) on the shipped converged prior and a small problem.
// A fixture directory tests/fixtures/parity/<name>/ holds
//   meta.json   repository, commit, settings, the list of recorded draws (kind, shape) and the
//               names of the stored tensors;
//   draws.npy   every random number the authors' loop drew, in order, flattened into one float32
//               vector (meta.json "draws" gives each draw's kind and shape);
//   <tensor>.npy  inputs (x, y, masks, ...) and the per-step trajectory (e.g. traj_x0 [S, B, ...]).
// The test runs our solver with the recorded draws replayed (core/runtime.h DrawReplay) and
// requires per-step agreement of the trajectory.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/prior.h"
#include "tweedie/op/operator.h"
#include "tweedie/solve/solver.h"

namespace tweedie::test {

struct ParityFixture {
  std::string name;
  nlohmann::json meta;
  std::vector<DrawReplay::Draw> draws;
  std::map<std::string, torch::Tensor> tensors;
  // The stored tensor `key` (float32 unless stored otherwise); fails the test when absent.
  const torch::Tensor& at(const std::string& key) const;
};

// tests/fixtures/parity/<name>/ (committed with the project).
std::filesystem::path parity_dir(const std::string& name);
// Loads every *.npy of the fixture and its draws; throws when the directory is missing.
ParityFixture load_parity(const std::string& name);

// The shipped converged prior (models/fmnist32-long), the network every fixture was made with,
// loaded once per process.
const diffusion::Prior& parity_prior();
// The same prior, a separate instance whose U-Net runs NCHW in inference too
// (UNetImpl::Layout::kNchw): PyTorch eager's operation order. The default channels-last inference
// path agrees with it to ~1e-6 relative in ε̂; that is enough where a solver amplifies tiny
// differences (Adam's first, sign-like step at near-zero gradient entries: RED-diff).
const diffusion::Prior& parity_prior_nchw();

// A linear operator y = A x on [C, H, W] items from a dense matrix A [M, N] (N = C·H·W), for
// fixtures whose operator is given as its matrix.
std::shared_ptr<op::Operator> dense_operator(const torch::Tensor& A, std::vector<int64_t> in_shape);

// Runs registered solver `name` with --set style settings and the fixture's draws replayed;
// every reported step's x̂0 (StepReport::x0) is appended to *x0_steps (when given). Also checks
// that every recorded draw was used.
solve::Result run_with_draws(const ParityFixture& f, const std::string& name, const std::vector<std::string>& set,
                             const Problem& problem, const torch::Tensor& y, const diffusion::EpsDenoiser& prior,
                             std::vector<torch::Tensor>* x0_steps = nullptr);

// max over steps s of ‖ours_s − theirs_s‖ / ‖theirs_s‖ (theirs: [S, ...]); fails the test when
// the step counts differ. `worst_step` receives the step of the maximum.
double max_relative_step_error(const std::vector<torch::Tensor>& ours, const torch::Tensor& theirs,
                               int64_t* worst_step = nullptr);

// " e_0 e_1 ...": each step's relative error (max_relative_step_error of that step alone), for a
// printed summary.
std::string per_step_errors(const std::vector<torch::Tensor>& ours, const torch::Tensor& theirs);

// ‖got − want‖ / ‖want‖ in double precision (got reshaped to want's shape).
double relative_error(const torch::Tensor& got, const torch::Tensor& want);

// Checks a replay against fixture f: the per-step estimates `steps` against the stored trajectory
// f.at(traj) (max_relative_step_error ≤ step_tol; a failure names the worst step), then `estimate`
// against f.at("final") (relative_error ≤ final_tol), and prints the one-line summary
//   [ <f.name> parity ] max per-step relative error <step> (step <worst_step>), final <final><note>
void expect_replay(const ParityFixture& f, const std::vector<torch::Tensor>& steps, const std::string& traj,
                   const torch::Tensor& estimate, double step_tol, double final_tol, const std::string& note = "");

// Our box-mask operator on [1, 32, 32] items for a fixture's box (JSON with h, w, top, left: the
// removed pixels), as "box-mask:h=..,w=..,top=..,left=..".
std::shared_ptr<op::Operator> box_mask(const nlohmann::json& box);

// v with 17 significant digits (%.17g): a --set value that reads back as v exactly.
std::string exact(double v);

}  // namespace tweedie::test
