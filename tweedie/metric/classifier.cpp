#include "tweedie/metric/classifier.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>

#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/json_input.h"
#include "tweedie/diffusion/unet.h"  // load_state_dict_strict, state_dict
#include "tweedie/io/safetensors.h"

namespace tweedie::metric {
namespace {

using nlohmann::json;
constexpr const char* kMetadataKey = "tweedie.classifier";

[[noreturn]] void bad_key(const std::string& key, const std::string& what) {
  throw InputError("classifier config: \"" + key + "\" " + what);
}

int64_t get_int(const std::string& key, const json& v) {
  if (!v.is_number_integer()) bad_key(key, "must be an integer, got " + v.dump());
  return v.get<int64_t>();
}

ClassifierConfig config_from_text(const std::string& text, const std::string& source) {
  const json j = parse_json(text, source);
  return read_json_as(source, [&] { return ClassifierConfig::from_json(j); });
}

}  // namespace

// ---- config ------------------------------------------------------------------------------------

void ClassifierConfig::validate() const {
  if (in_channels < 1) bad_key("in_channels", "must be positive");
  if (num_classes < 2) bad_key("num_classes", "must be at least 2");
  if (features < 1) bad_key("features", "must be positive");
  if (channels.empty() || channels.size() > 8) bad_key("channels", "must list 1 to 8 stages");
  for (int64_t c : channels)
    if (c < 1) bad_key("channels", "must be positive");
  const int64_t down = int64_t{1} << channels.size();
  if (image_size < down || image_size % down != 0) {
    bad_key("image_size", "= " + std::to_string(image_size) + " is not a multiple of 2^stages = " +
                              std::to_string(down));
  }
}

json ClassifierConfig::to_json() const {
  return {{"image_size", image_size}, {"in_channels", in_channels}, {"num_classes", num_classes},
          {"channels", channels},     {"features", features},       {"batch_norm", batch_norm}};
}

ClassifierConfig ClassifierConfig::from_json(const json& j) {
  require(j.is_object(), "classifier config: expected a JSON object");
  ClassifierConfig c;
  std::set<std::string> seen;
  for (const auto& [key, v] : j.items()) {
    seen.insert(key);
    if (key == "image_size") {
      c.image_size = get_int(key, v);
    } else if (key == "in_channels") {
      c.in_channels = get_int(key, v);
    } else if (key == "num_classes") {
      c.num_classes = get_int(key, v);
    } else if (key == "features") {
      c.features = get_int(key, v);
    } else if (key == "batch_norm") {
      if (!v.is_boolean()) bad_key(key, "must be true or false, got " + v.dump());
      c.batch_norm = v.get<bool>();
    } else if (key == "channels") {
      if (!v.is_array()) bad_key(key, "must be a list of integers");
      c.channels.clear();
      for (const auto& e : v) c.channels.push_back(get_int(key, e));
    } else {
      throw InputError("classifier config: unknown key \"" + key + "\"");
    }
  }
  for (const char* key : {"image_size", "in_channels", "num_classes", "channels", "features", "batch_norm"}) {
    if (!seen.count(key)) throw InputError(std::string("classifier config: missing key \"") + key + "\"");
  }
  c.validate();
  return c;
}

// ---- network -----------------------------------------------------------------------------------

ClassifierImpl::ClassifierImpl(ClassifierConfig config) : config_(std::move(config)) {
  config_.validate();
  convs_ = register_module("convs", torch::nn::ModuleList());
  norms_ = register_module("norms", torch::nn::ModuleList());
  int64_t in = config_.in_channels;
  for (int64_t c : config_.channels) {
    convs_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c, 3).padding(1)));
    if (config_.batch_norm) norms_->push_back(torch::nn::BatchNorm2d(c));
    in = c;
  }
  const int64_t side = config_.image_size >> config_.channels.size();
  fc_ = register_module("fc", torch::nn::Linear(in * side * side, config_.features));
  head_ = register_module("head", torch::nn::Linear(config_.features, config_.num_classes));
}

torch::Tensor ClassifierImpl::features(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (size_t i = 0; i < convs_->size(); ++i) {
    h = convs_[i]->as<torch::nn::Conv2d>()->forward(h);
    if (config_.batch_norm) h = norms_[i]->as<torch::nn::BatchNorm2d>()->forward(h);
    h = torch::max_pool2d(torch::relu(h), 2);
  }
  return torch::relu(fc_->forward(h.flatten(1)));  // φ(x)
}

torch::Tensor ClassifierImpl::logits_from_features(const torch::Tensor& phi) { return head_->forward(phi); }

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) { return logits_from_features(features(x)); }

int64_t ClassifierImpl::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

void seeded_init(Classifier& model, torch::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    torch::Tensor p = item.value();
    if (p.dim() == 1) {
      const bool gamma = item.key().rfind("norms.", 0) == 0 && item.key().find(".weight") != std::string::npos;
      p.fill_(gamma ? 1.0 : 0.0);  // BatchNorm γ = 1; biases and β = 0
      continue;
    }
    const double fan_in = static_cast<double>(p.numel() / p.size(0));  // in_channels × kernel
    p.copy_(torch::randn(p.sizes(), gen) * std::sqrt(2.0 / fan_in));  // He: N(0, 2 / fan_in)
  }
}

