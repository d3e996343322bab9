#include "tweedie/op/mask.h"

#include "tweedie/core/runtime.h"
#include "tweedie/op/registry.h"
#include "tweedie/op/svd.h"

namespace tweedie::op {
namespace {

// Indices (into C·H·W) of the kept entries of a pixel mask [H, W] (true = kept).
torch::Tensor kept_indices(const torch::Tensor& pixel_mask, int64_t C) {
  return torch::nonzero(pixel_mask.unsqueeze(0).expand({C, -1, -1}).flatten()).flatten();
}

class Mask : public Operator {
 public:
  Mask(Shape in, const torch::Tensor& pixel_mask, std::string name, std::string spec)
      : Operator(in, {0}), name_(std::move(name)), spec_(std::move(spec)) {
    kept_ = kept_indices(pixel_mask, in_[0]);
    out_ = {kept_.size(0)};
  }
  std::string name() const override { return name_; }
  std::string spec() const override { return spec_; }
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    return x.flatten(1).index_select(1, kept_);
  }
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    auto x = torch::zeros({y.size(0), numel(in_)}, y.options()).index_copy(1, kept_, y);
    return x.reshape(with_batch(y.size(0), in_));
  }
  torch::Tensor normal(const torch::Tensor& x) const override { return adjoint(apply(x)); }
  std::shared_ptr<const SvdView> svd() const override {
    auto id = [](const torch::Tensor& t) { return t; };
    return selection_svd(id, id, kept_, 1.0, in_, out_);
  }
  void to(const torch::Device& d) override { kept_ = kept_.to(d); }

 private:
  std::string name_, spec_;
  torch::Tensor kept_;
};

}  // namespace

std::shared_ptr<Operator> make_box_mask(Shape in, const BoxMaskOptions& o) {
  int64_t H = in.at(1), W = in.at(2);
  if (o.size_h < 1 || o.size_w < 1 || o.size_h > H || o.size_w > W)
    throw InputError("box-mask: box " + std::to_string(o.size_h) + "x" + std::to_string(o.size_w) +
                     " does not fit images of " + std::to_string(H) + "x" + std::to_string(W));
  auto gen = make_generator(o.seed);
  // Draws the corner in [margin, L − margin − size), shrinking the margin when it does not fit.
  auto corner = [&](std::optional<int64_t> given, int64_t L, int64_t size) {
    if (given) {
      if (*given < 0 || *given + size > L) throw InputError("box-mask: box at " + std::to_string(*given) + " leaves the image");
      return *given;
    }
    int64_t margin = std::min(o.margin, (L - size) / 2);
    int64_t hi = std::max(margin + 1, L - margin - size);
    return torch::randint(margin, hi, {1}, gen, torch::kLong).item<int64_t>();
  };
  int64_t top = corner(o.top, H, o.size_h), left = corner(o.left, W, o.size_w);
  auto m = torch::ones({H, W}, torch::kBool);
  m.slice(0, top, top + o.size_h).slice(1, left, left + o.size_w).fill_(false);
  std::string spec = "box-mask:h=" + std::to_string(o.size_h) + ",w=" + std::to_string(o.size_w) +
                     ",top=" + std::to_string(top) + ",left=" + std::to_string(left);
  return std::make_shared<Mask>(std::move(in), m, "box-mask", spec);
}

std::shared_ptr<Operator> make_random_mask(Shape in, const RandomMaskOptions& o) {
  int64_t H = in.at(1), W = in.at(2);
  if (!(o.ratio >= 0 && o.ratio < 1)) throw InputError("random-mask: ratio must be in [0, 1)");
  auto gen = make_generator(o.seed);
  auto removed = torch::randperm(H * W, gen, torch::kLong).slice(0, 0, static_cast<int64_t>(o.ratio * H * W));
  auto m = torch::ones({H * W}, torch::kBool).index_fill_(0, removed, false).view({H, W});
  std::string spec = "random-mask:ratio=" + format_number(o.ratio) + ",seed=" + std::to_string(o.seed);
  return std::make_shared<Mask>(std::move(in), m, "random-mask", spec);
}

void enroll_mask(OperatorRegistry& r) {
  r.add({"box-mask", "inpainting: y = pixels outside a box (every channel), flattened",
         {{"size", "128", "box side (h = w), DPS/DAPS: 128"},
          {"h", kUnset, "box height (overrides size)"},
          {"w", kUnset, "box width (overrides size)"},
          {"top", kUnset, "box top row (default: random)"},
          {"left", kUnset, "box left column (default: random)"},
          {"margin", "16", "random corner at least this far from the border (DPS 16, DAPS 32)"},
          {"seed", kUnset, "seed of the random corner (default: --seed)"}},
         [](const Params& p, const OpContext& c) {
           require_image(c, p);
           BoxMaskOptions o;
           o.size_h = p.has("h") ? p.integer("h") : p.integer("size");
           o.size_w = p.has("w") ? p.integer("w") : p.integer("size");
           if (p.has("top")) o.top = p.integer("top");
           if (p.has("left")) o.left = p.integer("left");
           o.margin = p.integer("margin");
           o.seed = seed_of(p, c);
           return make_box_mask(c.in_shape, o);
         },
         {"box-mask:size=5", "box-mask:h=3,w=6,top=1,left=2"}});
  r.add({"random-mask", "inpainting: y = a random subset of pixels (every channel), flattened",
         {{"ratio", "0.5", "fraction of pixels removed (DPS 0.3-0.7, Diff-OneBit/DDRM 0.5)"},
          {"seed", kUnset, "seed of the mask (default: --seed)"}},
         [](const Params& p, const OpContext& c) {
           require_image(c, p);
           return make_random_mask(c.in_shape, RandomMaskOptions{p.real("ratio"), seed_of(p, c)});
         },
         {"random-mask", "random-mask:ratio=0.9"}});
}

}  // namespace tweedie::op
