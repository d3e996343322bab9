#include "tweedie/channel/quantizer.h"

#include <cmath>
#include <limits>

#include "tweedie/channel/logprob.h"

namespace tweedie::channel {
namespace {

class Quantizer : public Channel {
 public:
  explicit Quantizer(QuantizerOptions o) : o_(o), top_(static_cast<double>((int64_t{1} << (o.bits - 1)) - 1)) {}
  std::string name() const override { return "quantize"; }
  std::string spec() const override {
    std::string s = "quantize:bits=" + std::to_string(o_.bits) + ",sigma=" + format_number(o_.sigma);
    if (o_.delta) s += ",delta=" + format_number(*o_.delta);
    return s;
  }
  torch::Tensor simulate(const torch::Tensor& z, torch::Generator& gen) const override {
    auto zd = z.detach();
    if (!o_.delta) {  // δ = (max z − min z)/2^b, fixed from now on
      double range = (zd.max() - zd.min()).item<double>();
      o_.delta = range > 0 ? range / static_cast<double>(int64_t{1} << o_.bits) : 1.0;
    }
    auto w = o_.sigma > 0 ? zd + o_.sigma * noise_like(zd, gen) : zd;
    auto s = torch::where(w >= 0, torch::ones_like(w), -torch::ones_like(w));
    auto k = torch::clamp_max(torch::floor(torch::abs(w) / *o_.delta), top_);
    return s * (k + 0.5) * *o_.delta;
  }
  // −log(Φ((u − z)/σ) − Φ((l − z)/σ)), l = y − δ/2 (−∞ at the bottom), u = y + δ/2 (+∞ at the top)
  torch::Tensor nll_elements(const torch::Tensor& z, const torch::Tensor& y) const override {
    if (!(o_.sigma > 0)) throw InputError("quantize: the likelihood needs sigma > 0");
    double d = delta();
    double inf = std::numeric_limits<double>::infinity();
    auto level = torch::round(torch::abs(y) / d - 0.5);  // k
    auto saturated = level >= top_;
    auto lo = torch::where(saturated & (y < 0), torch::full_like(y, -inf), y - d / 2);
    auto hi = torch::where(saturated & (y > 0), torch::full_like(y, inf), y + d / 2);
    return -log_diff_ndtr((lo - z) / o_.sigma, (hi - z) / o_.sigma);
  }
  // inf_z: an inner bin's probability peaks at its centre z = y; a saturated bin is open, its
  // NLL → 0 as z → ±∞
  torch::Tensor nll_floor(const torch::Tensor& y) const override {
    auto saturated = torch::round(torch::abs(y) / delta() - 0.5) >= top_;
    return torch::where(saturated, torch::zeros_like(y), nll_elements(y, y));
  }
  double scale() const override { return o_.sigma; }
  bool discrete() const override { return true; }
  void validate(const torch::Tensor& y) const override {
    Channel::validate(y);
    if (!o_.delta) return;
    auto k = torch::abs(y) / *o_.delta - 0.5;
    require(torch::allclose(k, torch::round(k), 0, 1e-3) && (k <= top_ + 1e-3).all().item<bool>(),
            "quantize: measurements are not levels (k + 1/2) delta of the quantizer");
  }

 private:
  double delta() const {
    if (!o_.delta) throw InputError("quantize: delta is unknown (give delta= or simulate first)");
    return *o_.delta;
  }
  mutable QuantizerOptions o_;  // δ is resolved by the first simulation
  double top_;                  // 2^{b−1} − 1, the saturated level
};

}  // namespace

std::shared_ptr<Channel> make_quantizer(const QuantizerOptions& o) {
  if (o.bits < 1 || o.bits > 16) throw InputError("quantize: bits must be between 1 and 16");
  if (!(o.sigma >= 0)) throw InputError("quantize: sigma must be non-negative");
  if (o.delta && !(*o.delta > 0)) throw InputError("quantize: delta must be positive");
  return std::make_shared<Quantizer>(o);
}

void enroll_quantizer(ChannelRegistry& r) {
  r.add({"quantize", "b-bit uniform quantizer of z + sigma e, interval likelihood (QCS-SGM)",
         {{"bits", kRequired, "number of bits b (QCS-SGM: 1-3)"},
          {"sigma", "0.001", "pre-quantization noise std (QCS-SGM: variance 1e-6)"},
          {"delta", kUnset, "bin width (default: (max z - min z) / 2^b at simulation)"}},
         [](const Params& p, uint64_t) {
           QuantizerOptions o;
           o.bits = p.integer("bits");
           o.sigma = p.real("sigma");
           if (p.has("delta")) o.delta = p.real("delta");
           return make_quantizer(o);
         },
         {"quantize:bits=2,sigma=0.3,delta=0.5", "quantize:bits=3,sigma=0.2,delta=0.25"}});
}

}  // namespace tweedie::channel
