#include "tweedie/op/phase.h"

#include "tweedie/core/runtime.h"
#include "tweedie/op/mri.h"
#include "tweedie/op/registry.h"

namespace tweedie::op {
namespace {

// Beyond 64 (a pad of 8 sides each side) oversampling buys nothing; the bound also keeps the
// pad's cast to int64 defined.
constexpr double kMaxPhaseOversample = 64.0;

int64_t pad_of(double oversample, int64_t side) { return static_cast<int64_t>(oversample / 8.0 * static_cast<double>(side)); }

class Phase : public Operator {
 public:
  Phase(Shape in, PhaseOptions o)
      : Operator(in, {std::max<int64_t>(1, o.masks) * in[0], in[1] + 2 * pad_of(o.oversample, in[1]),
                      in[2] + 2 * pad_of(o.oversample, in[2])}),
        o_(o) {
    ph_ = pad_of(o_.oversample, in_[1]);
    pw_ = pad_of(o_.oversample, in_[2]);
    if (o_.masks > 0) {
      // randint(0, 8): 0 -> −1, 7 -> +1, else 0 (DPnP).
      auto gen = make_generator(o_.seed);
      auto r = torch::randint(0, 8, {o_.masks, in_[1], in_[2]}, gen, torch::kLong);
      masks_ = ((r == 7).to(torch::kFloat32) - (r == 0).to(torch::kFloat32));
    }
  }
  std::string name() const override { return "phase"; }
  std::string spec() const override {
    return "phase:oversample=" + format_number(o_.oversample) + ",masks=" + std::to_string(o_.masks) +
           (o_.masks > 0 ? ",seed=" + std::to_string(o_.seed) : "");
  }
  bool linear() const override { return false; }
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    auto xs = x;
    if (masks_.defined()) {
      // [B, 1, C, H, W] ⊙ [1, K, 1, H, W] -> [B, K·C, H, W]
      auto m = masks_.to(x.scalar_type()).unsqueeze(1).unsqueeze(0);
      xs = (x.unsqueeze(1) * m).flatten(1, 2);
    }
    return torch::abs(fft2c(torch::constant_pad_nd(xs, {pw_, pw_, ph_, ph_})));
  }
  void to(const torch::Device& d) override {
    if (masks_.defined()) masks_ = masks_.to(d);
  }

 private:
  PhaseOptions o_;
  int64_t ph_, pw_;
  torch::Tensor masks_;
};

}  // namespace

std::shared_ptr<Operator> make_phase(Shape in, const PhaseOptions& o) {
  if (!(o.oversample >= 0 && o.oversample <= kMaxPhaseOversample))
    throw InputError("phase: oversample must be in [0, " + format_number(kMaxPhaseOversample) + "]");
  if (o.masks < 0) throw InputError("phase: masks must be non-negative");
  // The masks (int64 draws, then floats) and the padded output, before either is built.
  const double H = static_cast<double>(in.at(1)), W = static_cast<double>(in.at(2));
  const double K = static_cast<double>(std::max<int64_t>(1, o.masks));
  const double Hp = H + 2.0 * static_cast<double>(pad_of(o.oversample, in[1]));
  const double Wp = W + 2.0 * static_cast<double>(pad_of(o.oversample, in[2]));
  require_elements(K * H * W, 12.0, "phase:masks=" + std::to_string(o.masks) + " (coded masks)");
  require_elements(K * static_cast<double>(in[0]) * Hp * Wp, 16.0, "phase (padded complex output)");
  return std::make_shared<Phase>(std::move(in), o);
}

void enroll_phase(OperatorRegistry& r) {
  r.add({"phase", "Fourier phase retrieval y = |F(pad(x))| (nonlinear), optional coded masks",
         {{"oversample", "2.0", "padding oversample/8 of the side on each side (DPS: 2.0)"},
          {"masks", "0", "number of random coded masks (0 = none)"},
          {"seed", kUnset, "seed of the masks (default: --seed)"}},
         [](const Params& p, const OpContext& c) {
           require_image(c, p);
           return make_phase(c.in_shape, PhaseOptions{p.real("oversample"), p.integer("masks"), seed_of(p, c)});
         },
         {"phase", "phase:oversample=1,masks=2"}});
}

}  // namespace tweedie::op
