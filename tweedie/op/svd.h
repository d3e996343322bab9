#pragma once
// Ready-made SVD views for the structures that make an SVD cheap (see SvdView in operator.h).
#include <functional>

#include "tweedie/op/operator.h"

namespace tweedie::op {

// From a stored matrix A [M, N] (M ≤ N): full SVD computed once in float64. Costs O(N²) memory,
// so operators offer it only for small N.
std::shared_ptr<const SvdView> dense_svd(const torch::Tensor& A, Shape in, Shape out);

// A x = Wh X Whᵀ per channel, for x [C, H, W], Wh [h, H], Ww [w, W], h ≤ H, w ≤ W: the SVD is
// the Kronecker product of the two small SVDs, s_ij = sh_i sw_j (separable blur, resizing).
std::shared_ptr<const SvdView> separable_svd(const torch::Tensor& Wh, const torch::Tensor& Ww, int64_t channels);

// A = c S T with T orthogonal on R^N (given by T and Tᵀ on [B, N]) and S selecting the rows
// `kept` [M]: U = I, s = c, Vᵀ = T with the kept rows first (masks, subsampled Hadamard).
std::shared_ptr<const SvdView> selection_svd(std::function<torch::Tensor(const torch::Tensor&)> T,
                                             std::function<torch::Tensor(const torch::Tensor&)> Tt,
                                             const torch::Tensor& kept, double c, Shape in, Shape out);

}  // namespace tweedie::op
