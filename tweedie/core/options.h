#pragma once
// Options declared once. A solver's (or sampler's) options struct lists each field a single time,
// in a table of (name, member, help, check); the table then yields
//  * the registry's parameter list, with each default read off a default-constructed struct,
//  * parsing of validated Params into the struct (with the checks),
//  * the resolved options as JSON for reports,
// so a field cannot be parsed under one name and reported under another, and describe → --set →
// describe is the identity (SolverOptions.DescribeThenSetThenDescribeIsIdentity in
// tests/unit/solve_seed002_test.cpp checks it for every solver).
//
//   struct RedDiffOptions {
//     int64_t steps = 50;
//     double lr = 0.1;
//     static const OptionTable<RedDiffOptions>& table();
//   };
//   const OptionTable<RedDiffOptions>& RedDiffOptions::table() {
//     static const OptionTable<RedDiffOptions> t{
//         {"steps", &RedDiffOptions::steps, "outer steps = NFE", at_least(1)},
//         {"lr", &RedDiffOptions::lr, "Adam learning rate", positive()}};
//     return t;
//   }
//
// Field kinds: int64_t, double, bool, std::string, std::string restricted to choices, and an
// enum named by words (Choice<E>: {{"linear", Weight::kLinear}, ...}; an unknown word is one line
// listing the words, and code compares enums, not strings); also
//  * an optional string (Unset<O>): no default in the registry (kUnset), "" in the struct when not
//    given, and reported as given or as what the run resolves it to (a default respacing);
//  * a number that also takes one word (Keyword) standing for a value its check refuses
//    (sigma=channel: −1 in the struct, "the channel's noise σ").
// Cross-field rules (σ_min < σ_max) go in a `Rule` function given to the table.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "tweedie/core/registry.h"

namespace tweedie {

// A check on one value: returns "" when valid, else what is wrong ("must be positive, got -1"; numbers
// as show_number writes them).
template <class T>
using OptionCheck = std::function<std::string(const T&)>;

inline OptionCheck<double> positive() {
  return [](const double& v) { return v > 0 ? "" : "must be positive, got " + show_number(v); };
}
inline OptionCheck<double> non_negative() {
  return [](const double& v) { return v >= 0 ? "" : "must be >= 0, got " + show_number(v); };
}
inline OptionCheck<double> in_range(double lo, double hi) {
  return [lo, hi](const double& v) {
    return v >= lo && v <= hi ? ""
                              : "must be in [" + show_number(lo) + ", " + show_number(hi) + "], got " +
                                    show_number(v);
  };
}
inline OptionCheck<double> above_up_to(double lo, double hi) {
  return [lo, hi](const double& v) {
    return v > lo && v <= hi ? ""
                             : "must be in (" + show_number(lo) + ", " + show_number(hi) + "], got " +
                                   show_number(v);
  };
}
inline OptionCheck<int64_t> at_least(int64_t lo) {
  return [lo](const int64_t& v) {
    return v >= lo ? "" : "must be at least " + std::to_string(lo) + ", got " + std::to_string(v);
  };
}
inline OptionCheck<int64_t> int_range(int64_t lo, int64_t hi) {
  return [lo, hi](const int64_t& v) {
    return v >= lo && v <= hi ? ""
                              : "must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                                    std::to_string(v);
  };
}

// An optional string field: kUnset in the registry (given, or not at all), "" in the struct when
// not given. The report shows `resolved(o)` when it is unset (what the run uses instead, which
// must parse back to the same run: DPS's timesteps = its default respacing), or "" without one.
template <class O>
struct Unset {
  std::function<std::string(const O&)> resolved;
};

// A word a number field also takes, standing for `value` (one its check would refuse); the
// registry's default and the report show the word wherever the field holds `value`.
struct Keyword {
  std::string word;
  double value;
};

// The words an enum field takes, each with its value (the first listed names a value first).
template <class E>
using Choice = std::vector<std::pair<std::string, E>>;

template <class O>
class OptionTable {
 public:
  // An enum member, type-erased: set by the index of its word, read as that index.
  struct EnumMember {
    std::function<void(O&, size_t)> set;
    std::function<size_t(const O&)> index;
  };
  // One field: its name, the member it fills, a one-line help, an optional check. A string or
  // enum field with `choices` only takes one of them.
  struct Field {
    std::string name;
    std::variant<int64_t O::*, double O::*, bool O::*, std::string O::*, EnumMember> member;
    std::string help;
    std::variant<std::monostate, OptionCheck<int64_t>, OptionCheck<double>> check;
    std::vector<std::string> choices;
    bool optional = false;                            // an Unset string field
    std::function<std::string(const O&)> resolved;   // what an unset one reports (may be empty)
    std::optional<Keyword> keyword;                   // a number field's word

