#pragma once
// Stable log-probabilities of the standard normal, differentiable (autograd), finite values and
// gradients far into the tails (|x| ≥ 40 in float32 and float64).
#include <torch/torch.h>

namespace tweedie::channel {

// log Φ(x). For x < −1: log(erfcx(−x/√2)/2) − x²/2 (erfcx(t) = e^{t²} erfc(t) stays O(1/t),
// so nothing underflows); otherwise log1p(−erfc(x/√2)/2). This is torch.special.log_ndtr; its
// derivative φ(x)/Φ(x) = exp(−x²/2 − log Φ(x))/√(2π) is the inverse Mills ratio, finite for all x.
torch::Tensor log_ndtr(const torch::Tensor& x);

// log(Φ(b) − Φ(a)) for a < b, either end possibly infinite (a = −∞ or b = +∞): the interval
// likelihood of a quantizer bin. Subtracts in the tail where both probabilities are small:
//   a ≥ 0:  log Φ(−a) + log(1 − exp(log Φ(−b) − log Φ(−a)))
//   b ≤ 0:  log Φ(b)  + log(1 − exp(log Φ(a)  − log Φ(b)))
//   else:   log(1 − Φ(a) − Φ(−b))
// Every branch is evaluated on inputs made safe for it, so unused branches contribute no NaN
// to the gradient.
torch::Tensor log_diff_ndtr(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace tweedie::channel
