#include "cli/images.h"

#include "tweedie/core/error.h"
#include "tweedie/data/reference.h"
#include "tweedie/data/transforms.h"
#include "tweedie/io/png.h"
#include "tweedie/op/operator.h"

namespace tweedie::cli {

torch::Tensor square_resized(const torch::Tensor& image, int64_t size) {
  try {
    return data::resize(data::center_square(image), size, size);  // resize guards its memory
  } catch (const InputError& e) {
    throw InputError("--size " + std::to_string(size) + ": " + e.what());
  }
}

torch::Tensor load_images(const std::vector<std::string>& refs, bool gray, int64_t size) {
  std::vector<torch::Tensor> parts;
  for (auto& ref : refs) {
    torch::Tensor t = data::load_reference(ref);
    // A NaN pixel would reach every output as NaN without a word: refuse it here, by name.
    require(!t.is_floating_point() || torch::isfinite(t).all().item<bool>(), ref + ": contains NaN or Inf");
    if (t.dim() == 4) {
      if (gray) t = data::to_gray(t);
      if (size > 0) t = square_resized(t, size);
    } else {
      require(!gray && size == 0, ref + ": --gray and --size apply to images, not vectors [N, D]");
    }
    if (!parts.empty() && t.sizes().slice(1) != parts[0].sizes().slice(1))
      throw InputError(ref + ": items of shape " + op::shape_text(t.sizes().slice(1).vec()) + " do not match " +
                       refs[0] + "'s " + op::shape_text(parts[0].sizes().slice(1).vec()) +
                       " (use --size to make them equal)");
    parts.push_back(t);
  }
  require(!parts.empty(), "no input images given");
  return torch::cat(parts, 0).contiguous();
}

torch::Tensor viewable(torch::Tensor t) {
  t = t.detach().to(torch::kCPU, torch::kFloat32);
  if (t.abs().max().item<float>() <= 1.0f + 1e-6f) return t;
  auto flat = t.flatten(1);
  auto lo = std::get<0>(flat.min(1, true)), hi = std::get<0>(flat.max(1, true));
  return ((flat - lo) / (hi - lo).clamp_min(1e-12) * 2 - 1).view_as(t);
}

bool is_image_batch(const torch::Tensor& t) {
  return !t.is_complex() && t.dim() == 4 && (t.size(1) == 1 || t.size(1) == 3);
}

void write_image_png(const std::string& path, const torch::Tensor& images, int64_t cols,
                     const std::map<std::string, std::string>& text, int64_t min_tile) {
  auto v = viewable(images);
  io::write_png(path, v.size(0) == 1 && min_tile == 0 ? v[0] : io::make_grid(v, cols, 2, 1.0, min_tile), text);
}

}  // namespace tweedie::cli
