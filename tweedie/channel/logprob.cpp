#include "tweedie/channel/logprob.h"

namespace tweedie::channel {

torch::Tensor log_ndtr(const torch::Tensor& x) { return torch::special::log_ndtr(x); }

namespace {

// log(1 − e^v) for v < 0 (Mächler 2012, "log1mexp"): log(−expm1(v)) near 0, log1p(−e^v) below.
torch::Tensor log1mexp(const torch::Tensor& v) {
  auto near = v > -0.6931471805599453;
  auto v_near = torch::where(near, v, torch::full_like(v, -1.0));
  auto v_far = torch::where(near, torch::full_like(v, -1.0), v);
  return torch::where(near, torch::log(-torch::expm1(v_near)), torch::log1p(-torch::exp(v_far)));
}

}  // namespace

torch::Tensor log_diff_ndtr(const torch::Tensor& a, const torch::Tensor& b) {
  auto lo_inf = torch::isinf(a), hi_inf = torch::isinf(b);
  // Finite stand-ins for the infinite ends (their branches are not selected).
  auto fa = torch::where(lo_inf, torch::where(hi_inf, torch::zeros_like(b), b) - 1.0, a);
  auto fb = torch::where(hi_inf, fa + 1.0, b);
  auto one = torch::ones_like(fa);
  // Upper tail (a ≥ 0).
  auto up = fa >= 0;
  auto ua = torch::where(up, fa, torch::zeros_like(fa)), ub = torch::where(up, fb, one);
  auto lu = log_ndtr(-ua);
  auto upper = lu + log1mexp(log_ndtr(-ub) - lu);
  // Lower tail (b ≤ 0).
  auto dn = fb <= 0;
  auto lb_ = torch::where(dn, fb, torch::zeros_like(fb)), la_ = torch::where(dn, fa, lb_ - 1.0);
  auto ll = log_ndtr(lb_);
  auto lower = ll + log1mexp(log_ndtr(la_) - ll);
  // Straddling zero (a < 0 < b): both Φ(a) and Φ(−b) are below 1/2.
  auto ma = torch::where(up | dn, -one, fa), mb = torch::where(up | dn, one, fb);
  auto middle = torch::log1p(-(torch::special::ndtr(ma) + torch::special::ndtr(-mb)));
  auto finite = torch::where(up, upper, torch::where(dn, lower, middle));
  // One-sided bins: Φ(b) − 0 and 1 − Φ(a).
  auto one_sided = torch::where(lo_inf, log_ndtr(fb), log_ndtr(-fa));
  auto both = lo_inf & hi_inf;
  return torch::where(both, torch::zeros_like(finite), torch::where(lo_inf | hi_inf, one_sided, finite));
}

}  // namespace tweedie::channel
