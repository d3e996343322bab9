#include "tweedie/op/structured.h"

#include <cmath>

#include "tweedie/core/runtime.h"
#include "tweedie/op/registry.h"
#include "tweedie/op/svd.h"

namespace tweedie::op {

torch::Tensor fwht(const torch::Tensor& x) {
  int64_t n = x.size(-1);
  TORCH_CHECK(n > 0 && (n & (n - 1)) == 0, "fwht: length ", n, " is not a power of two");
  auto lead = x.sizes().vec();
  lead.pop_back();
  auto t = x.reshape({-1, n});
  int64_t B = t.size(0);
  // Butterfly at stride h: (a, b) -> (a + b, a - b) on pairs h apart; H = ⊗ [[1, 1], [1, -1]].
  for (int64_t h = 1; h < n; h *= 2) {
    auto v = t.view({B, n / (2 * h), 2, h});
    auto a = v.select(2, 0), b = v.select(2, 1);
    t = torch::stack({a + b, a - b}, 2).view({B, n});
  }
  lead.push_back(n);
  return (t * (1.0 / std::sqrt(static_cast<double>(n)))).view(lead);
}

namespace {

int64_t next_pow2(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

class Srht : public Operator {
 public:
  Srht(Shape in, SrhtOptions o) : Operator(in, {o.m}), o_(o) {
    N_ = numel(in_);
    n_ = next_pow2(N_);
    auto gen = make_generator(o_.seed);
    signs_ = (torch::randint(0, 2, {n_}, gen, torch::kLong) * 2 - 1).to(torch::kFloat32);
    kept_ = std::get<0>(torch::randperm(n_, gen, torch::kLong).slice(0, 0, o_.m).sort());
    c_ = std::sqrt(static_cast<double>(n_) / (o_.unit_variance ? 1.0 : static_cast<double>(o_.m)));
  }
  std::string name() const override { return "srht"; }
  std::string spec() const override {
    return "srht:m=" + std::to_string(o_.m) + ",var=" + (o_.unit_variance ? "1" : "1/m") + ",seed=" +
           std::to_string(o_.seed);
  }
  // y = c S H D P x
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    return fwht(pad(x.flatten(1)) * signs_.to(x.scalar_type())).index_select(1, kept_) * c_;
  }
  // Aᵀy = c Pᵀ D H Sᵀ y (H and D are symmetric).
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    auto full = torch::zeros({y.size(0), n_}, y.options()).index_copy(1, kept_, y);
    return (fwht(full) * signs_.to(y.scalar_type()) * c_).slice(1, 0, N_).reshape(with_batch(y.size(0), in_));
  }
  // With no padding (N a power of two) H D is orthogonal on R^N: U = I, s = c, Vᵀ = H D.
  std::shared_ptr<const SvdView> svd() const override {
    if (n_ != N_) return nullptr;
    auto signs = signs_;
    auto T = [signs](const torch::Tensor& x) { return fwht(x * signs.to(x.scalar_type())); };
    auto Tt = [signs](const torch::Tensor& c) { return fwht(c) * signs.to(c.scalar_type()); };
    return selection_svd(T, Tt, kept_, c_, in_, out_);
  }
  void to(const torch::Device& d) override {
    signs_ = signs_.to(d);
    kept_ = kept_.to(d);
  }

 private:
  torch::Tensor pad(const torch::Tensor& xf) const {
    return n_ == N_ ? xf : torch::constant_pad_nd(xf, {0, n_ - N_});
  }
  SrhtOptions o_;
  int64_t N_, n_;
  double c_;
  torch::Tensor signs_, kept_;
};

}  // namespace

std::shared_ptr<Operator> make_srht(Shape in, const SrhtOptions& o) { return std::make_shared<Srht>(std::move(in), o); }

void enroll_structured(OperatorRegistry& r) {
  r.add({"srht", "subsampled randomized Hadamard sensing c S H D x, O(N log N), entries ±1/sqrt(M)",
         {{"m", kUnset, "number of measurements M"},
          {"ratio", kUnset, "M/N instead of m"},
          {"var", "1/m", "entry variance: 1/m or 1, as for gaussian"},
          {"seed", kUnset, "seed of D and S (default: --seed)"}},
         [](const Params& p, const OpContext& c) {
           SrhtOptions o;
           int64_t N = numel(c.in_shape);
           o.m = measurement_count(p, next_pow2(N));
           o.unit_variance = p.choice("var", {"1/m", "1"}) == "1";
           o.seed = seed_of(p, c);
           return make_srht(c.in_shape, o);
         },
         {"srht:m=40", "srht:ratio=0.25,var=1"}});
}

}  // namespace tweedie::op
