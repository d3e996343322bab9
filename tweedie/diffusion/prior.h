#pragma once
// A diffusion prior ready for sampling and solving: the ε-network (ADM U-Net) loaded from a
// checkpoint, its base schedule, the Denoiser adapter, and the provenance (path, SHA-256) that
// every report records.
#include <torch/torch.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tweedie/diffusion/denoiser.h"
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
  UNet net{nullptr};
  DiffusionConfig diffusion;
  Schedule base;                         // the training schedule (identity timestep map)
  std::shared_ptr<EpsDenoiser> denoiser;  // ε-adapter over `net`; learned_range if learn_sigma
  std::string path;
  std::string sha256;                    // of the weights file
  nlohmann::json describe() const;       // path, hash, architecture, parameters, FLOPs
};

// Loads a prior from .safetensors or .pt weights (architecture: `config_path`, the JSON beside
// the weights, or the safetensors metadata), moves it to `device` and sets eval mode.
Prior load_prior(const std::string& weights_path, torch::Device device = torch::kCPU,
                 const std::string& config_path = "");

}  // namespace tweedie::diffusion
