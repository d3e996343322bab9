#pragma once
// The operator registry: "gaussian:m=392" -> Operator. Each family enrolls its entries in its
// own file (enroll_* in registry.cpp lists the families); the conformance tests build every
// entry's examples, so an enrolled operator is tested like every other.
//
// Composition in spec strings: "A|B" applies A then B (chain), "A&B" stacks the flattened
// outputs of A and B; '&' binds looser than '|'. Component k of a composition draws its random
// parts from seed + k.
#include <functional>
#include <memory>
#include <string>

#include "tweedie/core/registry.h"
#include "tweedie/op/operator.h"

namespace tweedie::op {

struct OpContext {
  Shape in_shape;     // per item, e.g. {3, 256, 256} or {N}
  uint64_t seed = 0;  // seed of random parts when the spec gives none
};

using OperatorFactory = std::function<std::shared_ptr<Operator>(const Params&, const OpContext&)>;
using OperatorRegistry = Registry<OperatorFactory>;

OperatorRegistry& operator_registry();

// Builds an operator for inputs [B, in_shape...]. `what` names the source in errors ("--op").
std::shared_ptr<Operator> make_operator(const std::string& spec, const Shape& in_shape, uint64_t seed = 0,
                                        const std::string& what = "--op");

// Helpers for factories.
// The image shape [C, H, W] of `ctx`, or InputError naming the operator.
void require_image(const OpContext& ctx, const Params& p);
// M from m=M or ratio=R (M = round(R N)); InputError unless 1 ≤ M ≤ N when `at_most_n`.
int64_t measurement_count(const Params& p, int64_t N, bool at_most_n = true);
// The seed parameter, or ctx.seed when not given.
uint64_t seed_of(const Params& p, const OpContext& ctx);

}  // namespace tweedie::op
