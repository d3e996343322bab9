#pragma once
// Structured random sensing: the subsampled randomized Hadamard transform (SRHT),
//   A = c S H D P,
// with P zero-padding x (flattened, N entries) to n = 2^⌈log₂N⌉, D = diag of n random signs,
// H the orthonormal Walsh–Hadamard transform (fast, O(n log n)), S the selection of M of its
// n rows drawn without replacement, and c = √(n/M) so that every entry of A is ±1/√M like the
// N(0, 1/M) Gaussian matrix (E AᵀA = I). var=1 gives c = √n (entries ±1). Memory O(n).
// D and S are drawn from a generator seeded with `seed` (signs first, then the permutation).
#include <memory>

#include "tweedie/op/operator.h"

namespace tweedie::op {

struct SrhtOptions {
  int64_t m = 0;
  bool unit_variance = false;  // as GaussianOptions: entries ±1/√M (default) or ±1
  uint64_t seed = 0;
};

std::shared_ptr<Operator> make_srht(Shape in, const SrhtOptions& o);

// Orthonormal fast Walsh–Hadamard transform over the last dimension (a power of two);
// differentiable. On CPU float/double a cache-blocked in-place kernel; elsewhere tensor ops.
torch::Tensor fwht(const torch::Tensor& x);
// The same transform by one tensor-op pass per level (any device): the test's reference.
torch::Tensor fwht_reference(const torch::Tensor& x);

}  // namespace tweedie::op
