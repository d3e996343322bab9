#pragma once
// Image plumbing shared by the commands that read images and write pictures (simulate, solve).
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace tweedie::cli {

// Loads every reference (data::load_reference: .png, .npy, fashion-mnist[:...], test image
// names) into one batch; images are optionally made gray and centre-cropped/resized to
// size × size first. InputError when items disagree in shape.
torch::Tensor load_images(const std::vector<std::string>& refs, bool gray = false, int64_t size = 0);

// The central square of `image` resized to size × size (--size of dataset and simulate); an
// InputError naming --size when the result would not fit in memory.
torch::Tensor square_resized(const torch::Tensor& image, int64_t size);

// Images in [-1, 1] as they are; anything else (Aᵀy of a Gaussian, magnitudes) is stretched
// per item to [-1, 1] for display.
torch::Tensor viewable(torch::Tensor t);

// [B, 1 or 3, H, W], real: something a PNG can show.
bool is_image_batch(const torch::Tensor& t);

// Writes `images` ([B, C, H, W]) as one PNG (a grid of `cols` columns when B > 1), viewable().
void write_image_png(const std::string& path, const torch::Tensor& images, int64_t cols = 8,
                     const std::map<std::string, std::string>& text = {}, int64_t min_tile = 0);

}  // namespace tweedie::cli
