#include "tweedie/core/error.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <sstream>

namespace tweedie {

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto hex = [&](unsigned char c) {
    char buf[5];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  };
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      hex(c);
      ++i;
      continue;
    }
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence of 2-4 bytes (no overlongs, no surrogates, no C1 controls)
    // passes through whole; anything else is escaped byte by byte.
    size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    bool ok = len > 0 && i + len <= n;
    uint32_t cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; ok && k < len; ++k) {
      const auto d = static_cast<unsigned char>(text[i + k]);
      ok = (d & 0xc0) == 0x80;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (ok) {
      const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
      ok = cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && !(cp >= 0x80 && cp < 0xa0);
    }
    if (ok) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      hex(c);
      ++i;
    }
  }
  return out;
}

void require_finite(double value, const std::string& what) {
  if (std::isfinite(value)) return;
  throw InputError(what + " = " + (std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf") +
                   ": expected a finite number");
}

InputError json_input_error(const std::string& file, const std::exception& error) {
  // nlohmann's messages read "[json.exception.type_error.302] (/a/0/b) type must be number, ...";
  // keep the key path and the explanation, drop the exception id.
  std::string what = error.what();
  if (what.rfind("[json.exception.", 0) == 0) {
    auto close = what.find("] ");
    if (close != std::string::npos) what.erase(0, close + 2);
  }
  if (!what.empty() && what[0] == '(') {
    auto close = what.find(") ");
    if (close != std::string::npos) {
      std::string key = what.substr(1, close - 1);
      what = "key " + (key.empty() ? std::string("/") : key) + ": " + what.substr(close + 2);
    }
  }
  return InputError(file + ": " + what);
}

nlohmann::json parse_json(std::string_view text, const std::string& file) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw json_input_error(file + ": not valid JSON", e);
  }
}

}  // namespace tweedie
