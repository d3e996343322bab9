#include "tweedie/core/data_dir.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

#include "tweedie/core/error.h"

namespace fs = std::filesystem;

namespace tweedie {
namespace {

bool holds_models(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir / "models", ec);
}

// The file this function's code was loaded from: libtweedie.so, or the executable (or Python
// extension) that links the library statically. dladdr is glibc's way to ask; there is no
// standard C++ equivalent.
std::optional<fs::path> own_binary() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_binary), &info) == 0 || info.dli_fname == nullptr) return std::nullopt;
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::path(info.dli_fname), ec);
  if (ec || p.empty()) return std::nullopt;
  return p;
}

}  // namespace

// Not cached: the variable is read each time, so a test (or the Python module) can change it.
std::optional<std::string> data_dir() {
  if (const char* env = std::getenv("TWEEDIE_DATA_DIR"); env && *env) {
    require(holds_models(env), std::string("TWEEDIE_DATA_DIR = ") + env +
                                   ": not a tweedie data directory (expected a directory holding models/)");
    return std::string(env);
  }
  auto binary = own_binary();
  if (!binary) return std::nullopt;
  fs::path dir = binary->parent_path();
  for (int up = 0; up <= 4 && !dir.empty(); ++up, dir = dir.parent_path()) {
    if (holds_models(dir / "share" / "tweedie")) return (dir / "share" / "tweedie").string();
    if (dir == dir.parent_path()) break;
  }
  return std::nullopt;
}

std::string data_path(const std::string& path) {
  std::error_code ec;
  if (path.empty() || fs::path(path).is_absolute() || fs::exists(path, ec)) return path;
  const auto dir = data_dir();
  if (!dir) return path;
  fs::path shipped = fs::path(*dir) / path;
  return fs::exists(shipped, ec) ? shipped.string() : path;
}

}  // namespace tweedie
