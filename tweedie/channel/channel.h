#pragma once
// A channel turns z = A x into measurements y (architecture.md, contract 2). It knows nothing of
// A: simulate(z, gen) draws y ~ p(y | z), and nll(z, y) = −log p(y | z) is differentiable in z
// and numerically stable (log Φ through erfcx asymptotics, log-sigmoid, never log(1 − p)).
// A link-agnostic solver (SIM-DMIS) uses only the operator and y and never reads the channel.
//
// Randomness is drawn on the CPU from the given generator and moved to z's device, so a seed
// gives the same y on every device.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "tweedie/core/registry.h"

namespace tweedie::channel {

class Channel {
 public:
  virtual ~Channel() = default;
  virtual std::string name() const = 0;
  // Canonical spec with every parameter resolved: make_channel(spec()) rebuilds this channel.
  virtual std::string spec() const = 0;

  // y ~ p(y | z), same shape as z. `z` is [B, ...] (batch first).
  virtual torch::Tensor simulate(const torch::Tensor& z, torch::Generator& gen) const = 0;
  // −log p(y_i | z_i) elementwise (same shape as y), differentiable in z.
  virtual torch::Tensor nll_elements(const torch::Tensor& z, const torch::Tensor& y) const = 0;
  // Σ_i −log p(y_i | z_i) per batch item: [B].
  torch::Tensor nll(const torch::Tensor& z, const torch::Tensor& y) const;
  // inf over z of −log p(y_i | z) elementwise (same shape as y, real): the NLL of a perfect fit,
  // so nll_elements(z, y) − nll_floor(y) ≥ 0, with 0 at (or, where the infimum is at |z| → ∞,
  // approached by) the best z; twice the difference is the deviance. E.g. log(2πσ²)/2 per real
  // component for gaussian, 0 for sign and logistic. Used where a misfit must vanish at a
  // perfect fit (DPnP's PCS step size).
  virtual torch::Tensor nll_floor(const torch::Tensor& y) const = 0;

  // The scale of z over which p(y | z) changes (σ for noise, the temperature for logistic);
  // the conformance tests probe nll at ±40 of it.
  virtual double scale() const = 0;
  // σ of the Gaussian noise added to z before the link (0 when noiseless): what the
  // SVD-based linear baselines (DDRM, DDNM+) read y = A x + σ n with. Default: scale().
  virtual double noise_std() const { return scale(); }
  // True when y takes discrete values and exp(−nll) is a probability (not a density).
  virtual bool discrete() const { return false; }
  // InputError (one line) unless y is a possible measurement: finite, and e.g. ±1 for 1-bit.
  virtual void validate(const torch::Tensor& y) const;
};

using ChannelFactory = std::function<std::shared_ptr<Channel>(const Params&, uint64_t seed)>;
using ChannelRegistry = Registry<ChannelFactory>;

ChannelRegistry& channel_registry();

// Builds a channel from "name:k=v,...". `seed` seeds fixed random parts (dither) when the spec
// gives none. `what` names the source in errors ("--channel").
std::shared_ptr<Channel> make_channel(const std::string& spec, uint64_t seed = 0, const std::string& what = "--channel");

// Standard normal noise shaped like z (real, or complex with N(0, 1) real and imaginary parts),
// drawn on the CPU from gen, in z's dtype and device.
torch::Tensor noise_like(const torch::Tensor& z, torch::Generator& gen);
// Uniform [0, 1) shaped like z, as noise_like.
torch::Tensor uniform_like(const torch::Tensor& z, torch::Generator& gen);

}  // namespace tweedie::channel
