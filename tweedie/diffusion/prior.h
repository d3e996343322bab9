#pragma once
// A diffusion prior ready for sampling and solving: the ε-network (ADM U-Net) loaded from a
// checkpoint, its base schedule, the Denoiser adapter, and the provenance (path, SHA-256) that
// every report records. The alternative is the exact-score control prior, a Gaussian mixture
// (gmm_prior.h) named "gmm:PATH": the same Denoiser contract on the same schedule, so every
// sampler and solver runs on it unchanged.
#include <torch/torch.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tweedie/core/registry.h"
#include "tweedie/diffusion/denoiser.h"
#include "tweedie/diffusion/gmm_prior.h"
#include "tweedie/diffusion/schedule.h"
#include "tweedie/diffusion/unet.h"

namespace tweedie::diffusion {

// How the network was trained; stored beside the architecture (safetensors metadata key
// "tweedie.diffusion", or a "diffusion" object in the config JSON). Defaults are DPS's
// configs/diffusion_config.yaml: linear schedule, 1000 steps.
struct DiffusionConfig {
  std::string schedule = "linear";
  int64_t steps = 1000;
  nlohmann::json to_json() const;
  static DiffusionConfig from_json(const nlohmann::json& j);
};

struct Prior {
  UNet net{nullptr};                     // the ε-network; null for a GMM or a registered prior
  std::shared_ptr<const GaussianMixture> gmm;  // the mixture of a "gmm:" prior
  std::vector<int64_t> shape;            // a registered prior's item shape (net and gmm null)
  nlohmann::json about;                  // a registered prior's description for reports
  DiffusionConfig diffusion;
  Schedule base;                         // the training schedule (identity timestep map)
  std::shared_ptr<EpsDenoiser> denoiser;  // ε-adapter over `net`; learned_range if learn_sigma
  std::string path;
  std::string sha256;                    // of the weights file
  nlohmann::json describe() const;       // path, hash, architecture, parameters, FLOPs
  std::vector<int64_t> item_shape() const;  // the [C, H, W] (or other) shape of one sample
  std::string item_text() const;             // "1x32x32"
  // InputError "<owner>: the prior PATH makes items [1, 32, 32] but <other> [1, 8, 8]" unless the
  // prior's items have `shape` (the one check of the CLI, the experiment runner and Python).
  void require_items(const std::vector<int64_t>& shape, const std::string& owner, const std::string& other) const;
};

// Priors by name: an entry (built in, or enrolled by a plugin: core/plugin.h, docs/extending.md)
// builds a Prior from its settings, and every place that takes a prior path (the CLI's --prior,
// experiment configs, Python's load_prior) takes NAME[:KEY=VALUE,...] instead. The factory fills
// denoiser, base, diffusion, shape and about; load_prior sets path to the spec. Built in:
// "gaussian", x0 ~ N(0, var I) with its exact ε (a control with no network).
using PriorFactory = std::function<Prior(const Params&, torch::Device)>;
using PriorRegistry = Registry<PriorFactory>;
PriorRegistry& prior_registry();

// The prefix that names a Gaussian-mixture prior file: "gmm:models/fmnist-gmm/gmm.safetensors".
inline constexpr const char* kGmmPrefix = "gmm:";

// Loads a prior by name (prior_registry: "NAME[:KEY=VALUE,...]"), or from .safetensors or .pt weights (architecture: `config_path`, the JSON beside
// the weights, or the safetensors metadata), moves it to `device` and sets eval mode. A path
// "gmm:FILE" loads a Gaussian-mixture prior (linear β, 1000 steps; it evaluates on the CPU in
// float64 and returns tensors on the caller's device). A relative path that does not exist from
// the working directory is looked up in the data directory (core/data_dir.h), so
// kDefaultPrior ("models/fmnist32-long/model.safetensors", the converged prior) names the shipped
// prior from anywhere;
// Prior::path is the path that was read.
Prior load_prior(const std::string& path, torch::Device device = torch::kCPU,
                 const std::string& config_path = "");

}  // namespace tweedie::diffusion
