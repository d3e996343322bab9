// DDRM against the authors' loop (tests/parity/gen/ddrm.py; bahjat-kawar/ddrm @ 32b6b3c):
// Diffusion.sample_image -> efficient_generalized_steps, 8 steps (seq = range(0, 1000, 125)),
// η_A = η_C = 0.85, η_B = 1, σ₀ = 0.05, two Fashion-MNIST images in one batch, on the converged
// prior. Two fixtures:
//   ddrm     their Inpainting with a 16×16 box missing: our box-mask operator is their operator
//            exactly (same y, same Vᵀ: kept pixels first, then the missing ones, in index order),
//            so the run uses it unchanged.
//   ddrm-sr  their SuperResolution, ratio 2: our sr-avg:factor=2 has the same A and the same
//            singular values (256 × 1/2), but the SVD bases of the degenerate subspaces differ
//            (ours: LAPACK's 1-D SVDs, theirs: per-2×2-block V of torch.svd([1/4]*4)), and the
//            noise enters as V z. The run therefore uses sr-avg with their basis (TheirSrBasis,
//            built from their stored V_small and checked against their Vᵀ on a probe).
// Our solver runs with draws=authors (ddrm.h: the code's three draws per step).
#include "parity/parity_support.h"

#include "tweedie/channel/channel.h"
#include "tweedie/op/registry.h"

namespace tweedie::test {
namespace {

// Their SuperResolution's SVD view (functions/svd_replacement.py) for C = 1: Vᵀx takes each
// r×r block p (row-major) as a vector b_p (row-major), c_p = V_smallᵀ b_p; coordinates are
// (c_p)_0 for every p first, then (c_p)_1..(c_p)_{r²−1} for p = 0, 1, ... U = u (±1).
class TheirSrBasis final : public op::SvdView {
 public:
  TheirSrBasis(torch::Tensor V_small, double u, double s, int64_t img, int64_t ratio)
      : V_(std::move(V_small)), u_(u), s_(s), img_(img), r_(ratio), y_(img / ratio) {}
  torch::Tensor singular_values() const override { return torch::full({y_ * y_}, s_); }
  torch::Tensor Vt(const torch::Tensor& x) const override {
    const int64_t B = x.size(0);
    auto blocks = x.reshape({B, y_, r_, y_, r_}).permute({0, 1, 3, 2, 4}).reshape({B, y_ * y_, r_ * r_});
    auto c = blocks.matmul(V_);  // row p: (V_smallᵀ b_p)ᵀ
    return torch::cat({c.select(2, 0), c.slice(2, 1).reshape({B, -1})}, 1);
  }
  torch::Tensor V(const torch::Tensor& v) const override {
    const int64_t B = v.size(0), P = y_ * y_;
    auto c = torch::cat({v.slice(1, 0, P).unsqueeze(2), v.slice(1, P).reshape({B, P, r_ * r_ - 1})}, 2);
    auto blocks = c.matmul(V_.t());
    return blocks.reshape({B, y_, y_, r_, r_}).permute({0, 1, 3, 2, 4}).reshape({B, 1, img_, img_});
  }
  torch::Tensor Ut(const torch::Tensor& y) const override { return u_ * y.flatten(1); }
  torch::Tensor U(const torch::Tensor& c) const override { return (u_ * c).reshape({c.size(0), 1, y_, y_}); }

 private:
  torch::Tensor V_;
  double u_, s_;
  int64_t img_, r_, y_;
};

// An operator with another operator's A and a given SVD view.
class WithSvd final : public op::Operator {
 public:
  WithSvd(std::shared_ptr<op::Operator> A, std::shared_ptr<const op::SvdView> svd)
      : Operator(A->in_shape(), A->out_shape()), A_(std::move(A)), svd_(std::move(svd)) {}
  std::string name() const override { return A_->name(); }
  std::string spec() const override { return A_->spec(); }
  torch::Tensor apply(const torch::Tensor& x) const override { return A_->apply(x); }
  torch::Tensor adjoint(const torch::Tensor& y) const override { return A_->adjoint(y); }
  std::shared_ptr<const op::SvdView> svd() const override { return svd_; }

