#include "tweedie/op/svd.h"

namespace tweedie::op {
namespace {

torch::Tensor to_batch(const torch::Tensor& t, const Shape& shape) { return t.reshape(with_batch(t.size(0), shape)); }

// Full SVD of a stored matrix: U [M, M], s [M], V [N, N].
class DenseSvd : public SvdView {
 public:
  DenseSvd(const torch::Tensor& A, Shape in, Shape out) : in_(std::move(in)), out_(std::move(out)) {
    auto r = torch::linalg_svd(A.to(torch::kFloat64), /*full_matrices=*/true);
    auto dtype = A.scalar_type();
    U_ = std::get<0>(r).to(dtype);
    s_ = std::get<1>(r).to(dtype);
    V_ = std::get<2>(r).transpose(0, 1).contiguous().to(dtype);
  }
  torch::Tensor singular_values() const override { return s_; }
  torch::Tensor Vt(const torch::Tensor& x) const override { return x.flatten(1).matmul(V_); }
  torch::Tensor V(const torch::Tensor& c) const override { return to_batch(c.matmul(V_.t()), in_); }
  torch::Tensor Ut(const torch::Tensor& y) const override { return y.flatten(1).matmul(U_); }
  torch::Tensor U(const torch::Tensor& c) const override { return to_batch(c.matmul(U_.t()), out_); }

 private:
  Shape in_, out_;
  torch::Tensor U_, s_, V_;
};

// (Uh ⊗ Uw) diag(sh ⊗ sw) (Vh ⊗ Vw)ᵀ per channel. Spectral coordinates of X are Vhᵀ X Vw
// [C, H, W]; the entries (c, i < h, j < w) come first, in row-major order, then the rest.
class SeparableSvd : public SvdView {
 public:
  SeparableSvd(const torch::Tensor& Wh, const torch::Tensor& Ww, int64_t C) : C_(C) {
    auto dtype = Wh.scalar_type();
    auto rh = torch::linalg_svd(Wh.to(torch::kFloat64), true);
    auto rw = torch::linalg_svd(Ww.to(torch::kFloat64), true);
    Uh_ = std::get<0>(rh).to(dtype), Vh_ = std::get<2>(rh).t().contiguous().to(dtype);
    Uw_ = std::get<0>(rw).to(dtype), Vw_ = std::get<2>(rw).t().contiguous().to(dtype);
    h_ = Wh.size(0), H_ = Wh.size(1), w_ = Ww.size(0), W_ = Ww.size(1);
    auto sh = std::get<1>(rh), sw = std::get<1>(rw);
    s_ = torch::outer(sh, sw).flatten().repeat({C}).to(dtype);
    // perm: kept block first. A coordinate (c, i, j) of [C, H, W] is kept when i < h and j < w.
    auto opts = torch::TensorOptions().dtype(torch::kLong).device(Wh.device());
    auto ii = torch::arange(H_, opts).view({1, H_, 1}).expand({C, H_, W_});
    auto jj = torch::arange(W_, opts).view({1, 1, W_}).expand({C, H_, W_});
    auto kept = ((ii < h_) & (jj < w_)).flatten();
    auto all = torch::arange(C * H_ * W_, opts);
    perm_ = torch::cat({all.masked_select(kept), all.masked_select(~kept)});
    inv_ = torch::empty_like(perm_).scatter_(0, perm_, all);
  }
  torch::Tensor singular_values() const override { return s_; }
  torch::Tensor Vt(const torch::Tensor& x) const override {
    auto X = x.reshape({-1, C_, H_, W_});
    return Vh_.t().matmul(X).matmul(Vw_).flatten(1).index_select(1, perm_);
  }
  torch::Tensor V(const torch::Tensor& c) const override {
    auto X = c.index_select(1, inv_).reshape({-1, C_, H_, W_});
    return Vh_.matmul(X).matmul(Vw_.t());
  }
  torch::Tensor Ut(const torch::Tensor& y) const override {
    return Uh_.t().matmul(y.reshape({-1, C_, h_, w_})).matmul(Uw_).flatten(1);
  }
  torch::Tensor U(const torch::Tensor& c) const override {
    return Uh_.matmul(c.reshape({-1, C_, h_, w_})).matmul(Uw_.t());
  }

 private:
  int64_t C_, h_, H_, w_, W_;
  torch::Tensor Uh_, Vh_, Uw_, Vw_, s_, perm_, inv_;
};

class SelectionSvd : public SvdView {
 public:
  using Fn = std::function<torch::Tensor(const torch::Tensor&)>;
  SelectionSvd(Fn T, Fn Tt, const torch::Tensor& kept, double c, Shape in, Shape out)
      : T_(std::move(T)), Tt_(std::move(Tt)), in_(std::move(in)), out_(std::move(out)) {
    int64_t N = numel(in_);
    auto opts = torch::TensorOptions().dtype(torch::kLong).device(kept.device());
    auto is_kept = torch::zeros({N}, opts.dtype(torch::kBool)).index_fill_(0, kept, true);
    auto all = torch::arange(N, opts);
    perm_ = torch::cat({kept, all.masked_select(~is_kept)});
    inv_ = torch::empty_like(perm_).scatter_(0, perm_, all);
    s_ = torch::full({kept.size(0)}, c, torch::TensorOptions().device(kept.device()));
  }
  torch::Tensor singular_values() const override { return s_; }
  torch::Tensor Vt(const torch::Tensor& x) const override { return T_(x.flatten(1)).index_select(1, perm_); }
  torch::Tensor V(const torch::Tensor& c) const override { return to_batch(Tt_(c.index_select(1, inv_)), in_); }
  torch::Tensor Ut(const torch::Tensor& y) const override { return y.flatten(1); }
  torch::Tensor U(const torch::Tensor& c) const override { return to_batch(c, out_); }

 private:
  Fn T_, Tt_;
  Shape in_, out_;
  torch::Tensor perm_, inv_, s_;
};

}  // namespace

std::shared_ptr<const SvdView> dense_svd(const torch::Tensor& A, Shape in, Shape out) {
  return std::make_shared<DenseSvd>(A, std::move(in), std::move(out));
}

std::shared_ptr<const SvdView> separable_svd(const torch::Tensor& Wh, const torch::Tensor& Ww, int64_t channels) {
  return std::make_shared<SeparableSvd>(Wh, Ww, channels);
}

std::shared_ptr<const SvdView> selection_svd(std::function<torch::Tensor(const torch::Tensor&)> T,
                                             std::function<torch::Tensor(const torch::Tensor&)> Tt,
                                             const torch::Tensor& kept, double c, Shape in, Shape out) {
  return std::make_shared<SelectionSvd>(std::move(T), std::move(Tt), kept, c, std::move(in), std::move(out));
}

}  // namespace tweedie::op
