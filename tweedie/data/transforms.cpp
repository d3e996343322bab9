#include "tweedie/data/transforms.h"

#include <sstream>

#include "tweedie/core/error.h"
#include "tweedie/core/memory.h"

namespace tweedie::data {
namespace {
namespace F = torch::nn::functional;

std::string shape_string(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

// Every transform takes [C, H, W] or [N, C, H, W]; the channel dimension is -3 in both.
void require_image(const torch::Tensor& image, const char* what) {
  require(image.defined() && (image.dim() == 3 || image.dim() == 4),
          std::string(what) + ": expected an image [C, H, W] or [N, C, H, W], got " +
              (image.defined() ? shape_string(image) : "undefined"));
}

F::InterpolateFuncOptions interpolate_options(ResizeMode mode, bool shrinking) {
  auto options = F::InterpolateFuncOptions();
  switch (mode) {
    case ResizeMode::kArea:
      return options.mode(torch::kArea);
    case ResizeMode::kNearest:
      return options.mode(torch::kNearest);
    case ResizeMode::kBilinear:
      // antialias widens the kernel when shrinking (as PIL does); it needs a 4-D input
      return options.mode(torch::kBilinear).align_corners(false).antialias(shrinking);
    case ResizeMode::kBicubic:
      return options.mode(torch::kBicubic).align_corners(false).antialias(shrinking);
  }
  throw InternalError("resize: unhandled mode");
}

}  // namespace

torch::Tensor center_crop(const torch::Tensor& image, int64_t h, int64_t w) {
  require_image(image, "center_crop");
  const int64_t in_h = image.size(-2), in_w = image.size(-1);
  require(h > 0 && w > 0 && h <= in_h && w <= in_w, "center_crop: cannot crop " + std::to_string(h) + "x" +
                                                        std::to_string(w) + " from " + shape_string(image));
  return image.narrow(-2, (in_h - h) / 2, h).narrow(-1, (in_w - w) / 2, w).contiguous();
}

torch::Tensor center_square(const torch::Tensor& image) {
  require_image(image, "center_square");
  const int64_t side = std::min(image.size(-2), image.size(-1));
  return center_crop(image, side, side);
}

ResizeMode parse_resize_mode(const std::string& name) {
  if (name == "area") return ResizeMode::kArea;
  if (name == "bilinear") return ResizeMode::kBilinear;
  if (name == "bicubic") return ResizeMode::kBicubic;
  if (name == "nearest") return ResizeMode::kNearest;
  throw InputError("unknown resize mode '" + name + "' (expected area, bilinear, bicubic or nearest)");
}

torch::Tensor resize(const torch::Tensor& image, int64_t h, int64_t w, ResizeMode mode) {
  require_image(image, "resize");
  require(image.is_floating_point(), "resize: expected a floating-point image");
  require(h > 0 && w > 0,
          "resize: target size must be positive, got " + std::to_string(h) + "x" + std::to_string(w));
  // The result and the interpolation's intermediates: a few float copies of the target.
  require_memory(4.0 * 4.0 * double(h) * double(w) * double(image.numel() / (image.size(-2) * image.size(-1))),
                 "resizing to " + std::to_string(h) + "x" + std::to_string(w));
  const bool batched = image.dim() == 4;
  torch::Tensor x = batched ? image : image.unsqueeze(0);
  if (x.size(-2) == h && x.size(-1) == w) return image.clone();
  const bool shrinking = h < x.size(-2) || w < x.size(-1);
  torch::Tensor y = F::interpolate(x, interpolate_options(mode, shrinking).size(std::vector<int64_t>{h, w}));
  // bicubic (and the antialiased kernels) overshoot at edges; keep the [-1, 1] invariant
  y = y.clamp(-1.0, 1.0);
  return batched ? y : y.squeeze(0);
}

torch::Tensor to_gray(const torch::Tensor& image) {
  require_image(image, "to_gray");
  const int64_t c = image.size(-3);
  if (c == 1) return image;
  require(c == 3, "to_gray: expected 1 or 3 channels, got " + shape_string(image));
  // ITU-R BT.601 luma; the weights sum to 1, so applying them in [-1, 1] equals doing so in [0, 255]
  return 0.299 * image.narrow(-3, 0, 1) + 0.587 * image.narrow(-3, 1, 1) + 0.114 * image.narrow(-3, 2, 1);
}

torch::Tensor to_rgb(const torch::Tensor& image) {
  require_image(image, "to_rgb");
  const int64_t c = image.size(-3);
  if (c == 3) return image;
  require(c == 1, "to_rgb: expected 1 or 3 channels, got " + shape_string(image));
  std::vector<int64_t> repeats(static_cast<size_t>(image.dim()), 1);
  repeats[repeats.size() - 3] = 3;
  return image.repeat(repeats);
}

}  // namespace tweedie::data
