#pragma once
// A Problem is an operator and a channel: everything that turns an image into measurements.
// problem.json describes one completely — canonical operator and channel specs (every random
// part pinned by its seed), shapes, seeds and the tweedie version — so y.npy + problem.json
// rebuild the identical A anywhere:
//
//   {"format": "tweedie-problem", "format_version": 1, "tweedie_version": "0.1.0",
//    "operator": {"spec": "gaussian:m=64,var=1/m,seed=0,impl=dense", ...},
//    "channel": {"spec": "sign:sigma=0.5"}, "x_shape": [1, 32, 32], "y_shape": [64],
//    "y_dtype": "float32", "batch": 4, "seed": 0, "noise_seed": ..., "y_file": "y.npy", ...}
//
// A file from a newer format or a newer tweedie is refused (InputError): its operators may be
// defined differently, so bit-identity could not be promised.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "tweedie/channel/channel.h"
#include "tweedie/op/operator.h"

namespace tweedie {

inline constexpr int kProblemFormatVersion = 1;

struct Problem {
  std::shared_ptr<op::Operator> op;
  std::shared_ptr<channel::Channel> channel;
  uint64_t seed = 0;        // the seed the problem was made with (the operator's default seed)
  uint64_t noise_seed = 0;  // seed of the generator simulate() draws from
};

// Builds both parts for items of shape x_shape (no batch dimension). The noise seed is derived
// from `seed` (stream 1), so operator and noise never share random numbers. Errors name the specs
// as `op_what` and `channel_what` ("--op" in the CLI, "op" in Python).
Problem make_problem(const std::string& op_spec, const std::string& channel_spec, const op::Shape& x_shape,
                     uint64_t seed, const std::string& op_what = "--op", const std::string& channel_what = "--channel");

// y = channel(A x) with a generator seeded by problem.noise_seed.
torch::Tensor simulate(const Problem& problem, const torch::Tensor& x);

// problem.json content; `extra` keys (input names, y file, hashes) are merged in.
nlohmann::json problem_to_json(const Problem& problem, const nlohmann::json& extra = nlohmann::json::object());
// Rebuilds a problem; InputError (naming `where`) on missing keys, bad specs or a future version.
Problem problem_from_json(const nlohmann::json& j, const std::string& where);

struct LoadedProblem {
  Problem problem;
  torch::Tensor y;       // [B, y_shape...], validated by the channel
  nlohmann::json json;
  std::string dir;
};

// Reads DIR/problem.json (or the given .json) and the y file beside it, and checks y: its
// shape and dtype against the operator, then the channel's validate() (finite, ±1, ...).
LoadedProblem load_problem(const std::string& path);

// "1.2.3" > "1.2.0"? Missing parts count as 0; InputError on a non-numeric version.
bool version_newer(const std::string& a, const std::string& b);

}  // namespace tweedie