// ---- inputs and inference ----------------------------------------------------------------------

bool classifier_accepts(const torch::Tensor& images, const ClassifierConfig& config) {
  if (images.dim() != 4 || images.size(1) != config.in_channels || images.size(2) != images.size(3)) return false;
  return images.size(2) == config.image_size || images.size(2) == config.image_size - 4;
}

torch::Tensor classifier_input(const torch::Tensor& images, const ClassifierConfig& config) {
  if (!classifier_accepts(images, config)) {
    std::ostringstream s;
    s << "classifier: expects images [B, " << config.in_channels << ", " << config.image_size << ", "
      << config.image_size << "] (or " << config.image_size - 4 << " × " << config.image_size - 4
      << ", padded), got " << images.sizes();
    throw InputError(s.str());
  }
  torch::Tensor x = images.to(torch::kFloat32);
  if (x.size(2) == config.image_size) return x;
  namespace F = torch::nn::functional;  // 28 → 32 with black (−1) borders, as load_fashion_mnist
  return F::pad(x, F::PadFuncOptions({2, 2, 2, 2}).value(-1.0));
}

torch::Tensor classifier_features(Classifier& model, const torch::Tensor& images, int64_t batch_size) {
  require(batch_size > 0, "classifier: batch size must be positive");
  torch::Tensor x = classifier_input(images, model->config());
  torch::InferenceMode inference;
  model->eval();
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < x.size(0); i += batch_size) {
    out.push_back(model->features(x.slice(0, i, std::min(i + batch_size, x.size(0)))));
  }
  return torch::cat(out);
}

double classifier_accuracy(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                           int64_t batch_size) {
  require(labels.dim() == 1 && labels.size(0) == images.size(0) && labels.size(0) > 0,
          "classifier accuracy: need one label per image");
  torch::InferenceMode inference;
  torch::Tensor phi = classifier_features(model, images, batch_size);
  torch::Tensor predicted = model->logits_from_features(phi).argmax(1);
  return (predicted == labels.to(torch::kInt64)).to(torch::kFloat64).mean().item<double>();
}

// ---- files -------------------------------------------------------------------------------------

void save_classifier(const std::string& path, Classifier& model,
                     const std::map<std::string, std::string>& metadata) {
  std::map<std::string, std::string> md = metadata;
  md[kMetadataKey] = model->config().to_json().dump();
  io::TensorMap tensors;
  for (auto& [name, t] : diffusion::state_dict(*model)) tensors[name] = t.to(torch::kCPU).contiguous();
  io::write_safetensors(path, tensors, md);
  const std::string beside = std::filesystem::path(path).replace_extension(".json").string();
  atomic_write_file(beside, model->config().to_json().dump(2) + "\n");
}

Classifier load_classifier(const std::string& given) {
  namespace fs = std::filesystem;
  const std::string path = data_path(given);
  require(fs::is_regular_file(path), path + ": no such classifier file");
  io::SafeTensors st = io::read_safetensors(path);
  std::optional<ClassifierConfig> config;
  const auto embedded = st.metadata.find(kMetadataKey);
  if (embedded != st.metadata.end()) {
    config = config_from_text(embedded->second, path + " (metadata " + kMetadataKey + ")");
  }
  const std::string beside = fs::path(path).replace_extension(".json").string();
  if (fs::is_regular_file(beside)) {
    ClassifierConfig outer = config_from_text(read_file(beside), beside);
    // A stale JSON next to a self-describing file must not silently win.
    require(!config || outer.to_json() == config->to_json(),
            beside + ": config disagrees with the one embedded in " + path);
    config = outer;
  }
  require(config.has_value(), path + ": no classifier config (neither " + beside + " nor metadata " +
                                  kMetadataKey + ")");
  Classifier model(*config);
  diffusion::load_state_dict_strict(*model, st.tensors, path);
  model->eval();
  return model;
}

std::string default_classifier_path() {
  if (const char* env = std::getenv("TWEEDIE_CLASSIFIER"); env && *env) return env;
  return data_path(kDefaultClassifier);
}

Classifier choose_classifier(const std::string& choice, const torch::Tensor& images, std::string* note) {
  auto say = [&](const std::string& why) {
    if (note) *note = why;
    return Classifier(nullptr);
  };
  if (choice == "none") return say("classifier: none");
  if (!choice.empty() && choice != "auto") {
    Classifier c = load_classifier(choice);
    require(classifier_accepts(images, c->config()), choice + ": the classifier does not take images of this shape");
    return c;
  }
  if (!classifier_accepts(images, ClassifierConfig{}))
    return say("images are not Fashion-MNIST-like (1x32x32 or 1x28x28); pass a classifier");
  const std::string path = default_classifier_path();
  if (!std::filesystem::is_regular_file(path)) return say("default classifier " + path + " not found");
  return load_classifier(path);
}

}  // namespace tweedie::metric
