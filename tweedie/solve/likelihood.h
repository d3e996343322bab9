#pragma once
// The data term every posterior solver shares: −log p(y | x) = nll(A(x), y) of a problem's
// channel over its operator, with its gradient by autograd through channel and operator, and a
// count of the gradients taken (each costs one A and one Aᵀ; Cost::likelihood_grads), as the
// prior counts its NFE.
//
// Also the `likelihood` option of the baselines (DPS, DiffPIR, DAPS, RED-diff, MO): the problem's
// own channel, or seed 001's linear form that ignores the link and treats y as A x + Gaussian
// noise ("their linear versions, ignoring the non-linear link function", seed 001 §IV).
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "tweedie/core/options.h"
#include "tweedie/core/registry.h"
#include "tweedie/problem.h"

namespace tweedie::solve {

struct SolveContext;

// ---- σ of the linear form: one meaning in every solver -------------------------------------------

// Every solver's `sigma` option (and MO's `mo_sigma`) is σ of the data model y = A x + σ n: a
// number ≥ 0 (0 = noiseless), or the word "channel" (kChannelSigma in the struct) for the problem
// channel's noise σ, Channel::noise_std() (σ of sign:sigma=σ, of gaussian:sigma=σ; the
// temperature of logistic). resolve_sigma() is the one place that reads it. Solvers whose data
// term divides by σ² (DiffPIR, DAPS, RED-diff, MO, DPnP) refuse a noiseless σ with one line;
// DDRM and DDNM+ take σ = 0 as noiseless. Each solver's default is its paper's weight, stated in
// its table (docs/solvers.md, "One meaning of likelihood and sigma").
inline constexpr double kChannelSigma = -1;

// The field: `symbol` names σ in the help (σ, σ₀, σ_y), `note` ends it (a paper's value).
template <class O>
typename OptionTable<O>::Field sigma_field(const std::string& name, double O::*member, const std::string& symbol,
                                           const std::string& note = "") {
  return {name, member,
          symbol + " of y = A x + " + symbol + " n (channel: the channel's noise σ; 0 = noiseless" + note + ")",
          Keyword{"channel", kChannelSigma}, non_negative()};
}

// σ for a run: `sigma` when ≥ 0, else the channel's noise_std(). InputError naming `solver` (and
// `option`) when the problem has no channel to read it from, or when σ is 0 and the solver
// cannot take a noiseless model (`allow_noiseless` false).
double resolve_sigma(const SolveContext& ctx, double sigma, const std::string& solver, bool allow_noiseless,
                     const std::string& option = "sigma");

// ---- the likelihood option ---------------------------------------------------------------------

// channel: −log p(y | A x) is the problem's channel NLL (each paper's general form). linear: the
// channel is ignored and y is treated as A x + N(0, σ² I), σ = `sigma` resolved as above (seed
// 001's "linear versions, ignoring the non-linear link function"). Solvers take these options by
// deriving from this struct and joining fields<O>() into their table; a solver whose paper fixes
// another σ sets its own default (RED-diff: 1, the code's ‖y − A μ‖²/2).
// The form of a data term, one meaning in every solver: kChannel = the problem's channel NLL,
// kLinear = y = A x + σ n with the link ignored (LikelihoodOptions, MO's f, DPnP's misfit).
enum class DataTerm { kChannel, kLinear };
inline Choice<DataTerm> data_term_words() {
  return {{"channel", DataTerm::kChannel}, {"linear", DataTerm::kLinear}};
}

struct LikelihoodOptions {
  DataTerm likelihood = DataTerm::kChannel;
  double sigma = kChannelSigma;        // σ of the linear form (see sigma_field)

  // The option fields: `likelihood` and, where the solver has it, `sigma` (DPS has none: its step
  // is scale-free and runs at σ = 1); `sigma_note` ends sigma's help.
  template <class O>
  static std::vector<typename OptionTable<O>::Field> fields(bool with_sigma, const std::string& sigma_note = "") {
    std::vector<typename OptionTable<O>::Field> f = {
        {"likelihood", &O::likelihood,
         "data term: the problem's NLL (general form), or y = A x + σ n with the link ignored",
         data_term_words()}};
    if (with_sigma) f.push_back(sigma_field<O>("sigma", &O::sigma, "σ", "; used by likelihood=linear" + sigma_note));
    return f;
  }
};

// The problem whose channel NLL a solver evaluates: the problem itself (channel form; it must
// have a channel), or its operator with a Gaussian channel of std σ (linear form).
Problem likelihood_problem(const SolveContext& ctx, const LikelihoodOptions& o, const std::string& solver);
// The operator of `problem` with a Gaussian channel of std σ: nll = ‖y − A x‖²/(2σ²) + const.
Problem gaussian_problem(const Problem& problem, double sigma);

// ---- the data term -----------------------------------------------------------------------------

class Likelihood {
 public:
  // `y` [B, out...] on the working device; the problem must have a channel.
  Likelihood(Problem problem, torch::Tensor y);

  // −log p(y | x) per item, [B]; differentiable in x. Not counted.
  torch::Tensor nll(const torch::Tensor& x) const;
  // ∇ₓ Σ_b nll_b(x) = the per-item gradients (items are independent), detached. Counts one.
  torch::Tensor grad(const torch::Tensor& x) const;
  // Both, from one forward and one backward pass: ([B] values, gradient). Counts one.
  std::pair<torch::Tensor, torch::Tensor> value_and_grad(const torch::Tensor& x) const;

  int64_t grads() const { return grads_.load(); }
  // Adds n gradient-equivalents spent outside grad() (an operator-norm estimate, say).
  void count(int64_t n) const { grads_ += n; }
  const Problem& problem() const { return problem_; }
  const op::Operator& op() const { return *problem_.op; }
  const torch::Tensor& y() const { return y_; }

 private:
  Problem problem_;
  torch::Tensor y_;
  mutable std::atomic<int64_t> grads_{0};
};

// λ_max(JᵀJ) of the operator's Jacobian J at `at` (the largest over the batch items), by
// `iterations` power-iteration steps from a random start drawn from `gen`. For a linear operator
// J = A everywhere and JᵀJ v = Aᵀ(A v); for a nonlinear one J v is a forward difference and Jᵀ
// the operator's vjp. Each iteration costs about one likelihood gradient (one A, one Aᵀ); the
// returned count says how many were spent.
struct NormEstimate {
  double lambda_max = 0;
  int64_t products = 0;
};
NormEstimate gauss_newton_norm(const op::Operator& A, const torch::Tensor& at, int64_t iterations,
                               torch::Generator& gen);

}  // namespace tweedie::solve
