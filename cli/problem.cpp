// tweedie problem DIR: load and check a simulated problem (rebuild A, validate y), optionally
// scoring a candidate x by the channel's negative log-likelihood.
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/command.h"
#include "tweedie/core/error.h"
#include "tweedie/data/reference.h"
#include "tweedie/problem.h"

namespace tweedie::cli {
namespace {

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

class ProblemCommand : public Command {
 public:
  ProblemCommand() : Command("problem", "Check a problem (DIR or problem.json): rebuild A, validate y, score --x") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("problem", path_, "Directory written by 'tweedie simulate', or its problem.json")->required();
    app.add_option("--x", x_, "Candidate images (any --input reference): prints NLL(A x; y) and |A x - y| per item");
  }

  int run() override {
    LoadedProblem lp = load_problem(path_);
    auto& p = lp.problem;
    nlohmann::json out;
    out["operator"] = p.op->describe();
    out["channel"] = p.channel->spec();
    out["y_shape"] = lp.y.sizes().vec();
    if (!x_.empty()) {
      torch::NoGradGuard no_grad;
      torch::Tensor x = data::load_reference(x_);
      p.op->to(device());
      x = x.to(device());
      try {
        p.op->check_input(x);
      } catch (const InputError& e) {
        throw InputError("--x " + x_ + ": " + e.what());
      }
      require(x.size(0) == lp.y.size(0), x_ + ": " + std::to_string(x.size(0)) + " items but y has " +
                                             std::to_string(lp.y.size(0)));
      auto z = p.op->apply(x);
      auto y = lp.y.to(device());
      auto r = (z - y).flatten(1);
      out["residual_norm"] = to_vector((r.is_complex() ? torch::abs(r) : r).norm(2, 1));
      try {
        out["nll"] = to_vector(p.channel->nll(z, y));
      } catch (const InputError& e) {
        out["nll"] = std::string("n/a: ") + e.what();
      }
    }
    std::cout << out.dump(2) << '\n';
    return 0;
  }

 private:
  std::string path_, x_;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(ProblemCommand);
}  // namespace tweedie::cli
