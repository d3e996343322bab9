#include "tweedie/data/reference.h"

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/registry.h"
#include "tweedie/data/fashion_mnist.h"
#include "tweedie/data/test_images.h"
#include "tweedie/data/transforms.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/png.h"

namespace tweedie::data {
namespace {

int64_t parse_index(const std::string& s, const std::string& ref) {
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used == s.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  throw InputError(ref + ": '" + s + "' is not an image index");
}

torch::Tensor fashion_mnist(const std::string& ref) {
  auto parts = split_spec(ref, ':');
  std::string split = parts.size() > 1 ? parts[1] : "test";
  std::string range = parts.size() > 2 ? parts[2] : "0";
  if (parts.size() > 3) throw InputError(ref + ": expected fashion-mnist[:SPLIT[:A[-B]]]");
  size_t dash = range.find('-');
  int64_t a = parse_index(range.substr(0, dash), ref);
  int64_t b = dash == std::string::npos ? a : parse_index(range.substr(dash + 1), ref);
  if (b < a) throw InputError(ref + ": empty range " + range);
  auto set = load_fashion_mnist(parse_split(split));
  int64_t n = set.images.size(0);
  if (b >= n) throw InputError(ref + ": index " + std::to_string(b) + " is past the " + std::to_string(n) + " images");
  return set.images.slice(0, a, b + 1).contiguous();
}

}  // namespace

torch::Tensor load_reference(const std::string& ref) {
  if (ref.empty()) throw InputError("empty input reference");
  std::string ext = file_extension(ref);
  if (ext == "png") return io::read_png(ref).unsqueeze(0);
  if (ext == "npy") {
    auto a = io::read_npy(ref);
    if (a.is_complex()) throw InputError(ref + ": complex arrays are not images");
    if (a.scalar_type() == torch::kUInt8) a = a.to(torch::kFloat32) / 127.5 - 1.0;
    a = a.to(torch::kFloat32);
    if (a.dim() == 3) a = a.unsqueeze(0);
    if (a.dim() != 4 && a.dim() != 2)
      throw InputError(ref + ": expected [N, C, H, W], [C, H, W] or [N, D], got " + std::to_string(a.dim()) + " dimensions");
    if (a.numel() == 0) throw InputError(ref + ": empty array");
    if (!torch::isfinite(a).all().item<bool>()) throw InputError(ref + ": contains NaN or Inf");
    return a;
  }
  if (ref == "fashion-mnist" || ref.rfind("fashion-mnist:", 0) == 0) return fashion_mnist(ref);
  const size_t colon = ref.rfind(':');
  if (colon != std::string::npos && colon > 0 && ref.find('/') == std::string::npos) {
    const std::string name = ref.substr(0, colon);
    const int64_t size = parse_index(ref.substr(colon + 1), ref);
    if (size < 2) throw InputError(ref + ": the size must be at least 2");
    if (name == "phantom") return shepp_logan(size).unsqueeze(0);
    auto img = load_test_image(name).unsqueeze(0);
    return resize(center_square(img), size, size, ResizeMode::kArea);
  }
  return load_test_image(ref).unsqueeze(0);
}

}  // namespace tweedie::data
