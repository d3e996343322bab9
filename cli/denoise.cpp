// tweedie denoise-eval: how good is a prior as a denoiser? Tweedie's x̂0 = D(x + σ n, σ) on
// held-out images, beside the noisy input and the best Gaussian filter, in PSNR.
#include <chrono>
#include <iomanip>
#include <sstream>

#include "cli/command.h"
#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/registry.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/version.h"
#include "tweedie/data/fashion_mnist.h"
#include "tweedie/diffusion/prior.h"
#include "tweedie/io/npy.h"
#include "tweedie/metric/psnr.h"

namespace tweedie::cli {
namespace {

class DenoiseEvalCommand : public Command {
 public:
  DenoiseEvalCommand()
      : Command("denoise-eval", "Tweedie denoising PSNR of a prior vs noisy input and best Gaussian filter") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("--arch", arch_, "Architecture JSON (default: beside the weights, or embedded)");
    app.add_option("-m,--model,--prior", model_, "Prior weights, or gmm:FILE for a Gaussian-mixture prior");
    app.add_option("--data", data_, "fashion-mnist (test split) or an .npy of images [N,C,H,W] in [-1,1]");
    app.add_option("--count", count_, "Number of images (the first COUNT)")->check(CLI::PositiveNumber);
    app.add_option("--sigmas", sigmas_, "Noise levels σ (images in [-1,1])")->delimiter(',');
    app.add_option("--batch-size", batch_, "Images per network call")->check(CLI::PositiveNumber);
    app.add_option("-o,--output", out_, "Write the table as JSON here (and Markdown to OUTPUT.md)");
  }

  int run() override {
    if (!out_.empty()) check_output_file(out_, "--output");
    for (double sigma : sigmas_) require(sigma > 0, "--sigmas " + format_number(sigma) + ": σ must be positive");
    torch::Tensor x = data_ == "fashion-mnist" ? data::load_fashion_mnist(data::Split::kTest).images
                                               : io::read_npy(data_).to(torch::kFloat32);
    require(x.dim() == 4, data_ + ": expected [N,C,H,W]");
    x = x.slice(0, 0, std::min<int64_t>(count_, x.size(0)));
    auto prior = diffusion::load_prior(model_, device(), arch_);
    require(x.sizes().slice(1).vec() == prior.item_shape(),
            "--data " + data_ + ": images " + std::to_string(x.size(1)) + "x" + std::to_string(x.size(2)) + "x" +
                std::to_string(x.size(3)) + " do not fit the prior " + model_ + " (" + prior.item_text() + ")");
    torch::Generator gen = make_generator(common().seed);
    torch::InferenceMode inference;
    const std::vector<double> filter_stds = {0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0};

    nlohmann::json rows = nlohmann::json::array();
    auto start = std::chrono::steady_clock::now();
    for (double sigma : sigmas_) {
      require(sigma > 0, "--sigmas: σ must be positive");
      torch::Tensor noisy = x + sigma * randn(x.sizes(), gen);  // x̃ = x0 + σ n
      std::vector<torch::Tensor> den;
      for (int64_t i = 0; i < x.size(0); i += batch_) {
        auto xb = noisy.slice(0, i, std::min(i + batch_, x.size(0))).to(device());
        den.push_back(prior.denoiser->denoise(xb, sigma).cpu());  // Tweedie: E[x0 | x̃]
      }
      torch::Tensor tweedie = torch::cat(den);
      double best_filter = -1e9, best_std = 0;
      for (double s : filter_stds) {
        double p = metric::psnr(metric::gaussian_filter(noisy, s), x).mean().item<double>();
        if (p > best_filter) best_filter = p, best_std = s;
      }
      rows.push_back({{"sigma", sigma},
                      {"psnr_noisy", metric::psnr(noisy, x).mean().item<double>()},
                      {"psnr_gaussian_filter", best_filter},
                      {"gaussian_filter_std", best_std},
                      {"psnr_tweedie", metric::psnr(tweedie, x).mean().item<double>()},
                      {"psnr_tweedie_clipped", metric::psnr(tweedie.clamp(-1, 1), x).mean().item<double>()}});
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    nlohmann::json report = {{"command", "tweedie denoise-eval"}, {"version", TWEEDIE_VERSION " " TWEEDIE_GIT_HASH},
                             {"prior", prior.describe()}, {"data", data_}, {"count", x.size(0)},
                             {"seed", common().seed}, {"nfe", prior.denoiser->nfe()}, {"seconds", secs},
                             {"rows", rows}};
    std::ostringstream md;
    md << std::fixed << std::setprecision(2);
    md << "| σ | noisy PSNR | best Gaussian filter PSNR (std) | Tweedie PSNR | gain over filter |\n"
       << "|---|---|---|---|---|\n";
    for (auto& r : rows) {
      md << "| " << r["sigma"].get<double>() << " | " << r["psnr_noisy"].get<double>() << " | "
         << r["psnr_gaussian_filter"].get<double>() << " (" << r["gaussian_filter_std"].get<double>() << ") | "
         << r["psnr_tweedie"].get<double>() << " | "
         << r["psnr_tweedie"].get<double>() - r["psnr_gaussian_filter"].get<double>() << " dB |\n";
    }
    md << "\n" << x.size(0) << " images, " << prior.denoiser->nfe() << " NFE, " << secs << " s, prior sha256 "
       << prior.sha256.substr(0, 16) << "\n";
    if (!out_.empty()) {
      atomic_write_file(out_, report.dump(2) + "\n");
      atomic_write_file(out_ + ".md", md.str());
    }
    say(md.str());
    return 0;
  }

 private:
  std::string arch_;
  std::string model_ = kDefaultPrior;
  std::string data_ = "fashion-mnist", out_;
  int64_t count_ = 1000, batch_ = 100;
  std::vector<double> sigmas_ = {0.1, 0.2, 0.5, 1.0};
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(DenoiseEvalCommand);
}  // namespace tweedie::cli
