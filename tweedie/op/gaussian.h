#pragma once
// Gaussian compressed sensing: y = A x with i.i.d. Gaussian A ∈ R^{M×N}, x flattened per item.
//
// A is defined by (M, N, seed, variance) alone: row i holds N standard normals from a
// counter-based generator keyed by (seed, i) (SplitMix64 words, Box–Muller in float64, rounded
// to float32; gaussian.cpp spells it out), times the scale 1/√M or 1. Counter-based rather than
// a torch::Generator stream because rows must be regenerable in any order and in parallel, and
// because CPU torch generators cost ~100 ns per normal (minutes per product at 3×256×256).
// Both implementations below generate entries with the same generator, so they hold the
// identical A for the same seed, whatever the block size, thread count or device:
//   dense        stores A (M·N floats);
//   matrix-free  regenerates A on every apply/adjoint. On the CPU (float32/float64) it fuses
//                generation and product over cache-sized pieces of rows, memory O(N) per
//                thread, and sums in a fixed order, so its products are bit-identical for any
//                thread count (and do not depend on block_rows); elsewhere it regenerates
//                blocks of block_rows rows and multiplies them on the input's device.
#include <memory>
#include <string>
#include <vector>

#include "tweedie/op/operator.h"

namespace tweedie::op {

struct GaussianOptions {
  int64_t m = 0;
  // Entry variance. 1/M: Diff-OneBit §IV and QCS-SGM (A_ij ~ N(0, 1/M), seed 001 "Measurement
  // tasks"); 1: SIM-DMIS (A_ij ~ N(0, 1), seed 000 §3, with the estimate Aᵀy/M).
  bool unit_variance = false;
  uint64_t seed = 0;
  enum class Storage { kAuto, kDense, kMatrixFree } storage = Storage::kAuto;
  // kAuto stores A when it takes at most this many bytes (float32), else goes matrix-free.
  int64_t dense_limit_bytes = int64_t{256} << 20;
  // Matrix-free working memory for one block of rows (float32 rows + the block product).
  int64_t block_bytes = int64_t{24} << 20;
  // Rows per block off the CPU; 0 = as many as fit in block_bytes. Recorded in the spec: there
  // the products' rounding depends on it, and a rebuilt operator must give identical results.
  int64_t block_rows = 0;
};

std::shared_ptr<Operator> make_gaussian(Shape in, const GaussianOptions& o);

// Rows [r0, r1) of A as float32 [r1 - r0, N], on the CPU (the definition both storages share).
// Uses the fastest generator path this machine runs (vectorised where the CPU and libmvec allow).
torch::Tensor gaussian_rows(const GaussianOptions& o, int64_t N, int64_t r0, int64_t r1);
// The generator paths this machine runs, fastest first: some of "avx512", "avx2", then "scalar"
// (the definition in scalar code). Every path gives the same bits; gaussian_rows_with() runs a
// named one (the tests compare them; an unknown or unavailable name is an error).
std::vector<std::string> gaussian_kernels();
torch::Tensor gaussian_rows_with(const std::string& kernel, const GaussianOptions& o, int64_t N, int64_t r0,
                                 int64_t r1);

}  // namespace tweedie::op
