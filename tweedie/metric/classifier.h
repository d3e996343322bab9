#pragma once
// A small Fashion-MNIST classifier whose penultimate layer serves as a feature space for
// "classifier feature distance" and "classifier Fréchet distance". These stand in for the
// seeds' LPIPS and FID (whose VGG/AlexNet/Inception weights cannot be had here); they are
// NOT LPIPS or FID and their values are not comparable to published LPIPS/FID numbers.
//
// Architecture (all 3×3 convolutions, padding 1):
//   [conv(c_i) → BatchNorm → ReLU → maxpool 2]  for each c_i in `channels`   32 → 16 → 8 → 4
//   flatten → linear(features) → ReLU      <- the feature vector φ(x) ∈ R^features, φ ≥ 0
//   linear(num_classes)                    <- logits
// Inputs: [B, 1, 32, 32] in [-1, 1] (tweedie/data/fashion_mnist.h with pad_to_32); 28 × 28
// images are padded by 2 pixels of −1 first, as the data loader does.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tweedie::metric {

struct ClassifierConfig {
  int64_t image_size = 32;                   // inputs are image_size × image_size
  int64_t in_channels = 1;
  int64_t num_classes = 10;
  std::vector<int64_t> channels = {16, 32, 64};  // one conv + pool stage each
  int64_t features = 128;                    // width of the penultimate (feature) layer
  bool batch_norm = true;                    // BatchNorm after each conv (eval: running statistics)

  void validate() const;  // InputError naming the bad key
  nlohmann::json to_json() const;
  static ClassifierConfig from_json(const nlohmann::json& j);  // strict: unknown keys are errors
};

class ClassifierImpl : public torch::nn::Module {
 public:
  explicit ClassifierImpl(ClassifierConfig config);

  torch::Tensor forward(const torch::Tensor& x);   // logits [B, num_classes]
  torch::Tensor features(const torch::Tensor& x);  // φ(x) [B, features], post-ReLU
  torch::Tensor logits_from_features(const torch::Tensor& phi);

  const ClassifierConfig& config() const { return config_; }
  int64_t num_parameters() const;

 private:
  ClassifierConfig config_;
  torch::nn::ModuleList convs_{nullptr}, norms_{nullptr};
  torch::nn::Linear fc_{nullptr}, head_{nullptr};
};
TORCH_MODULE(Classifier);

// Draws every conv/linear weight from `gen` with He et al. (2015) initialisation for ReLU
// networks, N(0, 2 / fan_in), zeroes the biases and resets BatchNorm to γ = 1, β = 0; a
// training run is then a function of its seed.
void seeded_init(Classifier& model, torch::Generator& gen);

// Brings images to the classifier's input: [B, C, S, S] with S = image_size, or S =
// image_size − 4 padded by 2 pixels of −1 (Fashion-MNIST's 28 → 32). InputError otherwise.
torch::Tensor classifier_input(const torch::Tensor& images, const ClassifierConfig& config);

// True when `images` [B, C, H, W] can be fed to a classifier of `config` (see classifier_input).
bool classifier_accepts(const torch::Tensor& images, const ClassifierConfig& config);

// φ(x) for a stack of images (classifier_input applied), in batches, in inference mode: [B, F].
torch::Tensor classifier_features(Classifier& model, const torch::Tensor& images, int64_t batch_size = 500);

// Fraction of `images` whose arg-max class equals `labels` [B].
double classifier_accuracy(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                           int64_t batch_size = 500);

// Weights as safetensors with the config embedded (metadata "tweedie.classifier"), atomically,
// plus the config as <path without extension>.json beside them.
void save_classifier(const std::string& path, Classifier& model,
                     const std::map<std::string, std::string>& metadata = {});

// Loads a classifier: the config from the JSON beside the weights or the embedded metadata (they
// must agree when both exist), the weights strictly (every missing, unexpected or mis-shaped
// tensor is listed in one InputError). Returns it in eval mode. A relative path missing from the
// working directory is looked up in the data directory (core/data_dir.h).
Classifier load_classifier(const std::string& path);

// The shipped classifier, kDefaultClassifier in the data directory (env TWEEDIE_CLASSIFIER
// overrides).
std::string default_classifier_path();

// The classifier a command should score `images` with, from a user's choice:
//   "" or "auto"  the default classifier, when the images suit it (1×32×32 or 1×28×28) and the
//                 file exists; otherwise none;
//   "none"        none;
//   a path        that classifier, which must take the images (InputError otherwise).
// Returns an undefined module (nullptr) for none; *note says why, when it is none.
Classifier choose_classifier(const std::string& choice, const torch::Tensor& images, std::string* note = nullptr);

}  // namespace tweedie::metric