 private:
  std::shared_ptr<op::Operator> A_;
  std::shared_ptr<const op::SvdView> svd_;
};

// A = U diag(s) Vᵀ on x, from the view.
torch::Tensor svd_apply(const op::SvdView& v, const torch::Tensor& x) {
  auto s = v.singular_values().to(torch::kFloat32);
  return v.U(s * v.Vt(x).narrow(1, 0, s.size(0)));
}

// Runs ddrm on the fixture with `op` and checks every step's x̂0 and the final estimate.
void expect_parity(const ParityFixture& f, std::shared_ptr<op::Operator> A, const torch::Tensor& y, double tol) {
  const auto& s = f.meta["settings"];
  Problem problem;
  problem.op = std::move(A);
  problem.channel = channel::make_channel("gaussian:sigma=" + std::to_string(s["sigma_0"].get<double>()));
  std::vector<torch::Tensor> x0;
  const auto r = run_with_draws(f, "ddrm",
                                {"steps=" + std::to_string(s["timesteps"].get<int>()),
                                 "eta=" + std::to_string(s["eta"].get<double>()),
                                 "eta_b=" + std::to_string(s["etaB"].get<double>()),
                                 "sigma=" + std::to_string(s["sigma_0"].get<double>()), "draws=authors"},
                                problem, y, *parity_prior().denoiser, &x0);
  expect_replay(f, x0, "traj_x0", r.estimate, tol, tol, "; per step:" + per_step_errors(x0, f.at("traj_x0")));
}

TEST(ParityDdrm, BoxInpaintingMatchesAuthorsLoop) {
  set_threads(1);
  const ParityFixture f = load_parity("ddrm");
  const auto A = box_mask(f.meta["settings"]["operator"]["box"]);
  // Their operator is ours: same y layout, same singular values, same Vᵀ (order included).
  const auto& probe = f.at("probe");
  EXPECT_TRUE(torch::equal(A->apply(probe), f.at("H_probe")));
  const auto svd = A->svd();
  EXPECT_TRUE(torch::equal(svd->singular_values().to(torch::kFloat32), f.at("singulars")));
  EXPECT_TRUE(torch::equal(svd->Vt(probe), f.at("Vt_probe")));
  // measured: max per-step 1.5e-5 (step 0; falls to 3.7e-7 by step 6), final 1.0e-6 (docs/parity/ddrm.md)
  expect_parity(f, A, f.at("y"), 1e-4);
}

TEST(ParityDdrm, SuperResolutionMatchesAuthorsLoop) {
  set_threads(1);
  const ParityFixture f = load_parity("ddrm-sr");
  const int64_t ratio = f.meta["settings"]["operator"]["ratio"].get<int64_t>();
  const auto A = op::make_operator("sr-avg:factor=" + std::to_string(ratio), {1, 32, 32}, 0);
  const auto& probe = f.at("probe");
  // Same A (block average) and the same singular values, in the same (descending, all equal) order.
  EXPECT_LE(relative_error(A->apply(probe), f.at("H_probe")), 1e-6);
  const auto ours = A->svd();
  EXPECT_LE(relative_error(ours->singular_values(), f.at("singulars")), 1e-6);
  EXPECT_LE(relative_error(svd_apply(*ours, probe), f.at("H_probe")), 1e-5);
  // Their basis, as TheirSrBasis reads it, is their Vᵀ and gives the same A.
  const auto theirs = std::make_shared<TheirSrBasis>(f.at("V_small"), f.at("U_small").item<double>(),
                                                     f.at("singulars")[0].item<double>(), 32, ratio);
  EXPECT_LE(relative_error(theirs->Vt(probe), f.at("Vt_probe")), 1e-6);
  EXPECT_LE(relative_error(theirs->V(theirs->Vt(probe)), probe), 1e-6);
  EXPECT_LE(relative_error(svd_apply(*theirs, probe), f.at("H_probe")), 1e-5);
  // measured: max per-step 2.2e-5 (step 0; falls to 2.5e-7 by step 6), final 8.0e-7 (docs/parity/ddrm.md)
  expect_parity(f, std::make_shared<WithSvd>(A, theirs), f.at("y").reshape({-1, 1, 32 / ratio, 32 / ratio}), 1e-4);
}

}  // namespace
}  // namespace tweedie::test
