#pragma once
// Additive Gaussian noise after a pointwise link f:  y = f(z) + σ n,  n ~ N(0, I).
//   gaussian  f(z) = z (complex z gets N(0, σ²) real and imaginary parts: MRI k-space)
//   link      single-index models (seed 000): cubic z³ (SIM-DMIS's second link), tanh, relu,
//             square, abs, sign. The solver of a single-index model is told nothing of f: only
//             the simulation and the oracle NLL use it.
// −log p(y | z) = |y − f(z)|²/(2σ²) + log(2πσ²)/2 per real component.
#include <memory>
#include <string>

#include "tweedie/channel/channel.h"

namespace tweedie::channel {

enum class Link { kIdentity, kCubic, kTanh, kRelu, kSquare, kAbs, kSign };

struct GaussianOptions {
  double sigma = 0.05;  // DPS/DAPS measurement noise on [-1, 1] images; SIM-DMIS σ = 0.05
  Link link = Link::kIdentity;
};

std::shared_ptr<Channel> make_gaussian(const GaussianOptions& o);
torch::Tensor apply_link(Link link, const torch::Tensor& z);
Link parse_link(const std::string& name);  // InputError listing the links otherwise

}  // namespace tweedie::channel
