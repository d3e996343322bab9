#pragma once
// Internal to the library: not installed, not part of the API (cmake/Install.cmake).
// Reading user JSON into typed values, with errors that name where the JSON came from.
#include <nlohmann/json.hpp>

#include <string>

#include "tweedie/core/error.h"

namespace tweedie {

// Runs `read` (JSON already parsed -> a typed value) and names `where` (a file, "FILE: key",
// "--arch FILE") in whatever it throws: nlohmann's type and range errors become
// json_input_error(where, ...) with their key path, and InputErrors get "where: " in front.
template <class Read>
auto read_json_as(const std::string& where, Read&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const nlohmann::json::exception& e) {
    throw json_input_error(where, e);
  } catch (const InputError& e) {
    throw InputError(where + ": " + e.what());
  }
}

}  // namespace tweedie
