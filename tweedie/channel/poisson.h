#pragma once
// Photon counts: y ~ Poisson(λ), λ = gain·(z + offset) (clamped below at a tiny floor), so
//   −log p(y | z) = λ − y log λ + log Γ(y + 1).
// For images in [-1, 1], gain = P/2 and offset = 1 give λ ∈ [0, P] (peak P photons).
#include <memory>

#include "tweedie/channel/channel.h"

namespace tweedie::channel {

struct PoissonOptions {
  double gain = 1.0;
  double offset = 0.0;
};

std::shared_ptr<Channel> make_poisson(const PoissonOptions& o);

}  // namespace tweedie::channel
