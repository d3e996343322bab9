#include "parity/parity_support.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "support/test_support.h"
#include "tweedie/io/npy.h"
#include "tweedie/op/registry.h"

namespace tweedie::test {

namespace fs = std::filesystem;

const torch::Tensor& ParityFixture::at(const std::string& key) const {
  auto it = tensors.find(key);
  if (it == tensors.end()) throw std::runtime_error("parity fixture " + name + ": no tensor '" + key + "'");
  return it->second;
}

fs::path parity_dir(const std::string& name) {
  return fs::path(TWEEDIE_SOURCE_DIR) / "tests" / "fixtures" / "parity" / name;
}

ParityFixture load_parity(const std::string& name) {
  ParityFixture f;
  f.name = name;
  const fs::path dir = parity_dir(name);
  if (!fs::is_directory(dir)) throw std::runtime_error("parity fixture missing: " + dir.string());
  std::ifstream meta(dir / "meta.json");
  f.meta = nlohmann::json::parse(meta);
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".npy" || e.path().stem() == "draws") continue;
    f.tensors[e.path().stem().string()] = io::read_npy(e.path().string());
  }
  if (f.meta.contains("draws") && !f.meta["draws"].empty()) {
    const torch::Tensor flat = io::read_npy((dir / "draws.npy").string()).to(torch::kFloat32).flatten();
    int64_t at = 0;
    for (const auto& d : f.meta["draws"]) {
      const auto shape = d["shape"].get<std::vector<int64_t>>();
      int64_t n = 1;
      for (int64_t s : shape) n *= s;
      if (at + n > flat.numel()) throw std::runtime_error("parity fixture " + name + ": draws.npy is too short");
      const std::string kind = d["kind"].get<std::string>();
      f.draws.push_back({kind == "uniform" ? 'u' : 'n', flat.slice(0, at, at + n).reshape(shape).clone()});
      at += n;
    }
    if (at != flat.numel()) throw std::runtime_error("parity fixture " + name + ": draws.npy is longer than meta.json says");
  }
  return f;
}

const diffusion::Prior& parity_prior_nchw() {
  static const diffusion::Prior prior = [] {
    diffusion::Prior p =
        diffusion::load_prior((fs::path(TWEEDIE_SOURCE_DIR) / "models" / "fmnist32-long" / "model.safetensors").string());
    p.net->set_layout(diffusion::UNetImpl::Layout::kNchw);
    return p;
  }();
  return prior;
}

const diffusion::Prior& parity_prior() {
  static const diffusion::Prior prior =
      diffusion::load_prior((fs::path(TWEEDIE_SOURCE_DIR) / "models" / "fmnist32-long" / "model.safetensors").string());
  return prior;
}

namespace {

class DenseOperator final : public op::Operator {
 public:
  DenseOperator(torch::Tensor A, op::Shape in) : Operator(std::move(in), {A.size(0)}), A_(std::move(A)) {}
  std::string name() const override { return "dense"; }
  std::string spec() const override { return "dense"; }
  torch::Tensor apply(const torch::Tensor& x) const override { return torch::matmul(x.flatten(1), A_.t()); }
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    auto shape = in_;
    shape.insert(shape.begin(), y.size(0));
    return torch::matmul(y, A_).reshape(shape);
  }

 private:
  torch::Tensor A_;
};

}  // namespace

std::shared_ptr<op::Operator> dense_operator(const torch::Tensor& A, std::vector<int64_t> in_shape) {
  return std::make_shared<DenseOperator>(A.to(torch::kFloat32).contiguous(), std::move(in_shape));
}

solve::Result run_with_draws(const ParityFixture& f, const std::string& name, const std::vector<std::string>& set,
                             const Problem& problem, const torch::Tensor& y, const diffusion::EpsDenoiser& prior,
                             std::vector<torch::Tensor>* x0_steps) {
  torch::Generator gen = make_generator(0);
  solve::Monitor monitor;
  if (x0_steps)
    monitor = [x0_steps](const solve::StepReport& p) {
      x0_steps->push_back(p.x0.defined() ? p.x0.detach().clone() : torch::Tensor());
      return true;
    };
  solve::SolveContext ctx{problem, y, prior, gen, monitor};
  DrawReplay replay(f.draws);
  solve::Result r = solve::solver_registry().find(name).make.run(solve::resolve_solver(name, set), ctx);
  EXPECT_EQ(replay.used(), replay.size()) << f.name << ": the solver used " << replay.used() << " of the "
                                          << replay.size() << " recorded draws";
  return r;
}

double max_relative_step_error(const std::vector<torch::Tensor>& ours, const torch::Tensor& theirs,
                               int64_t* worst_step) {
  EXPECT_EQ(static_cast<int64_t>(ours.size()), theirs.size(0)) << "step counts differ";
  double worst = 0;
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(ours.size()), theirs.size(0));
  for (int64_t s = 0; s < n; ++s) {
    const auto ref = theirs[s].to(torch::kFloat64);
    const auto got = ours[static_cast<size_t>(s)].to(torch::kFloat64).reshape(ref.sizes());
    const double e = (got - ref).norm().item<double>() / std::max(ref.norm().item<double>(), 1e-30);
    if (e > worst || s == 0) {
      worst = std::max(worst, e);
      if (worst_step && e >= worst) *worst_step = s;
    }
  }
  return worst;
}

std::string per_step_errors(const std::vector<torch::Tensor>& ours, const torch::Tensor& theirs) {
  std::ostringstream o;
  for (size_t k = 0; k < ours.size() && k < static_cast<size_t>(theirs.size(0)); ++k)
    o << " " << max_relative_step_error({ours[k]}, theirs.narrow(0, static_cast<int64_t>(k), 1));
  return o.str();
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  const auto w = want.to(torch::kFloat64);
  return (got.to(torch::kFloat64).reshape(w.sizes()) - w).norm().item<double>() / w.norm().item<double>();
}

void expect_replay(const ParityFixture& f, const std::vector<torch::Tensor>& steps, const std::string& traj,
                   const torch::Tensor& estimate, double step_tol, double final_tol, const std::string& note) {
  int64_t worst_step = 0;
  const double err = max_relative_step_error(steps, f.at(traj), &worst_step);
  EXPECT_LE(err, step_tol) << f.name << ": worst step " << worst_step;
  const double fin_err = relative_error(estimate, f.at("final"));
  EXPECT_LE(fin_err, final_tol) << f.name << ": final estimate";
  std::cout << "[ " << f.name << " parity ] max per-step relative error " << err << " (step " << worst_step
            << "), final " << fin_err << note << "\n";
}

std::shared_ptr<op::Operator> box_mask(const nlohmann::json& box) {
  return op::make_operator("box-mask:h=" + std::to_string(box["h"].get<int>()) +
                               ",w=" + std::to_string(box["w"].get<int>()) +
                               ",top=" + std::to_string(box["top"].get<int>()) +
                               ",left=" + std::to_string(box["left"].get<int>()),
                           {1, 32, 32}, 0);
}

std::string exact(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

}  // namespace tweedie::test
