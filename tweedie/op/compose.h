#pragma once
// Composition of operators: chain (apply in order), stack (concatenate flattened outputs) and
// scale (c·A). Linear when every part is.
#include <memory>
#include <vector>

#include "tweedie/op/operator.h"

namespace tweedie::op {

// A_k ∘ ... ∘ A_1 for parts {A_1, ..., A_k}; each part's in_shape must be its predecessor's
// out_shape (InputError otherwise).
std::shared_ptr<Operator> chain(std::vector<std::shared_ptr<Operator>> parts);
// x -> [A_1 x; ...; A_k x] flattened to [B, ΣM_k]; all parts share in_shape.
std::shared_ptr<Operator> stack(std::vector<std::shared_ptr<Operator>> parts);

}  // namespace tweedie::op
