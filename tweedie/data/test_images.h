#pragma once
// The classic test images shipped in Debian's python3-skimage (skimage/data/*.png):
// camera, astronaut, brick, moon, phantom, coins, chelsea, coffee, ... — and an analytic
// Shepp–Logan phantom at any size.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace tweedie::data {

// Env TWEEDIE_SKIMAGE_DATA_DIR, else the first of the known Debian install locations that
// exists; InputError if none does (install python3-skimage).
std::string test_image_dir();

// Names (file stem) of the PNG images available, sorted.
std::vector<std::string> list_test_images();

// Loads a test image by name ("camera") or by path, as float32 [C, H, W] in [-1, 1].
torch::Tensor load_test_image(const std::string& name_or_path);

// The modified Shepp–Logan phantom (Toft's ten ellipses, the one skimage's phantom.png shows),
// generated analytically at n × n with 2 × 2 supersampling: float32 [1, n, n] in [-1, 1]
// (background −1, skull 1).
torch::Tensor shepp_logan(int64_t n);

}  // namespace tweedie::data
