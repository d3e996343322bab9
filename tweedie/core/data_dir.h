#pragma once
// Where tweedie's shipped files (models/, experiments/) are found at run time. No source or
// build path is compiled in, so an installed tree can be moved as a whole:
//   1. $TWEEDIE_DATA_DIR, when set (it must be a directory holding models/);
//   2. else the first `share/tweedie` holding models/ in the directory of the binary that carries
//      this code (libtweedie.so, or an executable linking the library statically) or in one of
//      its four parent directories: PREFIX/lib/libtweedie.so finds PREFIX/share/tweedie, and the
//      build tree's build/libtweedie.so finds build/share/tweedie (links to the source files).
// Paths a user gives are taken as they are first: data_path() only looks in the data
// directory for a relative path that does not exist from the working directory.
#include <optional>
#include <string>

namespace tweedie {

// The data directory; std::nullopt when neither rule finds one. InputError naming
// TWEEDIE_DATA_DIR when the variable is set but is not a directory holding models/.
std::optional<std::string> data_dir();

// `path` itself when it exists (or is absolute, or names no file in the data directory either);
// else DATA_DIR/path when that exists.
std::string data_path(const std::string& path);

// The shipped priors and classifier, as paths relative to the data directory: what command
// defaults name and data_path() resolves.
inline constexpr const char* kDefaultPrior = "models/fmnist32-long/model.safetensors";
inline constexpr const char* kDefaultClassifier = "models/fmnist-classifier/model.safetensors";

}  // namespace tweedie
