#pragma once
// Error types and the checks that raise them. The CLI maps them to exit codes: InputError -> 2
// (bad input or usage), anything else -> 1 (internal). Messages are one line and name the
// input (option, file, JSON key) and what was expected.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

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

// `text` with every byte that could act on a terminal escaped: control bytes (newline, ESC,
// DEL, ...) and bytes of invalid UTF-8 become \xNN; valid UTF-8 (σ, ε, ...) is kept. Every
// message that quotes input passes through this at the CLI's error boundary.
std::string printable(std::string_view text);

// Throws InputError "<what> = <value>: expected a finite number" for NaN or ±Inf.
void require_finite(double value, const std::string& what);

// An InputError for a JSON error met while reading `file`: names the file and, for type and
// range errors, the key path (nlohmann's JSON_DIAGNOSTICS, on for the whole build), without
// nlohmann's "[json.exception.type_error.302]" prefix.
InputError json_input_error(const std::string& file, const std::exception& error);

// Parses `text` (the content of `file`) as JSON; InputError naming the file, line and column
// when it is not valid JSON.
nlohmann::json parse_json(std::string_view text, const std::string& file);

}  // namespace tweedie
