#include "tweedie/channel/gaussian.h"

#include <cmath>

namespace tweedie::channel {
namespace {

const std::vector<std::pair<std::string, Link>>& link_names() {
  static const std::vector<std::pair<std::string, Link>> names{
      {"identity", Link::kIdentity}, {"cubic", Link::kCubic}, {"tanh", Link::kTanh}, {"relu", Link::kRelu},
      {"square", Link::kSquare},     {"abs", Link::kAbs},     {"sign", Link::kSign}};
  return names;
}

std::string link_name(Link l) {
  for (auto& [n, v] : link_names())
    if (v == l) return n;
  return "?";
}

class Gaussian : public Channel {
 public:
  explicit Gaussian(GaussianOptions o) : o_(o) {}
  std::string name() const override { return o_.link == Link::kIdentity ? "gaussian" : "link"; }
  std::string spec() const override {
    return o_.link == Link::kIdentity ? "gaussian:sigma=" + format_number(o_.sigma)
                                      : "link:f=" + link_name(o_.link) + ",sigma=" + format_number(o_.sigma);
  }
  // y = f(z) + σ n
  torch::Tensor simulate(const torch::Tensor& z, torch::Generator& gen) const override {
    auto fz = apply_link(o_.link, z.detach());
    return o_.sigma == 0 ? fz.clone() : fz + o_.sigma * noise_like(z, gen);
  }
  // |y − f(z)|²/(2σ²) + (log 2πσ²)/2 per real component
  torch::Tensor nll_elements(const torch::Tensor& z, const torch::Tensor& y) const override {
    if (!(o_.sigma > 0)) throw InputError(name() + ": the likelihood needs sigma > 0");
    auto r = y - apply_link(o_.link, z);
    double s2 = o_.sigma * o_.sigma, c = 0.5 * std::log(2 * M_PI * s2);
    if (r.is_complex()) return (torch::real(r).square() + torch::imag(r).square()) / (2 * s2) + 2 * c;
    return r.square() / (2 * s2) + c;
  }
  // inf_z: d²/(2σ²) + (log 2πσ²)/2, d the distance from y to the range of f (0 for identity and
  // cubic, (|y| − 1)₊ for tanh, |y| − 1 for sign, (−y)₊ for relu, square, abs); complex y (the
  // identity link): 2·(log 2πσ²)/2
  torch::Tensor nll_floor(const torch::Tensor& y) const override {
    if (!(o_.sigma > 0)) throw InputError(name() + ": the likelihood needs sigma > 0");
    double s2 = o_.sigma * o_.sigma, c = 0.5 * std::log(2 * M_PI * s2);
    if (y.is_complex()) return torch::full_like(torch::real(y), 2 * c);
    torch::Tensor d;
    switch (o_.link) {
      case Link::kIdentity:
      case Link::kCubic: return torch::full_like(y, c);
      case Link::kTanh: d = (torch::abs(y) - 1).clamp_min(0); break;
      case Link::kSign: d = torch::abs(y) - 1; break;
      case Link::kRelu:
      case Link::kSquare:
      case Link::kAbs: d = y.clamp_max(0); break;
    }
    return d.square() / (2 * s2) + c;
  }
  double scale() const override { return o_.sigma > 0 ? o_.sigma : 1.0; }
  double noise_std() const override { return o_.sigma; }

 private:
  GaussianOptions o_;
};

}  // namespace

torch::Tensor apply_link(Link link, const torch::Tensor& z) {
  switch (link) {
    case Link::kIdentity: return z;
    case Link::kCubic: return z * z * z;
    case Link::kTanh: return torch::tanh(z);
    case Link::kRelu: return torch::relu(z);
    case Link::kSquare: return z * z;
    case Link::kAbs: return torch::abs(z);
    case Link::kSign: return torch::where(z >= 0, torch::ones_like(z), -torch::ones_like(z));
  }
  return z;
}

Link parse_link(const std::string& name) {
  std::string all;
  for (auto& [n, v] : link_names()) {
    if (n == name) return v;
    all += (all.empty() ? "" : ", ") + n;
  }
  throw InputError("unknown link '" + name + "' (known: " + all + ")");
}

std::shared_ptr<Channel> make_gaussian(const GaussianOptions& o) {
  if (!(o.sigma >= 0)) throw InputError("gaussian: sigma must be non-negative");
  return std::make_shared<Gaussian>(o);
}

void enroll_gaussian(ChannelRegistry& r) {
  r.add({"gaussian", "y = z + sigma n (complex z: complex noise)",
         {{"sigma", kRequired, "noise standard deviation (DPS/DAPS: 0.05 on [-1, 1] images)"}},
         [](const Params& p, uint64_t) { return make_gaussian({p.real("sigma"), Link::kIdentity}); },
         {"gaussian:sigma=0.3"}});
  r.add({"link", "single-index y = f(z) + sigma n; solvers of SIMs are not told f",
         {{"f", kRequired, "link: cubic, tanh, relu, square, abs, sign, identity"},
          {"sigma", "0.05", "noise standard deviation (SIM-DMIS: 0.05)"}},
         [](const Params& p, uint64_t) { return make_gaussian({p.real("sigma"), parse_link(p.text("f"))}); },
         {"link:f=cubic,sigma=0.5", "link:f=tanh,sigma=0.2"}});
  r.add({"cubic", "y = z^3 + sigma n (SIM-DMIS cubic link; same as link:f=cubic)",
         {{"sigma", "0.05", "noise standard deviation (SIM-DMIS: 0.05)"}},
         [](const Params& p, uint64_t) { return make_gaussian({p.real("sigma"), Link::kCubic}); },
         {"cubic:sigma=0.5"}});
}

}  // namespace tweedie::channel
