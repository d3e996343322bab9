#include "tweedie/problem.h"

#include <filesystem>
#include <limits>
#include <type_traits>

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/plugin.h"
#include "tweedie/core/runtime.h"
#include "tweedie/core/seed.h"
#include "tweedie/core/version.h"
#include "tweedie/io/npy.h"
#include "tweedie/op/registry.h"

namespace tweedie {

Problem make_problem(const std::string& op_spec, const std::string& channel_spec, const op::Shape& x_shape,
                     uint64_t seed, const std::string& op_what, const std::string& channel_what) {
  Problem p;
  p.seed = seed;
  p.noise_seed = derive_seed(seed, 1);
  p.op = op::make_operator(op_spec, x_shape, seed, op_what);
  p.channel = channel::make_channel(channel_spec, derive_seed(seed, 2), channel_what);
  return p;
}

torch::Tensor simulate(const Problem& problem, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  problem.op->check_input(x);
  auto gen = make_generator(problem.noise_seed);
  return problem.channel->simulate(problem.op->apply(x), gen);
}

nlohmann::json problem_to_json(const Problem& p, const nlohmann::json& extra) {
  nlohmann::json j;
  j["format"] = "tweedie-problem";
  j["format_version"] = kProblemFormatVersion;
  j["tweedie_version"] = TWEEDIE_VERSION;
  j["tweedie_git"] = TWEEDIE_GIT_HASH;
  // A plugin's parts are rebuilt only where the plugin is loaded again: say which were.
  if (const auto plugins = loaded_plugins(); !plugins.empty()) j["plugins"] = plugins;
  j["operator"] = {{"spec", p.op->spec()},
                   {"linear", p.op->linear()},
                   {"describe", p.op->describe()}};
  j["channel"] = {{"spec", p.channel->spec()}};
  j["x_shape"] = p.op->in_shape();
  j["y_shape"] = p.op->out_shape();
  j["y_dtype"] = p.op->complex_output() ? "complex64" : "float32";
  j["seed"] = p.seed;
  j["noise_seed"] = p.noise_seed;
  for (auto& [k, v] : extra.items()) j[k] = v;
  return j;
}

bool version_newer(const std::string& a, const std::string& b) {
  auto parts = [](const std::string& v) {
    std::vector<long> out;
    size_t start = 0;
    while (start <= v.size()) {
      size_t dot = v.find('.', start);
      std::string piece = v.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      size_t used = 0;
      long n = 0;
      try {
        n = std::stol(piece, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || n < 0) throw InputError("version '" + v + "' is not MAJOR.MINOR.PATCH");
      out.push_back(n);
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    out.resize(std::max<size_t>(out.size(), 3), 0);
    return out;
  };
  auto pa = parts(a), pb = parts(b);
  size_t n = std::max(pa.size(), pb.size());
  pa.resize(n, 0), pb.resize(n, 0);
  return pa > pb;
}

namespace {

// Whether `v` is an integer that fits I. nlohmann's get<I>() casts a float with a plain
// static_cast (undefined behaviour out of range: "x_shape": [1e42], found by fuzzing) and
// wraps integers that do not fit, so integer keys are checked before get().
template <class I>
bool integer_fits(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<I>::max());
  if (!v.is_number_integer()) return false;
  const int64_t x = v.get<int64_t>();
  if (x < 0) return std::is_signed_v<I> && x >= static_cast<int64_t>(std::numeric_limits<I>::min());
  return static_cast<uint64_t>(x) <= static_cast<uint64_t>(std::numeric_limits<I>::max());
}

template <class T>
T get(const nlohmann::json& j, const std::string& key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) throw InputError(where + ": missing key '" + key + "'");
  const nlohmann::json& v = j.at(key);
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!integer_fits<T>(v))
      throw InputError(where + ": key '" + key + "' must be an integer in [" +
                       std::to_string(std::numeric_limits<T>::min()) + ", " +
                       std::to_string(std::numeric_limits<T>::max()) + "]");
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    if (v.is_array())
      for (const auto& item : v)
        if (!integer_fits<int64_t>(item))
          throw InputError(where + ": key '" + key + "' must be an array of 64-bit integers");
  }
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw json_input_error(where, e);  // "<file>: key /x_shape/1: type must be number, but is string"
  }
}

}  // namespace

