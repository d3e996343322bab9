#include "tweedie/op/operator.h"

#include "tweedie/core/error.h"
#include "tweedie/core/memory.h"

namespace tweedie::op {

std::string shape_text(const Shape& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

double element_count(const Shape& s) {
  double n = 1;
  for (auto d : s) n *= static_cast<double>(d);
  return n;
}

void require_elements(double elements, double bytes_each, const std::string& what) {
  require_memory(elements * bytes_each, what);
}

torch::Tensor dense_matrix(const Operator& A, const torch::Device& device) {
  if (!A.linear()) throw InputError(A.name() + " is nonlinear: it has no matrix (use jacobian)");
  if (A.complex_output()) throw InputError(A.name() + " gives complex output: no real matrix");
  torch::NoGradGuard no_grad;
  const int64_t D = numel(A.in_shape());
  const torch::Tensor cols =
      A.apply(torch::eye(D, torch::TensorOptions().device(device)).reshape(with_batch(D, A.in_shape())));
  return cols.reshape({D, -1}).t().to(torch::kCPU, torch::kFloat64);
}

torch::Tensor jacobian(const Operator& A, const torch::Tensor& x0, double eps) {
  if (A.complex_output()) throw InputError(A.name() + " gives complex output: no real Jacobian");
  torch::NoGradGuard no_grad;
  const int64_t D = numel(A.in_shape());
  const auto opts = x0.options();
  const torch::Tensor base = x0.to(opts).reshape({1, D});
  const torch::Tensor step = eps * torch::eye(D, opts);
  auto at = [&](const torch::Tensor& x) { return A.apply(x.reshape(with_batch(D, A.in_shape()))).reshape({D, -1}); };
  // (A(x0 + ε e_j) − A(x0 − ε e_j)) / 2ε, column j
  return ((at(base + step) - at(base - step)) / (2 * eps)).t().to(torch::kCPU, torch::kFloat64);
}

Shape with_batch(int64_t B, const Shape& s) {
  Shape out{B};
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

namespace {

void check_shape(const torch::Tensor& t, const Shape& want, const std::string& who, const char* what) {
  bool ok = t.dim() == static_cast<int64_t>(want.size()) + 1;
  for (size_t i = 0; ok && i < want.size(); ++i) ok = t.size(static_cast<int64_t>(i) + 1) == want[i];
  if (!ok)
    throw InputError(who + ": " + what + " has shape " + shape_text(t.sizes().vec()) + ", expected [B, " +
                     shape_text(want).substr(1));
}

}  // namespace

void Operator::check_input(const torch::Tensor& x) const { check_shape(x, in_, name(), "input"); }
void Operator::check_output(const torch::Tensor& y) const { check_shape(y, out_, name(), "measurement"); }

torch::Tensor Operator::adjoint(const torch::Tensor&) const {
  throw InputError(linear() ? name() + " defines no adjoint (its class gives apply() only), which a linear operator "
                                      "needs for its likelihood gradient"
                             : name() + " is nonlinear: it has no adjoint (use vjp)");
}

torch::Tensor Operator::vjp(const torch::Tensor& x, const torch::Tensor& v) const {
  if (linear()) return adjoint(v);
  // (∂A/∂x)ᵀ v = ∇_x ⟨A(x), v⟩
  torch::AutoGradMode on(true);
  auto xr = x.detach().requires_grad_(true);
  auto y = apply(xr);
  auto dot = torch::is_complex(y) ? torch::real(torch::conj(y) * v).sum() : (y * v).sum();
  return torch::autograd::grad({dot}, {xr})[0];
}

std::string Operator::describe() const {
  return spec() + "  " + shape_text(in_) + " -> " + shape_text(out_) + (complex_output() ? " complex" : "") +
         (linear() ? " linear" : " nonlinear");
}

torch::Tensor batch_inner(const torch::Tensor& u, const torch::Tensor& v) {
  auto a = u.flatten(1), b = v.flatten(1);
  if (a.is_complex() || b.is_complex()) {
    a = a.to(torch::kComplexDouble);
    b = b.to(torch::kComplexDouble);
    return torch::real(torch::conj(a) * b).sum(1);
  }
  return (a.to(torch::kFloat64) * b.to(torch::kFloat64)).sum(1);
}

}  // namespace tweedie::op
