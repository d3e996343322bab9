#pragma once
// b-bit uniform quantizer (QCS-SGM, Meng & Kabashima 2023, ncsn_runner.py:39-61):
//   w = z + σ e,  k = min(⌊|w|/δ⌋, 2^{b−1} − 1),  y = sign(w) (k + ½) δ   (sign(0) = +1),
// a mid-rise quantizer with 2^b levels ±δ/2, ±3δ/2, ..., saturating at the outermost one.
// The bin of y is [y − δ/2, y + δ/2], open to ±∞ at the saturated ends, so
//   −log p(y | z) = −log(Φ((u − z)/σ) − Φ((l − z)/σ))     (interval likelihood)
// evaluated with log_diff_ndtr. δ defaults to QCS-SGM's data-driven (max z − min z)/2^b, fixed
// at the first simulation and recorded in spec().
#include <memory>
#include <optional>

#include "tweedie/channel/channel.h"

namespace tweedie::channel {

struct QuantizerOptions {
  int64_t bits = 3;              // QCS-SGM experiments: 1, 2, 3 bits
  double sigma = 1e-3;           // QCS-SGM: noise variance 1e-6
  std::optional<double> delta;   // bin width; default from the first simulated z
};

std::shared_ptr<Channel> make_quantizer(const QuantizerOptions& o);

}  // namespace tweedie::channel
