#include "tweedie/data/test_images.h"

#include <algorithm>
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

}  // namespace tweedie::data
