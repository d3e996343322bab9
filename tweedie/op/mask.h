#pragma once
// Inpainting: y = the kept entries of x, flattened [B, K] (seed 001's P x: a subset of pixels).
// Masks act on pixels; every channel of a kept pixel is kept. Aᵀy is the zero-filled image, so
// adjoint(apply(x)) = mask ⊙ x. SVD: U = I, s = 1, Vᵀ = kept entries first.
#include <memory>
#include <optional>

#include "tweedie/op/operator.h"

namespace tweedie::op {

// A size_h × size_w box is removed. Its top-left corner is drawn uniformly in
// [margin, H − margin − size) per axis (DPS util/img_utils.py mask_generator, margin 16;
// DAPS uses 32), unless given.
struct BoxMaskOptions {
  int64_t size_h = 128, size_w = 128;  // DPS/DAPS box inpainting: 128×128 of 256×256
  std::optional<int64_t> top, left;
  int64_t margin = 16;
  uint64_t seed = 0;
};

// ⌊ratio·H·W⌋ pixel positions removed, drawn without replacement (DPS random inpainting;
// Diff-OneBit's 1-bit inpainting and DDRM's `inp` remove half: ratio 0.5).
struct RandomMaskOptions {
  double ratio = 0.5;
  uint64_t seed = 0;
};

std::shared_ptr<Operator> make_box_mask(Shape in, const BoxMaskOptions& o);
std::shared_ptr<Operator> make_random_mask(Shape in, const RandomMaskOptions& o);

}  // namespace tweedie::op
