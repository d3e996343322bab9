#pragma once
// One-bit channels, y ∈ {−1, +1}.
//
// sign (1-bit compressed sensing, Diff-OneBit seed 001 eq. 14–24):
//   y = sign(z + d + σ e), e ~ N(0, 1), sign(0) = +1, d an optional known uniform dither
//   d ~ U[−τ, τ] (fixed per measurement position, drawn from the dither seed; it is part of the
//   sensing hardware, so the likelihood knows it). P(y | z) = Φ(y (z + d)/σ) (eq. 21), so
//   −log p(y | z) = −log Φ(y (z + d)/σ)  (eq. 24, the probit likelihood).
// logistic (Diff-OneBit eq. 28–32): P(y = +1 | z) = sigmoid(z/T), so
//   −log p(y | z) = −log sigmoid(y z / T) = softplus(−y z / T).
#include <memory>

#include "tweedie/channel/channel.h"

namespace tweedie::channel {

struct SignOptions {
  double sigma = 0.5;    // Diff-OneBit experiments: σ ∈ {0.5, 1.0}; SIM-DMIS: 0.05
  double dither = 0.0;   // τ; 0 = no dither
  uint64_t dither_seed = 0;
};

struct LogisticOptions {
  double temperature = 1.0;  // Diff-OneBit eq. 28: T = 1; DPnP's dithered pixels: T = 0.4
};

std::shared_ptr<Channel> make_sign(const SignOptions& o);
std::shared_ptr<Channel> make_logistic(const LogisticOptions& o);

}  // namespace tweedie::channel
