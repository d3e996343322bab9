#pragma once
// Fashion-MNIST from Debian's dataset-fashion-mnist (idx files, gzip'ed, under
// /usr/share/datasets/fashion-mnist). 60000 train / 10000 test images of 28x28, 10 classes.
#include <torch/torch.h>

#include <array>
#include <string>

namespace tweedie::data {

enum class Split { kTrain, kTest };

struct LabeledImages {
  torch::Tensor images;  // float32 [N, 1, S, S] in [-1, 1]; S = 32 when padded, else 28
  torch::Tensor labels;  // int64 [N], 0..9
};

// Default directory: env TWEEDIE_FASHION_MNIST_DIR, else /usr/share/datasets/fashion-mnist.
std::string fashion_mnist_dir();

// Reads one split. `pad_to_32` zero-pads (value -1, i.e. black) by 2 pixels on each side.
// InputError naming the file if it is missing, truncated or not an idx file. Uncompressed
// idx files (no .gz) are read when the .gz is absent.
LabeledImages load_fashion_mnist(Split split, bool pad_to_32 = true,
                                 const std::string& dir = fashion_mnist_dir());

// Class names, index = label.
const std::array<std::string, 10>& fashion_mnist_classes();

Split parse_split(const std::string& name);  // "train" | "test"; InputError otherwise

}  // namespace tweedie::data
