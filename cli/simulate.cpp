// tweedie simulate: images -> measurements y.npy + problem.json (+ PNGs of what is viewable).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/images.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/io/npy.h"
#include "tweedie/op/registry.h"
#include "tweedie/problem.h"

namespace tweedie::cli {
namespace {

class SimulateCommand : public Command {
 public:
  SimulateCommand() : Command("simulate", "Simulate measurements: y = channel(A x) -> y.npy, problem.json, PNGs") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("-i,--input", inputs_,
                   "Images: .png, .npy [N,C,H,W]/[C,H,W]/[N,D], fashion-mnist[:SPLIT[:A-B]], or a test image name");
    app.add_option("--op", op_, "Operator spec NAME[:K=V,...]; chain with '|', stack with '&' (see --list)");
    app.add_option("--channel", channel_, "Channel spec NAME[:K=V,...] (see --list)");
    app.add_option("-o,--output", out_, "Output directory");
    app.add_option("--size", size_, "Resize images to a central SIZE x SIZE crop first (0 = keep)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--gray", gray_, "Convert images to gray first");
    app.add_flag("--list", list_, "List operators and channels with their parameters, then exit");
  }

  int run() override {
    if (list_) {
      std::cout << "Operators (--op):\n" << op::operator_registry().help() << "\nChannels (--channel):\n"
                << channel::channel_registry().help();
      return 0;
    }
    require(!inputs_.empty(), "--input is required");
    if (!out_.empty()) check_output_dir(out_, "--output");
    require(!op_.empty(), "--op is required (see 'tweedie simulate --list')");
    require(!out_.empty(), "--output is required (a directory)");
    torch::Tensor x = load_images(inputs_, gray_, size_);
    op::Shape item(x.sizes().begin() + 1, x.sizes().end());
    Problem problem = make_problem(op_, channel_, item, common().seed);
    problem.op->to(device());
    torch::Tensor y = simulate(problem, x.to(device())).to(torch::kCPU);
    auto yv = y.is_complex() ? torch::view_as_real(y) : y;
    require(torch::isfinite(yv).all().item<bool>(), "simulated measurements are not finite (inputs too large for " +
                                                        problem.op->name() + "/" + problem.channel->name() + "?)");
    write_outputs(problem, x, y);
    say("wrote " + out_ + ": y " + op::shape_text(y.sizes().vec()) + (y.is_complex() ? " complex" : "") + " from " +
        std::to_string(x.size(0)) + " input" + (x.size(0) == 1 ? "" : "s") + "; " + problem.op->spec() + " + " +
        problem.channel->spec());
    return 0;
  }

 private:
  void write_outputs(const Problem& problem, const torch::Tensor& x, const torch::Tensor& y) const {
    namespace fs = std::filesystem;
    auto path = [&](const char* name) { return (fs::path(out_) / name).string(); };
    // Hash the bytes written: inside the command's OutputTransaction, y.npy is not in place yet.
    const std::string y_bytes = io::encode_npy(y);
    atomic_write_file(path("y.npy"), y_bytes);
    io::write_npy(path("x.npy"), x);
    nlohmann::json extra = {{"inputs", inputs_},
                            {"batch", x.size(0)},
                            {"y_file", "y.npy"},
                            {"x_file", "x.npy"},
                            {"y_sha256", sha256_hex(y_bytes)}};
    nlohmann::json j = problem_to_json(problem, extra);
    // Written after simulation: some channels resolve parameters from the data (quantize delta).
    atomic_write_file(path("problem.json"), j.dump(2) + "\n");
    std::map<std::string, std::string> text{{"tweedie", j.dump()}};
    auto png = [&](const char* name, const torch::Tensor& images) { write_image_png(path(name), images, 8, text); };
    if (is_image_batch(x)) png("x.png", x);
    if (is_image_batch(y)) png("y.png", y);
    if (problem.op->linear() && is_image_batch(x)) {
      torch::NoGradGuard no_grad;
      png("adjoint.png", problem.op->adjoint(y.to(device())).to(torch::kCPU));
    }
  }

  std::vector<std::string> inputs_;
  std::string op_, channel_ = "gaussian:sigma=0.05", out_;
  int64_t size_ = 0;
  bool gray_ = false, list_ = false;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(SimulateCommand);
}  // namespace tweedie::cli
