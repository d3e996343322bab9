// tweedie sample: unconditional samples from a diffusion prior (DDIM or DDPM), as a PNG grid.
#include <chrono>
#include <cstdlib>

#include "cli/command.h"
#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/progress.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/version.h"
#include "tweedie/diffusion/prior.h"
#include "tweedie/diffusion/edm.h"
#include "tweedie/diffusion/samplers.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/png.h"

namespace tweedie::cli {
namespace {

using namespace tweedie::diffusion;

class SampleCommand : public Command {
 public:
  SampleCommand() : Command("sample", "Draw unconditional samples from a diffusion prior (grid PNG and/or NPY)") {}

 protected:
  void add_options(CLI::App& app) override {
    app.add_option("--arch", arch_, "Architecture JSON (default: beside the weights, or embedded)");
    app.add_option("-m,--model,--prior", model_, "Prior weights (.safetensors or .pt; config beside or embedded), or gmm:FILE");
    app.add_option("-o,--output", out_, "Output .png grid (provenance in its text chunk) or .npy")->required();
    app.add_option("--count", count_, "Number of samples")->check(CLI::PositiveNumber);
    app.add_option("--cols", cols_, "Grid columns")->check(CLI::PositiveNumber);
    app.add_option("--tile", tile_, "Grid tiles are enlarged (nearest neighbour, whole factors) to at least this "
                                    "many pixels; 0 keeps the images' size")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--batch-size", batch_, "Samples per network call")->check(CLI::PositiveNumber);
    app.add_option("--sampler", sampler_,
                   "ddim, ddpm, edm (Karras et al.'s Euler sampler over the prior's σ view, --steps N "
                   "points from --sigma-max to --sigma-min, ρ = 7), or exact: direct draws from a gmm: prior's "
                   "mixture (no diffusion, no NFE, not clamped: the data an exactly known prior describes)")
        ->check(CLI::IsMember({"ddim", "ddpm", "edm", "exact"}));
    app.add_option("--steps", steps_, "Respacing of the base schedule (e.g. 100, ddim50, 10,10,10); for edm the "
                                      "number of Euler steps");
    app.add_option("--sigma-max", edm_.sigma_max, "edm: the first noise level (EDM: 80)");
    app.add_option("--sigma-min", edm_.sigma_min, "edm: the last noise level (EDM: 0.002)");
    app.add_option("--eta", eta_, "DDIM η, or edm's fresh-noise share (0 = deterministic, 1 = ancestral)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--clip", clip_, "Clip x̂0 to [-1,1] at each step (true/false)");
  }

  int run() override {
    check_output_file(out_, "--output", {"png", "npy"});
    Prior prior = load_prior(model_, device(), arch_);
    require(sampler_ != "exact" || prior.gmm, "--sampler exact draws from a Gaussian-mixture prior (--prior gmm:FILE), not " + model_);
    Schedule s = sampler_ == "edm" ? prior.base : respace(prior.base, steps_);
    if (sampler_ == "edm") {
      edm_.steps = parse_steps(steps_);
      edm_.clip_denoised = clip_;
      edm_.eta = eta_;
      edm_.validate("--sampler edm");
    }
    std::vector<int64_t> shape = prior.item_shape();
    shape.insert(shape.begin(), 0);
    torch::Generator gen = make_generator(common().seed);
    torch::InferenceMode inference;
    ProgressOptions po;
    po.quiet = common().quiet;
    po.unit = "img";
    Progress progress("sample", count_, po);
    auto start = std::chrono::steady_clock::now();
    std::vector<torch::Tensor> out;
    for (int64_t done = 0; done < count_; done += batch_) {
      int64_t b = std::min(batch_, count_ - done);
      shape[0] = b;
      torch::Tensor x = sampler_ == "exact" ? torch::Tensor() : randn(shape, gen, device());
      if (sampler_ == "edm") x = edm_.sigma_max * x;  // x_0 ~ N(0, σ_max² I)
      SamplerResult r;
      if (sampler_ == "exact") {
        r.x = prior.gmm->sample(b, gen).to(torch::kFloat32);
      } else if (sampler_ == "edm") {
        r.x = diffusion::edm_sample(*prior.denoiser, x, edm_, {}, &gen).x;
      } else if (sampler_ == "ddim") {
        DdimOptions o;
        o.eta = eta_;
        o.clip_denoised = clip_;
        r = ddim_sample(*prior.denoiser, s, x, o, gen);
      } else {
        DdpmOptions o;
        o.clip_denoised = clip_;
        r = ddpm_sample(*prior.denoiser, s, x, o, gen);
      }
      out.push_back(r.x.cpu());
      progress.update(done + b);
    }
    progress.finish();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    torch::Tensor samples = torch::cat(out);
    if (sampler_ != "exact") samples = samples.clamp(-1, 1);
    nlohmann::json provenance = {{"command", "tweedie sample"}, {"version", TWEEDIE_VERSION " " TWEEDIE_GIT_HASH},
                                 {"prior", prior.describe()}, {"sampler", sampler_}, {"steps", steps_},
                                 {"eta", eta_}, {"clip", clip_},
                                 {"edm", sampler_ == "edm" ? edm_.to_json() : nlohmann::json()}, {"count", count_}, {"seed", common().seed},
                                 {"nfe", prior.denoiser->nfe()}};  // no seconds: same run, same bytes
    if (file_extension(out_) == "npy") {
      io::write_npy(out_, samples);
      atomic_write_file(out_ + ".json", provenance.dump(2) + "\n");
    } else {
      io::write_png(out_, io::make_grid(samples, cols_, 2, 1.0, tile_), {{"tweedie", provenance.dump()}});
    }
    char line[200];
    std::snprintf(line, sizeof line, "wrote %s: %lld samples, %lld NFE, %.1f s", out_.c_str(),
                  static_cast<long long>(count_), static_cast<long long>(prior.denoiser->nfe()), secs);
    say(line);
    return 0;
  }

 private:
  std::string arch_;
  std::string model_ = kDefaultPrior;
  static int64_t parse_steps(const std::string& text) {
    char* end = nullptr;
    const long long n = std::strtoll(text.c_str(), &end, 10);
    require(!text.empty() && *end == '\0' && n >= 1 && n <= 100000,
            "--steps " + text + ": --sampler edm takes a number of steps (1 to 100000)");
    return n;
  }
  diffusion::EdmOptions edm_;
  std::string out_, sampler_ = "ddim", steps_ = "100";
  int64_t count_ = 100, cols_ = 10, batch_ = 50, tile_ = io::kDisplayTile;
  double eta_ = 0.0;
  bool clip_ = true;
};

}  // namespace
TWEEDIE_REGISTER_COMMAND(SampleCommand);
}  // namespace tweedie::cli
