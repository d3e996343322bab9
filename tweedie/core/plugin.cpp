#include "tweedie/core/plugin.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "tweedie/core/error.h"

namespace tweedie {
namespace {

std::mutex& plugin_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::string>& plugin_list() {
  static std::vector<std::string> list;
  return list;
}

}  // namespace

void load_plugin(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  const std::string at = what + ": plugin " + path;
  std::error_code ec;
  if (path.empty()) throw InputError(what + ": an empty plugin path");
  if (!fs::is_regular_file(path, ec)) throw InputError(at + ": no such file");
  const std::string canonical = fs::canonical(path, ec).string();
  std::lock_guard<std::mutex> lock(plugin_mutex());
  for (const auto& p : plugin_list())
    if (p == canonical) return;
  // RTLD_NOW: an unresolved symbol fails here, in one line, not at the first call; RTLD_LOCAL: one
  // plugin's symbols do not satisfy another's. The handle is kept for the life of the process
  // (the registries hold its functions).
  void* handle = dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw InputError(at + ": cannot be loaded (" + printable(why ? why : "unknown reason") + ")");
  }
  dlerror();
  auto entry = reinterpret_cast<void (*)()>(dlsym(handle, kPluginEntry));
  if (entry == nullptr) {
    dlclose(handle);
    throw InputError(at + " defines no extern \"C\" void " + kPluginEntry + "()");
  }
  try {
    entry();
  } catch (const InputError& e) {
    throw InputError(at + ": " + e.what());
  } catch (const InternalError& e) {  // the registries' "enrolled twice": the plugin's mistake, not ours
    throw InputError(at + ": " + e.what() + " (a built-in part or another plugin has that name)");
  }
  plugin_list().push_back(canonical);
}

void load_plugins(const std::string& list, const std::string& what) {
  size_t from = 0;
  while (from <= list.size()) {
    const size_t to = std::min(list.find(':', from), list.size());
    if (to > from) load_plugin(list.substr(from, to - from), what);
    from = to + 1;
  }
}

void load_plugins_from_environment() {
  if (const char* v = std::getenv(kPluginsVariable)) load_plugins(v, kPluginsVariable);
}

std::vector<std::string> loaded_plugins() {
  std::lock_guard<std::mutex> lock(plugin_mutex());
  return plugin_list();
}

}  // namespace tweedie
