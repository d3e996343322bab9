// tweedie fit-gmm: fit the exact-score control prior (a Gaussian mixture, gmm_prior.h) to the
// Fashion-MNIST training set; use it anywhere a prior is taken as --prior gmm:OUT/gmm.safetensors.
#include <filesystem>
#include <sstream>

#include "cli/command.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/version.h"
#include "tweedie/data/fashion_mnist.h"
#include "tweedie/diffusion/gmm_prior.h"

namespace tweedie::cli {
namespace {

namespace fs = std::filesystem;

class FitGmmCommand : public Command {
 public:
  FitGmmCommand()
      : Command("fit-gmm", "Fit a Gaussian-mixture prior (exact Tweedie denoiser) to Fashion-MNIST by EM") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("-o,--output,--out", out_, "Output directory: gmm.safetensors, fit.json")->required();
    app.add_option("--components-per-class", opt_.components_per_class,
                   "Mixture components per class (K = 10 x this)")
        ->check(CLI::Range(1, 1000));
    app.add_option("--dims", opt_.dims, "Dimension of the shared PCA subspace with full covariances")
        ->check(CLI::Range(1, 100000));
    app.add_option("--iterations", opt_.iterations, "EM iterations after the per-class k-means seeding")
        ->check(CLI::Range(0, 10000));
    app.add_option("--variance-floor", opt_.variance_floor, "Added to every variance (positive)")
        ->check(CLI::PositiveNumber);
    app.add_option("--count", count_, "Training images to fit on (the first N; 0 = all 60000)")
        ->check(CLI::NonNegativeNumber);
  }

  int run() override {
    check_output_dir(out_, "--out");
    auto train = data::load_fashion_mnist(data::Split::kTrain);
    int64_t n = train.images.size(0);
    if (count_ > 0) n = std::min(n, count_);
    require(n >= 2, "--count: need at least 2 images");
    torch::Generator gen = make_generator(common().seed);
    say("fitting " + std::to_string(10 * opt_.components_per_class) + " components in a " +
        std::to_string(opt_.dims) + "-dimensional subspace to " + std::to_string(n) + " images");
    const auto start = std::chrono::steady_clock::now();
    auto fit = diffusion::fit_gmm(train.images.slice(0, 0, n), train.labels.slice(0, 0, n), opt_, gen);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    nlohmann::json options = {{"components_per_class", opt_.components_per_class},
                              {"dims", opt_.dims},
                              {"iterations", opt_.iterations},
                              {"variance_floor", opt_.variance_floor},
                              {"count", n},
                              {"seed", common().seed}};
    nlohmann::json provenance = {{"command", "tweedie fit-gmm"},
                                 {"version", TWEEDIE_VERSION " " TWEEDIE_GIT_HASH},
                                 {"data", "fashion-mnist train"},
                                 {"options", options}};
    const fs::path dir(out_);
    diffusion::save_gmm((dir / "gmm.safetensors").string(), fit.model,
                        {{"tweedie.provenance", provenance.dump()}});
    const auto& m = fit.model;
    nlohmann::json record = {{"provenance", provenance},
                             {"components", m.components()},
                             {"subspace_dims", m.dims()},
                             {"active_pixels", m.active_pixels()},
                             {"parameters", m.num_parameters()},
                             {"log_likelihood_per_image", fit.log_likelihood},
                             {"seconds", secs}};
    atomic_write_file((dir / "fit.json").string(), record.dump(2) + "\n");
    std::ostringstream ll;
    ll << fit.log_likelihood.back();
    say("wrote " + (dir / "gmm.safetensors").string() + " (mean log-likelihood " + ll.str() +
        " nats per image)");
    return 0;
  }

 private:
  std::string out_;
  diffusion::GmmFitOptions opt_;
  int64_t count_ = 0;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(FitGmmCommand);
}  // namespace tweedie::cli
