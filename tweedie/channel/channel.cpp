#include "tweedie/channel/channel.h"

#include "tweedie/core/runtime.h"

namespace tweedie::channel {

// One line per family; each enrolls its channels (see the family's .cpp).
void enroll_gaussian(ChannelRegistry&);   // gaussian, link, cubic
void enroll_binary(ChannelRegistry&);     // sign, logistic
void enroll_quantizer(ChannelRegistry&);  // quantize
void enroll_poisson(ChannelRegistry&);    // poisson

ChannelRegistry& channel_registry() {
  static ChannelRegistry* registry = [] {
    auto* r = new ChannelRegistry("channel");
    enroll_gaussian(*r);
    enroll_binary(*r);
    enroll_quantizer(*r);
    enroll_poisson(*r);
    return r;
  }();
  return *registry;
}

std::shared_ptr<Channel> make_channel(const std::string& text, uint64_t seed, const std::string& what) {
  if (text.find('|') != std::string::npos || text.find('&') != std::string::npos)
    throw InputError(what + " '" + text + "': channels do not compose");
  Spec spec = parse_spec(text, what);
  Params p = channel_registry().resolve(spec);
  return channel_registry().find(spec.name).make(p, seed);
}

torch::Tensor Channel::nll(const torch::Tensor& z, const torch::Tensor& y) const {
  auto e = nll_elements(z, y);
  return e.dim() <= 1 ? e : e.flatten(1).sum(1);
}

void Channel::validate(const torch::Tensor& y) const {
  auto v = y.is_complex() ? torch::view_as_real(y) : y;
  if (y.is_floating_point() || y.is_complex())
    require(torch::isfinite(v).all().item<bool>(), name() + ": measurements contain NaN or Inf");
}

torch::Tensor noise_like(const torch::Tensor& z, torch::Generator& gen) {
  if (z.is_complex()) {
    auto n = torch::randn(z.sizes().vec(), gen, torch::kFloat64);
    auto m = torch::randn(z.sizes().vec(), gen, torch::kFloat64);
    return torch::complex(n, m).to(z.device(), z.scalar_type());
  }
  return torch::randn(z.sizes().vec(), gen, torch::kFloat64).to(z.device(), z.scalar_type());
}

torch::Tensor uniform_like(const torch::Tensor& z, torch::Generator& gen) {
  return torch::rand(z.sizes().vec(), gen, torch::kFloat64).to(z.device(), z.scalar_type());
}

}  // namespace tweedie::channel
