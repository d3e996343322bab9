#pragma once
// The measurement map A and nothing else: no noise, no data (architecture.md, contract 1).
//
// Batch first: x is [B, in_shape...] (images [B, C, H, W], vectors [B, N]); A(x) is
// [B, out_shape...]. Linear operators add the adjoint Aᵀ with respect to the real inner product
//   ⟨u, v⟩ = Re Σ conj(u_i) v_i,
// which for a real-to-complex map (MRI) makes Aᵀy = Re(Aᴴy). What can be derived is derived:
// normal(x) = Aᵀ(A x), and the vector-Jacobian product of a nonlinear operator comes from
// autograd. Random operators are defined by (shape, seed) and rebuilt from spec() anywhere.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tweedie::op {

using Shape = std::vector<int64_t>;
std::string shape_text(const Shape& s);       // "[3, 64, 64]"
int64_t numel(const Shape& s);
// The product of s in double: it cannot overflow, so a shape such as [1, 2^40, 2^40] is measured
// (and refused by require_elements) instead of wrapping round to a small or negative int64.
double element_count(const Shape& s);
// Refuses, with an InputError naming `what`, an allocation of `elements` × `bytes_each` bytes that
// the machine cannot hold (core/memory.h's require_memory, which honours TWEEDIE_MEMORY_LIMIT).
// Operator factories call it before building anything sized by the spec or the shape.
void require_elements(double elements, double bytes_each, const std::string& what);
// {B, s...}
Shape with_batch(int64_t B, const Shape& s);

// A = U diag(s) Vᵀ for a linear operator of full row rank (s may hold zeros), with orthogonal
// U (M×M) and V (N×N), M = prod(out_shape), N = prod(in_shape). Spectral coordinates are
// [B, N]; the first M of them pair with s (DDRM's convention, Kawar et al. 2022, App. D).
//   apply(x) = U(s ⊙ Vt(x)[:, :M])
class SvdView {
 public:
  virtual ~SvdView() = default;
  virtual torch::Tensor singular_values() const = 0;       // [M]
  virtual torch::Tensor Vt(const torch::Tensor& x) const = 0;  // [B, in...] -> [B, N]
  virtual torch::Tensor V(const torch::Tensor& c) const = 0;   // [B, N] -> [B, in...]
  virtual torch::Tensor Ut(const torch::Tensor& y) const = 0;  // [B, out...] -> [B, M]
  virtual torch::Tensor U(const torch::Tensor& c) const = 0;   // [B, M] -> [B, out...]
};

class Operator {
 public:
  virtual ~Operator() = default;

  // Registry name ("gaussian") and the canonical spec with every parameter resolved
  // ("gaussian:m=392,var=1/m,seed=7,impl=dense"): make_operator(spec(), in_shape()) rebuilds
  // an operator that gives bit-identical results.
  virtual std::string name() const = 0;
  virtual std::string spec() const = 0;

  const Shape& in_shape() const { return in_; }
  const Shape& out_shape() const { return out_; }
  virtual bool linear() const { return true; }
  virtual bool complex_output() const { return false; }

  // A(x): [B, in...] -> [B, out...]. Differentiable (autograd) for every operator.
  virtual torch::Tensor apply(const torch::Tensor& x) const = 0;
  // Aᵀy: [B, out...] -> [B, in...]. InputError for a nonlinear operator.
  virtual torch::Tensor adjoint(const torch::Tensor& y) const;
  // AᵀA x.
  virtual torch::Tensor normal(const torch::Tensor& x) const { return adjoint(apply(x)); }
  // (∂A/∂x)ᵀ v at x: adjoint(v) when linear, autograd otherwise.
  virtual torch::Tensor vjp(const torch::Tensor& x, const torch::Tensor& v) const;
  // The SVD view where it is cheap; nullptr otherwise.
  virtual std::shared_ptr<const SvdView> svd() const { return nullptr; }

  // Moves buffers (masks, kernels, stored matrices) to `device`.
  virtual void to(const torch::Device& device) {}

  // One line: "gaussian:m=392,... [1, 28, 28] -> [392] linear".
  std::string describe() const;

  // InputError unless x is [B, in_shape...] / y is [B, out_shape...].
  void check_input(const torch::Tensor& x) const;
  void check_output(const torch::Tensor& y) const;

 protected:
  Operator(Shape in, Shape out) : in_(std::move(in)), out_(std::move(out)) {}
  Shape in_, out_;
};

// A linear real operator as a dense matrix [M, D] (M = prod(out_shape), D = prod(in_shape)): its
// columns A e_j, from one batched apply to the identity, float64 on the CPU. D items of D pixels:
// for the mixture prior's small images (D ≤ a few thousand), where the closed-form posterior and
// its samplers need A itself. InputError if A is nonlinear or complex.
torch::Tensor dense_matrix(const Operator& A, const torch::Device& device = torch::kCPU);
// The Jacobian of A at x0 [in_shape...], [M, D] float64 on the CPU, by central differences of step
// `eps` in x0's dtype (exact for a linear operator up to rounding): the linearisation a sampler's
// preconditioner is built from. Real output only.
torch::Tensor jacobian(const Operator& A, const torch::Tensor& x0, double eps = 1e-3);

// ⟨u, v⟩ per batch item: Re Σ conj(u) v over all but the first dimension, as float64 [B].
torch::Tensor batch_inner(const torch::Tensor& u, const torch::Tensor& v);

}  // namespace tweedie::op
