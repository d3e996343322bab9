#pragma once
// Pixelwise operators: identity (denoising), scale c·I, and HDR clipping.
#include <memory>

#include "tweedie/op/operator.h"

namespace tweedie::op {

struct HdrOptions {
  double alpha = 2.0;  // y = clip(α x, -1, 1); α = 2 in DAPS (Zhang et al. 2024, forward_operator/__init__.py:371)
};

std::shared_ptr<Operator> make_identity(Shape in);
std::shared_ptr<Operator> make_scale(Shape in, double c);
std::shared_ptr<Operator> make_hdr(Shape in, const HdrOptions& o = {});

}  // namespace tweedie::op
