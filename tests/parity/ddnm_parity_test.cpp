// DDNM+ against the authors' loops (tests/parity/gen/ddnm.py; wyhuai/DDNM @ 00b58ea), without
// time travel, 10 steps (T_sampling), η = 0.85, σ_y = 0.05, box inpainting of two Fashion-MNIST
// images, on the converged prior:
//   ddnm      Diffusion.simplified_ddnm_plus (A z = z ⊙ mask, A⁺ = A; noiseless y; one image per
//             loop, as their method requires; the draws stacked over the two images) against our
//             path=simplified, whose A⁺ comes from box-mask's SVD view.
//   ddnm-svd  ddnm_plus_diffusion with their svd_operators Inpainting (1 channel), y = A x + σ_y n,
//             against our path=svd with draws=authors (ddnm.h: z over the image, then Vᵀz).
// Our box-mask is their operator in both: the same kept pixels, the same y layout and, for
// their Inpainting, the same Vᵀ (kept first, then missing, in index order).
#include "parity/parity_support.h"

#include "tweedie/channel/channel.h"

namespace tweedie::test {
namespace {

void expect_parity(const ParityFixture& f, std::shared_ptr<op::Operator> A, const torch::Tensor& y,
                   const std::vector<std::string>& extra, double tol) {
  const auto& s = f.meta["settings"];
  const double sigma = s["sigma_y"].get<double>();
  Problem problem;
  problem.op = std::move(A);
  problem.channel = channel::make_channel("gaussian:sigma=" + std::to_string(sigma));
  std::vector<std::string> set = {"steps=" + std::to_string(s["T_sampling"].get<int>()),
                                  "eta=" + std::to_string(s["eta"].get<double>()), "sigma=" + std::to_string(sigma)};
  set.insert(set.end(), extra.begin(), extra.end());
  std::vector<torch::Tensor> x0;
  const auto r = run_with_draws(f, "ddnm", set, problem, y, *parity_prior().denoiser, &x0);
  expect_replay(f, x0, "traj_x0", r.estimate, tol, tol, "; per step:" + per_step_errors(x0, f.at("traj_x0")));
}

TEST(ParityDdnm, SimplifiedInpaintingMatchesAuthorsLoop) {
  set_threads(1);
  const ParityFixture f = load_parity("ddnm");
  const auto A = box_mask(f.meta["settings"]["operator"]["box"]);
  // Their A z = z ⊙ mask and A⁺ = A: ours keeps the same pixels, and our A⁺A (zero-filled) is
  // their Ap(A(x)); their image-shaped y holds our y at the kept pixels and 0 elsewhere.
  const torch::Tensor mask = f.at("mask").reshape({1, 1, 32, 32});
  const torch::Tensor probe = torch::randn({2, 1, 32, 32});
  EXPECT_TRUE(torch::equal(A->adjoint(A->apply(probe)), probe * mask));
  const torch::Tensor y = A->apply(f.at("y"));
  EXPECT_TRUE(torch::equal(A->adjoint(y), f.at("y")));
  // measured: max per-step 2.0e-5 (step 0; falls to 2.8e-7 by step 7), final 3.5e-6 (docs/parity/ddnm.md)
  expect_parity(f, A, y, {"path=simplified"}, 1e-4);
}

TEST(ParityDdnm, SvdInpaintingMatchesAuthorsLoop) {
  set_threads(1);
  const ParityFixture f = load_parity("ddnm-svd");
  const auto A = box_mask(f.meta["settings"]["operator"]["box"]);
  const auto& probe = f.at("probe");
  EXPECT_TRUE(torch::equal(A->apply(probe), f.at("A_probe")));
  EXPECT_TRUE(torch::equal(A->svd()->Vt(probe), f.at("Vt_probe")));
  // measured: max per-step 2.5e-5 (step 0; falls to 2.9e-7 by step 8), final 1.0e-6 (docs/parity/ddnm.md)
  expect_parity(f, A, f.at("y"), {"path=svd", "draws=authors"}, 1e-4);
}

}  // namespace
}  // namespace tweedie::test
