#pragma once
// Gaussian compressed sensing: y = A x with i.i.d. Gaussian A ∈ R^{M×N}, x flattened per item.
//
// A is defined by (M, N, seed, variance) alone: row i holds N standard normals from a
// counter-based generator keyed by (seed, i) (SplitMix64 words, Box–Muller in float64, rounded
// to float32; gaussian.cpp spells it out), times the scale 1/√M or 1. Counter-based rather than
// a torch::Generator stream because rows must be regenerable in any order and in parallel, and
// because CPU torch generators cost ~100 ns per normal (minutes per product at 3×256×256).
// Both implementations below generate rows with gaussian_rows(), so they hold the identical A
// for the same seed, whatever the block size, thread count or device:
//   dense        stores A (M·N floats);
//   matrix-free  regenerates row blocks on every apply/adjoint; memory O(N + block).
#include <memory>

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
  // Rows per block; 0 = as many as fit in block_bytes. Recorded in the spec: the products'
  // rounding depends on it, and a rebuilt operator must give identical results.
  int64_t block_rows = 0;
};

std::shared_ptr<Operator> make_gaussian(Shape in, const GaussianOptions& o);

// Rows [r0, r1) of A as float32 [r1 - r0, N], on the CPU (the definition both storages share).
torch::Tensor gaussian_rows(const GaussianOptions& o, int64_t N, int64_t r0, int64_t r1);

}  // namespace tweedie::op