Problem problem_from_json(const nlohmann::json& j, const std::string& where) {
  if (get<std::string>(j, "format", where) != "tweedie-problem")
    throw InputError(where + ": not a tweedie problem file (format is not 'tweedie-problem')");
  int format = get<int>(j, "format_version", where);
  std::string version = get<std::string>(j, "tweedie_version", where);
  if (format > kProblemFormatVersion || version_newer(version, TWEEDIE_VERSION))
    throw InputError(where + ": written by tweedie " + version + " (format " + std::to_string(format) +
                     "), newer than this tweedie " TWEEDIE_VERSION " (format " +
                     std::to_string(kProblemFormatVersion) + "); upgrade tweedie to read it");
  Problem p;
  p.seed = get<uint64_t>(j, "seed", where);
  p.noise_seed = get<uint64_t>(j, "noise_seed", where);
  auto x_shape = get<std::vector<int64_t>>(j, "x_shape", where);
  auto op_spec = get<std::string>(get<nlohmann::json>(j, "operator", where), "spec", where + " operator");
  auto ch_spec = get<std::string>(get<nlohmann::json>(j, "channel", where), "spec", where + " channel");
  // The factories' own checks ("operator srdct: m=0 must be ...", "mri: accel ...") do not know
  // the file; spec and shape errors already name it (`where`). Each message names it once.
  auto naming_file = [&](const InputError& e) {
    const std::string what = e.what();
    return InputError(what.rfind(where, 0) == 0 ? what : where + ": " + what);
  };
  try {
    p.op = op::make_operator(op_spec, x_shape, p.seed, where + " operator");
    p.channel = channel::make_channel(ch_spec, derive_seed(p.seed, 2), where + " channel");
  } catch (const InputError& e) {
    throw naming_file(e);
  }
  auto y_shape = get<std::vector<int64_t>>(j, "y_shape", where);
  if (y_shape != p.op->out_shape())
    throw InputError(where + ": y_shape " + op::shape_text(y_shape) + " differs from the rebuilt operator's " +
                     op::shape_text(p.op->out_shape()));
  return p;
}

LoadedProblem load_problem(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string json_path = fs::is_directory(path, ec) ? (fs::path(path) / "problem.json").string() : path;
  LoadedProblem lp;
  lp.dir = fs::path(json_path).parent_path().string();
  lp.json = read_json_file(json_path);
  std::string y_name;
  try {
    lp.problem = problem_from_json(lp.json, json_path);
    y_name = lp.json.value("y_file", std::string("y.npy"));
  } catch (const nlohmann::json::exception& e) {
    throw json_input_error(json_path, e);
  }
  std::string y_path = (fs::path(lp.dir) / y_name).string();
  torch::Tensor y = io::read_npy(y_path);
  auto& op = *lp.problem.op;
  if (op.complex_output() != y.is_complex())
    throw InputError(y_path + ": " + (y.is_complex() ? "complex" : "real") + " measurements, but " + op.name() +
                     " gives " + (op.complex_output() ? "complex" : "real") + " ones");
  if (!y.is_complex()) y = y.to(torch::kFloat32);
  else y = y.to(torch::kComplexFloat);
  try {
    op.check_output(y);
  } catch (const InputError& e) {
    throw InputError(y_path + ": " + e.what());
  }
  try {
    lp.problem.channel->validate(y);
  } catch (const InputError& e) {
    throw InputError(y_path + ": " + e.what());
  }
  lp.y = y;
  return lp;
}

}  // namespace tweedie
