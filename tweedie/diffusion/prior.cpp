#include "tweedie/diffusion/prior.h"

#include <filesystem>

#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/json_input.h"
#include "tweedie/diffusion/gaussian_prior.h"
#include "tweedie/io/safetensors.h"
#include "tweedie/io/tensors.h"
#include "tweedie/op/operator.h"

namespace tweedie::diffusion {

nlohmann::json DiffusionConfig::to_json() const { return {{"schedule", schedule}, {"steps", steps}}; }

DiffusionConfig DiffusionConfig::from_json(const nlohmann::json& j) {
  DiffusionConfig c;
  require(j.is_object(), "diffusion config must be a JSON object");
  for (auto& [k, v] : j.items()) {
    if (k == "schedule") {
      c.schedule = v.get<std::string>();
    } else if (k == "steps") {
      c.steps = v.get<int64_t>();
    } else {
      throw InputError("diffusion config: unknown key '" + k + "' (expected schedule, steps)");
    }
  }
  require(c.steps > 0, "diffusion config: steps must be positive");
  return c;
}

namespace {

// The "diffusion" settings: the config JSON's "diffusion" object, else safetensors metadata
// "tweedie.diffusion", else DPS's defaults.
DiffusionConfig find_diffusion_config(const std::string& weights, const std::string& config_path) {
  std::string cfg = config_path;
  if (cfg.empty()) {
    auto beside = std::filesystem::path(weights).replace_extension(".json");
    if (std::filesystem::exists(beside)) cfg = beside.string();
  }
  // A config that is not JSON, or a "diffusion" object of the wrong types, is an error naming
  // the file and key, never a silent fall back to the defaults.
  auto from = [](const nlohmann::json& j, const std::string& where) {
    return read_json_as(where, [&] { return DiffusionConfig::from_json(j); });
  };
  if (!cfg.empty()) {
    auto j = read_json_file(cfg);
    if (j.is_object() && j.contains("diffusion")) return from(j["diffusion"], cfg + ": diffusion");
  }
  if (io::detect_tensor_file(weights) == io::TensorFileFormat::kSafetensors) {
    auto meta = io::read_safetensors(weights).metadata;
    auto it = meta.find("tweedie.diffusion");
    const std::string where = weights + ": metadata tweedie.diffusion";
    if (it != meta.end()) return from(parse_json(it->second, where), where);
  }
  return {};
}

}  // namespace

PriorRegistry& prior_registry() {
  static PriorRegistry* registry = [] {
    auto* r = new PriorRegistry("prior");
    r->add({"gaussian", "x0 ~ N(0, var I) with its exact ε on the linear 1000-step schedule (a control, no network)",
            {{"var", "0.25", "variance of each pixel"},
             {"channels", "1", "C of an item [C, size, size]"},
             {"size", "32", "H = W of an item"}},
            [](const Params& p, torch::Device) {
              const double var = p.real("var");
              const int64_t c = p.integer("channels"), n = p.integer("size");
              if (!(var > 0)) p.fail("var must be positive, got " + show_number(var));
              if (c < 1 || n < 1 || c * n * n > (int64_t(1) << 26))
                p.fail("channels and size must be positive, with channels·size² at most 2^26");
              Prior prior;
              prior.shape = {c, n, n};
              prior.base = make_schedule(prior.diffusion.schedule, prior.diffusion.steps);
              prior.denoiser = std::make_shared<EpsDenoiser>(
                  gaussian_eps_model(prior.base, torch::zeros({c, n, n}), torch::full({c, n, n}, var)), prior.base);
              prior.about = {{"kind", "gaussian (exact score)"}, {"var", var}};
              return prior;
            },
            {"gaussian:var=0.25,channels=1,size=8"}});
    return r;
  }();
  return *registry;
}

Prior load_prior(const std::string& path, torch::Device device, const std::string& config_path) {
  const std::string name = path.substr(0, path.find(':'));
  if (prior_registry().has(name)) {
    require(config_path.empty(), "prior " + name + ": a prior by name takes no architecture file");
    const auto& entry = prior_registry().find(name);
    Prior p = entry.make(prior_registry().resolve(parse_spec(path, "--prior")), device);
    if (!p.denoiser || p.shape.empty() || p.net || p.gmm)
      throw InternalError("prior " + name + ": its factory must set denoiser and shape (and no net or mixture)");
    p.path = path;
    return p;
  }
  Prior p;
  const std::string prefix = kGmmPrefix;
  if (path.rfind(prefix, 0) == 0) {
    const std::string file = data_path(path.substr(prefix.size()));
    require(config_path.empty(), "a gmm: prior takes no architecture file");
    p.path = prefix + file;
    p.sha256 = sha256_file(file);
    p.gmm = std::make_shared<const GaussianMixture>(load_gmm(file));
    p.base = make_schedule(p.diffusion.schedule, p.diffusion.steps);
    EpsDenoiserOptions options;
    options.mixture = p.gmm;
    p.denoiser = std::make_shared<EpsDenoiser>(gmm_eps_model(p.base, p.gmm), p.base, options);
    return p;
  }
  const std::string weights_path = data_path(path);
  p.path = weights_path;
  p.sha256 = sha256_file(weights_path);
  p.net = load_unet(weights_path, config_path);
  p.net->to(device);
  p.net->eval();
  // A prior is never trained through: frozen weights keep autograd to what solvers
  // differentiate (DPS: the input), and keep training-only kernels out of their graphs.
  for (auto& w : p.net->parameters()) w.requires_grad_(false);
  p.diffusion = find_diffusion_config(weights_path, config_path);
  p.base = make_schedule(p.diffusion.schedule, p.diffusion.steps);
  EpsDenoiserOptions options;
  if (p.net->config().learn_sigma()) options.variance = VarianceType::kLearnedRange;
  UNet net = p.net;
  EpsModel model = [net](const torch::Tensor& x, const torch::Tensor& t) mutable { return net->forward(x, t); };
  p.denoiser = std::make_shared<EpsDenoiser>(model, p.base, options);
  return p;
}

std::vector<int64_t> Prior::item_shape() const {
  if (gmm) return gmm->item_shape;
  if (!net) return shape;
  const auto& c = net->config();
  return {c.in_channels, c.image_size, c.image_size};
}

void Prior::require_items(const std::vector<int64_t>& shape, const std::string& owner, const std::string& other) const {
  const auto want = item_shape();
  if (shape == want) return;
  throw InputError((owner.empty() ? "" : owner + ": ") + "the prior " + path + " makes items " + op::shape_text(want) +
                   " but " + other + " " + op::shape_text(shape));
}

std::string Prior::item_text() const {
  std::string s;
  for (auto d : item_shape()) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

nlohmann::json Prior::describe() const {
  if (!net && !gmm) {
    return {{"path", path}, {"kind", "by name"}, {"item_shape", shape}, {"diffusion", diffusion.to_json()},
            {"about", about}};
  }
  if (gmm) {
    return {{"path", path},
            {"sha256", sha256},
            {"kind", "gaussian mixture (exact score)"},
            {"item_shape", gmm->item_shape},
            {"components", gmm->components()},
            {"subspace_dims", gmm->dims()},
            {"active_pixels", gmm->active_pixels()},
            {"diffusion", diffusion.to_json()},
            {"parameters", gmm->num_parameters()}};
  }
  return {{"path", path},
          {"sha256", sha256},
          {"architecture", net->config().to_json()},
          {"diffusion", diffusion.to_json()},
          {"parameters", net->num_parameters()},
          {"gflops_per_image", net->flops_per_image() / 1e9}};
}

}  // namespace tweedie::diffusion
