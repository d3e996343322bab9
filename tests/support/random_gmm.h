#pragma once
// A random, valid Gaussian-mixture prior for tests: K components in a d-dimensional subspace of
// the item's pixels, with the first `inactive` pixels fixed at 0.25 (like zero padding).
#include <torch/torch.h>

#include <vector>

#include "tweedie/core/runtime.h"
#include "tweedie/diffusion/gmm_prior.h"

namespace tweedie::test {

inline diffusion::GaussianMixture random_gmm(std::vector<int64_t> item, int64_t K, int64_t d,
                                             uint64_t seed, int64_t inactive = 1) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Generator g = make_generator(seed);
  diffusion::GaussianMixture m;
  m.item_shape = item;
  const int64_t D = m.item_numel(), da = D - inactive;
  m.fixed = torch::zeros({D}, f64);
  m.fixed.slice(0, 0, inactive).fill_(0.25);
  m.active = torch::arange(inactive, D, torch::kInt64);
  const auto w = at::rand({K}, g, f64) + 0.5;
  m.log_weights = (w / w.sum()).log();
  m.means = at::randn({K, da}, g, f64) * 0.6;
  m.basis = std::get<0>(torch::linalg::qr(at::randn({da, d}, g, f64)));
  m.eigvals = at::rand({K, d}, g, f64) * 0.3 + 0.02;
  m.eigvecs = std::get<0>(torch::linalg::qr(at::randn({K, d, d}, g, f64)));
  m.residual = at::rand({K}, g, f64) * 0.02 + 0.005;
  m.validate("random_gmm");
  return m;
}

}  // namespace tweedie::test
