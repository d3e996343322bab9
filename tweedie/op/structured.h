#pragma once
// Structured random sensing: the subsampled randomized Hadamard transform (SRHT),
//   A = c S H D P,
// with P zero-padding x (flattened, N entries) to n = 2^⌈log₂N⌉, D = diag of n random signs,
// H the orthonormal Walsh–Hadamard transform (fast, O(n log n)), S the selection of M of its
// n rows drawn without replacement, and c = √(n/M) so that every entry of A is ±1/√M like the
// N(0, 1/M) Gaussian matrix (E AᵀA = I). var=1 gives c = √n (entries ±1). Memory O(n).
// D and S are drawn from a generator seeded with `seed` (signs first, then the permutation).
#include <memory>
#include <string>
#include <vector>

#include "tweedie/op/operator.h"

namespace tweedie::op {

struct SrhtOptions {
  int64_t m = 0;
  bool unit_variance = false;  // as GaussianOptions: entries ±1/√M (default) or ±1
  uint64_t seed = 0;
};

std::shared_ptr<Operator> make_srht(Shape in, const SrhtOptions& o);

// The subsampled randomized DCT: A = c S C D, with D = diag of N random signs, C the
// orthonormal DCT-II of the flattened image (N entries, no padding: any N), S the selection of
// M of its N rows without replacement, c = √(N/M): rows of squared norm N/M and E AᵀA = I, as
// the N(0, 1/M) Gaussian and the SRHT (var=1: c = √N, rows of squared norm N, as N(0, 1)).
// The DCT runs as one complex FFT of length N (Makhoul's reordering), on any device, through
// LibTorch's FFT (pocketfft on the CPU); autograd differentiates it.
// D and S are drawn from a generator seeded with `seed` (signs first, then the permutation).
std::shared_ptr<Operator> make_srdct(Shape in, const SrhtOptions& o);

// Orthonormal DCT-II over the last dimension (any length) and its inverse, the DCT-III;
// differentiable. X_k = s_k Σ_n x_n cos(π(2n+1)k/(2N)), s_0 = √(1/N), s_k = √(2/N).
torch::Tensor dct(const torch::Tensor& x);
torch::Tensor idct(const torch::Tensor& X);

// Orthonormal fast Walsh–Hadamard transform over the last dimension (a power of two);
// differentiable. On CPU float/double a cache-blocked in-place kernel; elsewhere tensor ops.
torch::Tensor fwht(const torch::Tensor& x);
// The float32 builds of the fast kernel this CPU runs, fastest first: "avx512" where the CPU
// has it, then "vector" (8-lane loops compiled for AVX2 and for the baseline ISA, picked at
// load time); fwht() runs the first. Every build gives the same bits. fwht_with() runs a named
// one on float32 CPU input, without autograd (the tests compare them); an unknown or
// unavailable name is an error.
std::vector<std::string> fwht_kernels();
torch::Tensor fwht_with(const std::string& kernel, const torch::Tensor& x);
// The same transform by one tensor-op pass per level (any device): the test's reference.
torch::Tensor fwht_reference(const torch::Tensor& x);

}  // namespace tweedie::op
