#include "tweedie/core/registry.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tweedie {
namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

std::vector<std::string> split_spec(const std::string& text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == sep) {
      parts.push_back(trim(text.substr(start, i - start)));
      start = i + 1;
    }
  }
  return parts;
}

Spec parse_spec(const std::string& text, const std::string& what) {
  Spec spec;
  std::string t = trim(text);
  size_t colon = t.find(':');
  spec.name = trim(t.substr(0, colon));
  if (spec.name.empty()) throw InputError(what + " '" + text + "': empty name (expected NAME[:KEY=VALUE,...])");
  if (colon == std::string::npos) return spec;
  for (auto& kv : split_spec(t.substr(colon + 1), ',')) {
    if (kv.empty()) continue;  // "name:" or a trailing comma
    size_t eq = kv.find('=');
    if (eq == std::string::npos || trim(kv.substr(0, eq)).empty())
      throw InputError(what + " '" + text + "': '" + kv + "' is not KEY=VALUE");
    spec.args.emplace_back(trim(kv.substr(0, eq)), trim(kv.substr(eq + 1)));
  }
  return spec;
}

std::string format_number(double v) {
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string show_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

Params::Params(std::string owner, std::map<std::string, std::string> values, std::vector<std::string> given)
    : owner_(std::move(owner)), values_(std::move(values)), given_(std::move(given)) {}

bool Params::has(const std::string& key) const { return values_.count(key) != 0; }

bool Params::given(const std::string& key) const {
  return std::find(given_.begin(), given_.end(), key) != given_.end();
}

void Params::fail(const std::string& message) const { throw InputError(owner_ + ": " + message); }

const std::string& Params::text(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) fail("missing parameter '" + key + "'");
  return it->second;
}

double Params::real(const std::string& key) const {
  const std::string& s = text(key);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) fail("parameter " + key + "='" + s + "' is not a finite number");
  return v;
}

int64_t Params::integer(const std::string& key) const {
  const std::string& s = text(key);
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0') fail("parameter " + key + "='" + s + "' is not an integer");
  return v;
}

uint64_t Params::seed(const std::string& key) const {
  const std::string& s = text(key);
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || s[0] == '-') fail("parameter " + key + "='" + s + "' is not a non-negative integer");
  return v;
}

bool Params::flag(const std::string& key) const {
  const std::string& s = text(key);
  if (s == "true" || s == "1" || s == "yes") return true;
  if (s == "false" || s == "0" || s == "no") return false;
  fail("parameter " + key + "='" + s + "' is not true/false");
}

const std::string& Params::choice(const std::string& key, const std::vector<std::string>& choices) const {
  const std::string& s = text(key);
  if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
  std::string list;
  for (auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  fail("parameter " + key + "='" + s + "' is not one of " + list);
}

}  // namespace tweedie
