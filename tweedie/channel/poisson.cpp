#include "tweedie/channel/poisson.h"

namespace tweedie::channel {
namespace {

constexpr double kRateFloor = 1e-8;  // keeps log λ finite where gain·(z + offset) ≤ 0

class Poisson : public Channel {
 public:
  explicit Poisson(PoissonOptions o) : o_(o) {}
  std::string name() const override { return "poisson"; }
  std::string spec() const override {
    return "poisson:gain=" + format_number(o_.gain) + ",offset=" + format_number(o_.offset);
  }
  torch::Tensor simulate(const torch::Tensor& z, torch::Generator& gen) const override {
    auto lambda = rate(z.detach()).to(torch::kCPU, torch::kFloat64);
    return torch::poisson(lambda, gen).to(z.device(), z.scalar_type());
  }
  // λ − y log λ + log Γ(y + 1)
  torch::Tensor nll_elements(const torch::Tensor& z, const torch::Tensor& y) const override {
    auto lambda = rate(z);
    return lambda - y * torch::log(lambda) + torch::lgamma(y + 1);
  }
  // inf over λ ≥ the floor of λ − y log λ: at λ = max(y, floor) (every such λ is some z's rate)
  torch::Tensor nll_floor(const torch::Tensor& y) const override {
    auto lambda = torch::clamp_min(y, kRateFloor);
    return lambda - y * torch::log(lambda) + torch::lgamma(y + 1);
  }
  double scale() const override { return 1.0 / o_.gain; }
  bool discrete() const override { return true; }
  void validate(const torch::Tensor& y) const override {
    Channel::validate(y);
    require(!y.is_complex() && (y >= 0).all().item<bool>() && torch::equal(y, torch::round(y)),
            "poisson: measurements must be non-negative integers");
  }

 private:
  torch::Tensor rate(const torch::Tensor& z) const { return torch::clamp_min(o_.gain * (z + o_.offset), kRateFloor); }
  PoissonOptions o_;
};

}  // namespace

std::shared_ptr<Channel> make_poisson(const PoissonOptions& o) {
  if (!(o.gain > 0)) throw InputError("poisson: gain must be positive");
  return std::make_shared<Poisson>(o);
}

void enroll_poisson(ChannelRegistry& r) {
  r.add({"poisson", "photon counts y ~ Poisson(gain (z + offset)); images: gain = peak/2, offset = 1",
         {{"gain", "1", "photons per unit of z + offset"}, {"offset", "0", "added to z before the gain"}},
         [](const Params& p, uint64_t) { return make_poisson({p.real("gain"), p.real("offset")}); },
         {"poisson:gain=10,offset=3", "poisson:gain=0.5,offset=4"}});
}

}  // namespace tweedie::channel
