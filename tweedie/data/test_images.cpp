#include "tweedie/data/test_images.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/io/png.h"

namespace tweedie::data {
namespace {
namespace fs = std::filesystem;

// Where python3-skimage may have put skimage/data: Debian's dist-packages first, then
// version-specific and /usr/local installs (pip), in a fixed order.
std::vector<fs::path> candidate_dirs() {
  std::vector<fs::path> dirs = {"/usr/lib/python3/dist-packages/skimage/data",
                                "/usr/local/lib/python3/dist-packages/skimage/data"};
  for (const fs::path root : {"/usr/lib", "/usr/local/lib"}) {
    std::vector<fs::path> pythons;
    std::error_code ec;
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().filename().string().rfind("python3.", 0) == 0) pythons.push_back(it->path());
    std::sort(pythons.begin(), pythons.end());
    for (const auto& py : pythons)
      for (const char* packages : {"dist-packages", "site-packages"})
        dirs.push_back(py / packages / "skimage" / "data");
  }
  return dirs;
}

std::string join_first(const std::vector<std::string>& names, size_t limit) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size() - limit) + " more)";
  return out;
}

}  // namespace

std::string test_image_dir() {
  const char* env = std::getenv("TWEEDIE_SKIMAGE_DATA_DIR");
  std::error_code ec;
  if (env && *env) {
    require(fs::is_directory(env, ec), std::string("TWEEDIE_SKIMAGE_DATA_DIR=") + env + ": not a directory");
    return env;
  }
  for (const auto& dir : candidate_dirs())
    if (fs::is_directory(dir, ec)) return dir.string();
  throw InputError("skimage test images not found (install python3-skimage or set TWEEDIE_SKIMAGE_DATA_DIR)");
}

std::vector<std::string> list_test_images() {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(test_image_dir(), ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && it->path().extension() == ".png")
      names.push_back(it->path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

torch::Tensor load_test_image(const std::string& name_or_path) {
  require(!name_or_path.empty(), "load_test_image: empty image name");
  // Anything with a directory part or a .png extension is a path; a bare word is a name.
  if (name_or_path.find('/') != std::string::npos || file_extension(name_or_path) == "png")
    return io::read_png(name_or_path);
  const fs::path file = fs::path(test_image_dir()) / (name_or_path + ".png");
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    throw InputError("unknown test image '" + name_or_path +
                     "' (available: " + join_first(list_test_images(), 12) + ")");
  return io::read_png(file.string());
}

torch::Tensor shepp_logan(int64_t n) {
  require(n >= 2 && n <= 8192, "phantom:N: N must be in 2..8192");
  // Modified Shepp–Logan (Toft 1996): intensity, semi-axes a, b, centre (x0, y0), angle (degrees)
  static const double kEllipses[10][6] = {
      {1.0, 0.69, 0.92, 0.0, 0.0, 0.0},        {-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0},
      {-0.2, 0.11, 0.31, 0.22, 0.0, -18.0},    {-0.2, 0.16, 0.41, -0.22, 0.0, 18.0},
      {0.1, 0.21, 0.25, 0.0, 0.35, 0.0},       {0.1, 0.046, 0.046, 0.0, 0.1, 0.0},
      {0.1, 0.046, 0.046, 0.0, -0.1, 0.0},     {0.1, 0.046, 0.023, -0.08, -0.605, 0.0},
      {0.1, 0.023, 0.023, 0.0, -0.606, 0.0},   {0.1, 0.023, 0.046, 0.06, -0.605, 0.0}};
  const int64_t s = 2 * n;  // 2 × 2 subsamples per pixel
  auto c = (torch::arange(s, torch::kFloat64) + 0.5) / s * 2 - 1;  // subsample centres in (−1, 1)
  auto x = c.view({1, s}).expand({s, s}), y = -c.view({s, 1}).expand({s, s});  // row 0 at the top
  auto img = torch::zeros({s, s}, torch::kFloat64);
  for (const auto& e : kEllipses) {
    const double phi = e[5] * M_PI / 180, cp = std::cos(phi), sp = std::sin(phi);
    auto u = (x - e[3]) * cp + (y - e[4]) * sp, v = -(x - e[3]) * sp + (y - e[4]) * cp;
    img += e[0] * ((u / e[1]).pow(2) + (v / e[2]).pow(2) <= 1).to(torch::kFloat64);
  }
  img = img.view({1, 1, s, s});
  img = torch::avg_pool2d(img, 2).view({1, n, n});
  return (img.clamp(0, 1) * 2 - 1).to(torch::kFloat32);  // [0, 1] → [−1, 1]
}

}  // namespace tweedie::data
