#pragma once
// Name -> factory tables for operators, channels (and later solvers). The CLI, problem files and
// the conformance tests all build objects through them, so enrolling one entry makes a new
// operator usable everywhere and gets it tested.
//
// Spec strings: NAME[:KEY=VALUE[,KEY=VALUE...]], e.g. "gaussian:m=392", "sign:sigma=0.5".
// Unknown names, unknown or missing parameters and unparsable values are InputErrors, one line,
// naming the entry and the parameter.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tweedie/core/error.h"

namespace tweedie {

// A parameter an entry accepts. `fallback` is the default as text; kRequired marks a parameter
// that must be given, kUnset one that is optional without a default (the factory decides).
struct ParamSpec {
  std::string name;
  std::string fallback;
  std::string help;
};
inline const std::string kRequired = "<required>";
inline const std::string kUnset = "<unset>";

// "name:k=v,k=v" split into its parts (no validation against an entry). `what` names the
// flag or file in error messages ("--op").
struct Spec {
  std::string name;
  std::vector<std::pair<std::string, std::string>> args;
};
Spec parse_spec(const std::string& text, const std::string& what);

// Splits `text` at top-level occurrences of `sep` (all occurrences: specs do not nest).
std::vector<std::string> split_spec(const std::string& text, char sep);

// Shortest text that parses back to exactly `v` ("0.5", "3", "0.10000000000000001"; 80 is
// "8e+01"). It names experiment cells, so it must not change.
std::string format_number(double v);
// A number for people to read in messages: %g ("80", "0.002", "1e-06").
std::string show_number(double v);

// Parameters of one entry after validation: every accepted key has a value (given or default).
class Params {
 public:
  Params(std::string owner, std::map<std::string, std::string> values, std::vector<std::string> given);

  bool has(const std::string& key) const;    // given or defaulted (false for unset optionals)
  bool given(const std::string& key) const;  // written by the user
  const std::string& text(const std::string& key) const;
  double real(const std::string& key) const;           // finite number
  int64_t integer(const std::string& key) const;
  uint64_t seed(const std::string& key) const;         // non-negative integer
  bool flag(const std::string& key) const;             // true/false/1/0/yes/no
  // `text(key)` restricted to `choices`; InputError listing them otherwise.
  const std::string& choice(const std::string& key, const std::vector<std::string>& choices) const;

  const std::string& owner() const { return owner_; }
  // An InputError "<owner>: <message>".
  [[noreturn]] void fail(const std::string& message) const;

 private:
  std::string owner_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> given_;
};

template <class Factory>
class Registry {
 public:
  struct Entry {
    std::string name;
    std::string help;                   // one line
    std::vector<ParamSpec> params;
    Factory make;
    std::vector<std::string> examples;  // small specs the conformance tests build
  };

  explicit Registry(std::string kind) : kind_(std::move(kind)) {}

  void add(Entry e) {
    if (index_.count(e.name)) throw InternalError(kind_ + " '" + e.name + "' enrolled twice");
    index_[e.name] = entries_.size();
    entries_.push_back(std::make_unique<Entry>(std::move(e)));
  }

  bool has(const std::string& name) const { return index_.count(name) > 0; }

  const Entry& find(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw InputError("unknown " + kind_ + " '" + name + "' (known: " + names() + ")");
    return *entries_[it->second];
  }

  // Validates `spec` against its entry: unknown keys, repeated keys and missing required ones.
  Params resolve(const Spec& spec) const {
    const Entry& e = find(spec.name);
    std::map<std::string, std::string> values;
    std::vector<std::string> given;
    for (auto& [k, v] : spec.args) {
      bool known = false;
      for (auto& p : e.params) known = known || p.name == k;
      if (!known) throw InputError(kind_ + " " + e.name + ": unknown parameter '" + k + "' (" + param_list(e) + ")");
      if (values.count(k)) throw InputError(kind_ + " " + e.name + ": parameter '" + k + "' given twice");
      values[k] = v;
      given.push_back(k);
    }
    for (auto& p : e.params) {
      if (values.count(p.name)) continue;
      if (p.fallback == kRequired)
        throw InputError(kind_ + " " + e.name + ": missing parameter '" + p.name + "' (" + p.help + ")");
      if (p.fallback != kUnset) values[p.name] = p.fallback;
    }
    return Params(kind_ + " " + e.name, std::move(values), std::move(given));
  }

  std::vector<const Entry*> entries() const {
    std::vector<const Entry*> out;
    for (auto& e : entries_) out.push_back(e.get());
    return out;
  }

  std::string names() const {
    std::string s;
    for (auto& e : entries_) s += (s.empty() ? "" : ", ") + e->name;
    return s;
  }

  // A help table: one line per entry, then its parameters with defaults.
  std::string help() const {
    std::string s;
    for (auto& e : entries_) {
      s += e->name + "  " + e->help + "\n";
      for (auto& p : e->params)
        s += "    " + p.name + "=" + (p.fallback == kUnset ? "" : p.fallback) + "  " + p.help + "\n";
    }
    return s;
  }

  const std::string& kind() const { return kind_; }

 private:
  static std::string param_list(const Entry& e) {
    if (e.params.empty()) return "it takes no parameters";
    std::string s = "known:";
    for (auto& p : e.params) s += " " + p.name;
    return s;
  }

  std::string kind_;
  std::vector<std::unique_ptr<Entry>> entries_;
  std::map<std::string, size_t> index_;
};

}  // namespace tweedie
