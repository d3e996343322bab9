#include "tweedie/channel/binary.h"

#include "tweedie/channel/logprob.h"
#include "tweedie/core/runtime.h"

namespace tweedie::channel {
namespace {

torch::Tensor pm_one(const torch::Tensor& positive) {
  return positive.to(torch::kFloat32) * 2 - 1;
}

void validate_pm_one(const Channel& c, const torch::Tensor& y) {
  c.Channel::validate(y);
  require(!y.is_complex() && ((y == 1) | (y == -1)).all().item<bool>(), c.name() + ": measurements must be -1 or +1");
}

class Sign : public Channel {
 public:
  explicit Sign(SignOptions o) : o_(o) {}
  std::string name() const override { return "sign"; }
  std::string spec() const override {
    std::string s = "sign:sigma=" + format_number(o_.sigma);
    if (o_.dither > 0) s += ",dither=" + format_number(o_.dither) + ",seed=" + std::to_string(o_.dither_seed);
    return s;
  }
  // y = sign(z + d + σ e)
  torch::Tensor simulate(const torch::Tensor& z, torch::Generator& gen) const override {
    auto w = z.detach() + dither_for(z);
    if (o_.sigma > 0) w = w + o_.sigma * noise_like(z, gen);
    return pm_one(w >= 0).to(z.device(), z.scalar_type());
  }
  // −log Φ(y (z + d)/σ)
  torch::Tensor nll_elements(const torch::Tensor& z, const torch::Tensor& y) const override {
    if (!(o_.sigma > 0)) throw InputError("sign: the probit likelihood needs sigma > 0");
    return -log_ndtr(y * (z + dither_for(z)) / o_.sigma);
  }
  // inf_z −log Φ(y (z + d)/σ) = 0 (z → y·∞)
  torch::Tensor nll_floor(const torch::Tensor& y) const override { return torch::zeros_like(y); }
  double scale() const override { return o_.sigma > 0 ? o_.sigma : 1.0; }
  double noise_std() const override { return o_.sigma; }
  bool discrete() const override { return true; }
  void validate(const torch::Tensor& y) const override { validate_pm_one(*this, y); }

 private:
  // The dither of one item, [1, ...], drawn from (dither seed, item shape) and shared by the
  // batch; 0 without dither.
  torch::Tensor dither_for(const torch::Tensor& z) const {
    if (!(o_.dither > 0)) return torch::zeros({1}, z.options());
    auto shape = z.sizes().vec();
    shape[0] = 1;
    auto gen = make_generator(o_.dither_seed);
    auto u = torch::rand(shape, gen, torch::kFloat64);
    return ((u * 2 - 1) * o_.dither).to(z.device(), z.scalar_type());
  }
  SignOptions o_;
};

class Logistic : public Channel {
 public:
  explicit Logistic(LogisticOptions o) : o_(o) {}
  std::string name() const override { return "logistic"; }
  std::string spec() const override { return "logistic:temperature=" + format_number(o_.temperature); }
  // y = +1 with probability sigmoid(z/T)
  torch::Tensor simulate(const torch::Tensor& z, torch::Generator& gen) const override {
    auto u = uniform_like(z, gen);
    return pm_one(u < torch::sigmoid(z.detach() / o_.temperature)).to(z.device(), z.scalar_type());
  }
  // −log sigmoid(y z / T)
  torch::Tensor nll_elements(const torch::Tensor& z, const torch::Tensor& y) const override {
    return -torch::log_sigmoid(y * z / o_.temperature);
  }
  // inf_z softplus(−y z/T) = 0 (z → y·∞)
  torch::Tensor nll_floor(const torch::Tensor& y) const override { return torch::zeros_like(y); }
  double scale() const override { return o_.temperature; }
  bool discrete() const override { return true; }
  void validate(const torch::Tensor& y) const override { validate_pm_one(*this, y); }

 private:
  LogisticOptions o_;
};

}  // namespace

std::shared_ptr<Channel> make_sign(const SignOptions& o) {
  if (!(o.sigma >= 0)) throw InputError("sign: sigma must be non-negative");
  if (!(o.dither >= 0)) throw InputError("sign: dither must be non-negative");
  return std::make_shared<Sign>(o);
}

std::shared_ptr<Channel> make_logistic(const LogisticOptions& o) {
  if (!(o.temperature > 0)) throw InputError("logistic: temperature must be positive");
  return std::make_shared<Logistic>(o);
}

void enroll_binary(ChannelRegistry& r) {
  r.add({"sign", "1-bit y = sign(z + dither + sigma e), probit likelihood (Diff-OneBit eq. 24)",
         {{"sigma", kRequired, "pre-quantization noise std (Diff-OneBit: 0.5 or 1.0; SIM-DMIS: 0.05)"},
          {"dither", "0", "uniform dither amplitude tau, d ~ U[-tau, tau] known to the likelihood"},
          {"seed", kUnset, "seed of the dither (default: --seed)"}},
         [](const Params& p, uint64_t seed) {
           return make_sign({p.real("sigma"), p.real("dither"), p.has("seed") ? p.seed("seed") : seed});
         },
         {"sign:sigma=0.5", "sign:sigma=0.2,dither=0.5,seed=3"}});
  r.add({"logistic", "1-bit y = +1 w.p. sigmoid(z / T) (logistic regression, Diff-OneBit eq. 28)",
         {{"temperature", "1", "T (Diff-OneBit: 1)"}},
         [](const Params& p, uint64_t) { return make_logistic({p.real("temperature")}); },
         {"logistic", "logistic:temperature=0.4"}});
}

}  // namespace tweedie::channel
