#pragma once
// Plugins: your own operators, channels and solvers, compiled apart from tweedie and named by the
// CLI, experiment configs and Python as the built-in ones are (docs/extending.md).
//
// A plugin is a shared library linked against libtweedie that defines
//   extern "C" void tweedie_plugin_register();
// which enrols its parts in the registries (op::operator_registry(), channel::channel_registry(),
// solve::solver_registry()). TWEEDIE_PLUGINS lists plugin paths separated by ':'; the CLI loads
// them before it reads its arguments (so `--help` lists the parts), the Python module when it is
// imported, or on tweedie.load_plugin(path).
//
// Written here rather than taken from a library: it is dlopen and one symbol lookup.
#include <string>
#include <vector>

namespace tweedie {

inline constexpr const char* kPluginEntry = "tweedie_plugin_register";
inline constexpr const char* kPluginsVariable = "TWEEDIE_PLUGINS";

// Loads the plugin at `path` and runs its registration, once per file (a second load of the same
// file does nothing). InputError, one line naming `what` and the path, when the file is missing,
// is not a loadable library, lacks the entry point, or enrols a name that is already taken.
void load_plugin(const std::string& path, const std::string& what);
// Every path of a ':'-separated list, in order (empty entries skipped).
void load_plugins(const std::string& list, const std::string& what);
// $TWEEDIE_PLUGINS, when set.
void load_plugins_from_environment();
// The plugins loaded so far (canonical paths), in load order.
std::vector<std::string> loaded_plugins();

}  // namespace tweedie