    Field(std::string n, int64_t O::*m, std::string h, OptionCheck<int64_t> c = {})
        : name(std::move(n)), member(m), help(std::move(h)) {
      if (c) check = std::move(c);
    }
    Field(std::string n, double O::*m, std::string h, OptionCheck<double> c = {})
        : name(std::move(n)), member(m), help(std::move(h)) {
      if (c) check = std::move(c);
    }
    Field(std::string n, double O::*m, std::string h, Keyword k, OptionCheck<double> c = {})
        : Field(std::move(n), m, std::move(h), std::move(c)) {
      keyword = std::move(k);
    }
    Field(std::string n, bool O::*m, std::string h) : name(std::move(n)), member(m), help(std::move(h)) {}
    Field(std::string n, std::string O::*m, std::string h, std::vector<std::string> one_of = {})
        : name(std::move(n)), member(m), help(std::move(h)), choices(std::move(one_of)) {}
    Field(std::string n, std::string O::*m, std::string h, Unset<O> u)
        : name(std::move(n)), member(m), help(std::move(h)), optional(true), resolved(std::move(u.resolved)) {}
    // E comes from the words (the member may be a base struct's: a pointer to it converts).
    template <class E, class = std::enable_if_t<std::is_enum_v<E>>>
    Field(std::string n, typename Choice<E>::value_type::second_type O::*m, std::string h, Choice<E> words)
        : name(std::move(n)), help(std::move(h)) {
      for (const auto& w : words) choices.push_back(w.first);
      member = EnumMember{[m, words](O& o, size_t i) { o.*m = words[i].second; },
                          [m, words](const O& o) {
                            for (size_t i = 0; i < words.size(); ++i)
                              if (words[i].second == o.*m) return i;
                            throw InternalError("an enum option holds a value without a word");
                          }};
    }
  };
  // Cross-field rule over the parsed struct: "" when valid, else the message.
  using Rule = std::function<std::string(const O&)>;

  OptionTable(std::vector<Field> fields, Rule rule = {}) : fields_(std::move(fields)), rule_(std::move(rule)) {}
  // Fields shared by several option structs (a base struct's members) are declared in a function
  // returning std::vector<Field>, and joined: OptionTable<O>(join(mine, shared_fields<O>())).
  static std::vector<Field> join(std::vector<Field> a, const std::vector<Field>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  // The registry's parameter list; defaults are a default-constructed O's values.
  std::vector<ParamSpec> params() const {
    const O d{};
    std::vector<ParamSpec> out;
    for (const Field& f : fields_) {
      std::string help = f.help;
      if (!f.choices.empty()) {
        std::string list;
        for (auto& c : f.choices) list += (list.empty() ? "" : " | ") + c;
        help += " (" + list + ")";
      }
      out.push_back({f.name, text_of(d, f), help});
    }
    return out;
  }

  // Parses and checks; InputError "<owner>: <name> <problem>" on the first bad field.
  O parse(const Params& p) const {
    O o{};
    for (const Field& f : fields_) {
      std::visit(
          [&](const auto& m) {
            using T = member_type<std::decay_t<decltype(m)>>;
            if constexpr (std::is_same_v<T, int64_t>) {
              o.*m = p.integer(f.name);
              if (auto* c = std::get_if<OptionCheck<int64_t>>(&f.check)) fail_if(p, f, (*c)(o.*m));
            } else if constexpr (std::is_same_v<T, double>) {
              if (f.keyword && p.text(f.name) == f.keyword->word) {
                o.*m = f.keyword->value;
              } else {
                o.*m = p.real(f.name);
                if (auto* c = std::get_if<OptionCheck<double>>(&f.check)) fail_if(p, f, (*c)(o.*m));
              }
            } else if constexpr (std::is_same_v<T, bool>) {
              o.*m = p.flag(f.name);
            } else if constexpr (std::is_same_v<T, EnumMember>) {
              const std::string& word = p.choice(f.name, f.choices);
              m.set(o, size_t(std::find(f.choices.begin(), f.choices.end(), word) - f.choices.begin()));
            } else if (f.optional) {
              o.*m = p.has(f.name) ? p.text(f.name) : "";
            } else {
              o.*m = f.choices.empty() ? p.text(f.name) : p.choice(f.name, f.choices);
            }
          },
          f.member);
    }
    if (rule_) {
      const std::string why = rule_(o);
      if (!why.empty()) p.fail(why);
    }
    return o;
  }

  nlohmann::json to_json(const O& o) const {
    nlohmann::json j = nlohmann::json::object();
    for (const Field& f : fields_) {
      std::visit(
          [&](const auto& m) {
            using T = member_type<std::decay_t<decltype(m)>>;
            if constexpr (std::is_same_v<T, EnumMember>) {
              j[f.name] = f.choices[m.index(o)];
            } else {
              nlohmann::json v = o.*m;
              if constexpr (std::is_same_v<T, double>) {
                if (f.keyword && o.*m == f.keyword->value) v = f.keyword->word;
              } else if constexpr (std::is_same_v<T, std::string>) {
                if (f.optional && (o.*m).empty() && f.resolved) v = f.resolved(o);
              }
              j[f.name] = std::move(v);
            }
          },
          f.member);
    }
    return j;
  }

 private:
  // The value type of a member pointer T O::*, or EnumMember itself.
  template <class M>
  struct member_of { using type = M; };
  template <class T>
  struct member_of<T O::*> { using type = T; };
  template <class M>
  using member_type = typename member_of<M>::type;

  static void fail_if(const Params& p, const Field& f, const std::string& why) {
    if (!why.empty()) p.fail(f.name + " " + why);
  }
  static std::string text_of(const O& o, const Field& f) {
    return std::visit(
        [&](const auto& m) -> std::string {
          using T = member_type<std::decay_t<decltype(m)>>;
          if constexpr (std::is_same_v<T, EnumMember>) return f.choices[m.index(o)];
          else if constexpr (std::is_same_v<T, int64_t>) return std::to_string(o.*m);
          else if constexpr (std::is_same_v<T, double>)
            return f.keyword && o.*m == f.keyword->value ? f.keyword->word : format_number(o.*m);
          else if constexpr (std::is_same_v<T, bool>) return o.*m ? "true" : "false";
          else return f.optional && (o.*m).empty() ? kUnset : o.*m;
        },
        f.member);
  }

  std::vector<Field> fields_;
  Rule rule_;
};

}  // namespace tweedie
