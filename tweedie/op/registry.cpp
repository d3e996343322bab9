#include "tweedie/op/registry.h"

#include <cmath>

#include "tweedie/op/compose.h"

namespace tweedie::op {

// One line per family; each enrolls its operators (see the family's .cpp).
void enroll_pointwise(OperatorRegistry&);   // identity, scale, hdr
void enroll_gaussian(OperatorRegistry&);    // gaussian (dense, matrix-free)
void enroll_structured(OperatorRegistry&);  // srht
void enroll_mask(OperatorRegistry&);        // box-mask, random-mask
void enroll_resize(OperatorRegistry&);      // sr-avg, sr-bicubic
void enroll_blur(OperatorRegistry&);        // gaussian-blur, motion-blur
void enroll_mri(OperatorRegistry&);         // mri
void enroll_phase(OperatorRegistry&);       // phase
void enroll_ula(OperatorRegistry&);         // ula (angle of arrival)

OperatorRegistry& operator_registry() {
  static OperatorRegistry* registry = [] {
    auto* r = new OperatorRegistry("operator");
    enroll_pointwise(*r);
    enroll_gaussian(*r);
    enroll_structured(*r);
    enroll_mask(*r);
    enroll_resize(*r);
    enroll_blur(*r);
    enroll_mri(*r);
    enroll_phase(*r);
    enroll_ula(*r);
    return r;
  }();
  return *registry;
}

namespace {

std::shared_ptr<Operator> make_single(const std::string& text, const Shape& in, uint64_t seed, const std::string& what) {
  Spec spec = parse_spec(text, what);
  Params p = operator_registry().resolve(spec);
  return operator_registry().find(spec.name).make(p, OpContext{in, seed});
}

std::shared_ptr<Operator> make_chain(const std::string& text, const Shape& in, uint64_t& seed, const std::string& what) {
  std::vector<std::shared_ptr<Operator>> parts;
  Shape shape = in;
  auto pieces = split_spec(text, '|');
  for (auto& piece : pieces) {
    if (!parts.empty() && parts.back()->complex_output())
      throw InputError(what + " '" + text + "': " + parts.back()->name() + " gives complex output, which " +
                       piece + " cannot take");
    parts.push_back(make_single(piece, shape, seed++, what));
    shape = parts.back()->out_shape();
  }
  return parts.size() == 1 ? parts[0] : chain(parts);
}

}  // namespace

std::shared_ptr<Operator> make_operator(const std::string& spec, const Shape& in_shape, uint64_t seed,
                                        const std::string& what) {
  if (in_shape.empty())
    throw InputError(what + ": input shape " + shape_text(in_shape) + " is empty");
  for (auto d : in_shape)
    if (d < 1) throw InputError(what + ": input shape " + shape_text(in_shape) + " has a dimension below 1");
  // Any use of an operator holds items of this shape several times over (x, A x, gradients):
  // 16 bytes per element is a floor, and it refuses shapes no machine holds before a factory
  // sizes a mask or a matrix by them (the problem fuzzer's finding: x_shape [1, 5.6e6, 5.6e6]).
  require_elements(element_count(in_shape), 16.0, what + ": input shape " + shape_text(in_shape));
  std::vector<std::shared_ptr<Operator>> parts;
  for (auto& piece : split_spec(spec, '&')) parts.push_back(make_chain(piece, in_shape, seed, what));
  return parts.size() == 1 ? parts[0] : stack(parts);
}

void require_image(const OpContext& ctx, const Params& p) {
  if (ctx.in_shape.size() != 3) p.fail("needs images [C, H, W], got items of shape " + shape_text(ctx.in_shape));
}

int64_t measurement_count(const Params& p, int64_t N, bool at_most_n) {
  int64_t M = 0;
  if (p.has("m") && p.has("ratio")) p.fail("give m=M or ratio=R, not both");
  if (p.has("m")) M = p.integer("m");
  else if (p.has("ratio")) M = static_cast<int64_t>(std::llround(p.real("ratio") * static_cast<double>(N)));
  else p.fail("missing parameter 'm' (or 'ratio'): the number of measurements");
  if (M < 1 || (at_most_n && M > N))
    p.fail("m=" + std::to_string(M) + " must be between 1 and N=" + std::to_string(N));
  return M;
}

uint64_t seed_of(const Params& p, const OpContext& ctx) { return p.has("seed") ? p.seed("seed") : ctx.seed; }

}  // namespace tweedie::op
