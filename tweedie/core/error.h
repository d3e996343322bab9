#pragma once
// Error types. The CLI maps them to exit codes: InputError -> 2 (bad input or usage),
// anything else -> 1 (internal). Messages are one line and name the problem and where.
#include <stdexcept>
#include <string>

namespace tweedie {

// A defect in what the user gave us: a file, a flag, a shape. Exit code 2.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws InputError(message) when `condition` is false.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw InputError(message);
}

// A broken invariant of tweedie itself. Exit code 1.
class InternalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tweedie
