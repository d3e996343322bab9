// DPnP against the authors' loops (tests/parity/gen/dpnp.py; x1xu/diffusion-plug-and-play
// @ eb6b8e3): ddim-pnp (PCS then the deterministic DDS on gen_schedule's grid) and ddpm-pnp (the
// stochastic DDS, then PCS, ending on a DDS), with their 'mala' PCS cut to 4 steps, on 4x
// super-resolution (their SuperResolutionOperator, util.resizer's antialiased bicubic = our
// sr-bicubic) of two Fashion-MNIST images with σ = 0.05 noise, on the converged prior. Their
// script runs one image per loop call (MALA's step uses the batch's summed misfit); our batch of
// two with per-item misfits is the same computation (the fixtures stack each draw over the calls).
// Also: our dds_grid=code equals gen_schedule's grid at 27 values of η.
#include "parity/parity_support.h"

#include <sstream>

#include "tweedie/problem.h"
#include "tweedie/solve/dpnp.h"

namespace tweedie::test {
namespace {

// Replays fixture `name` through dpnp with the authors' settings and checks every step (≤ step_tol)
// and the final sample (≤ 1e-4).
void replay(const std::string& name, const std::string& dds, double step_tol) {
  set_threads(1);
  const ParityFixture f = load_parity(name);
  const auto& s = f.meta["settings"];
  const auto& p = s["params"];
  const auto& mala = s["conditioning"]["params"];
  const int64_t factor = s["operator"]["scale_factor"].get<int64_t>();

  // their operator is our sr-bicubic: A(probe) to float32 rounding
  Problem problem = make_problem("sr-bicubic:factor=" + std::to_string(factor),
                                 "gaussian:sigma=" + exact(s["noise"]["sigma"].get<double>()), {1, 32, 32}, 0);
  const auto& probe = f.at("probe");
  const auto& A_probe = f.at("A_probe");
  const double op_err = (problem.op->apply(probe) - A_probe).abs().max().item<double>();
  EXPECT_LE(op_err, 1e-6 * A_probe.abs().max().item<double>()) << "our sr-bicubic is not their Resizer";

  std::vector<torch::Tensor> x0;
  const auto r = run_with_draws(
      f, "dpnp",
      {"dds=" + dds, "dds_grid=code", "order=auto", "likelihood=linear", "clip_denoised=true",
       "eta_max=" + exact(p["eta_max"].get<double>()), "eta_min=" + exact(p["eta_min"].get<double>()),
       "k_start=" + std::to_string(p["k_start"].get<int64_t>()), "k=" + std::to_string(p["k"].get<int64_t>()),
       "pcs_steps=" + std::to_string(s["conditioning"]["pcs_steps"].get<int64_t>()),
       "pcs_scale=" + exact(mala["scale"].get<double>()), "sigma=" + exact(mala["multiplier"].get<double>()),
       "reg=" + exact(mala["reg"].get<double>())},
      problem, f.at("y"), *parity_prior().denoiser, &x0);
  std::ostringstream note;
  note << ", operator max abs error " << op_err;
  expect_replay(f, x0, "traj_x0", r.estimate, step_tol, 1e-4, note.str());
}

TEST(ParityDpnp, DeterministicDdsPnpMatchesAuthorsLoop) {
  // measured: 5.9e-7 at step 1 (final 5.5e-7); docs/parity/dpnp.md
  replay("dpnp-ddim", "ddim", 1e-5);
}

TEST(ParityDpnp, StochasticDdsPnpMatchesAuthorsLoop) {
  // measured: 1.5e-7 at step 1 (final 1.5e-7); docs/parity/dpnp.md
  replay("dpnp-ddpm", "ddpm", 1e-5);
}

TEST(ParityDpnp, CodeGridIsGenSchedule) {
  const ParityFixture f = load_parity("dpnp-ddim");
  const auto etas = f.meta["grids"]["etas"].get<std::vector<double>>();
  const auto lengths = f.meta["grids"]["lengths"].get<std::vector<int64_t>>();
  const torch::Tensor abp = f.at("grid_abp").to(torch::kFloat64), t = f.at("grid_t").to(torch::kInt64);
  const auto& base = parity_prior().denoiser->base();
  int64_t at = 0, nfe_code = 0, nfe_ratio = 0;
  for (size_t e = 0; e < etas.size(); ++e) {
    SCOPED_TRACE("eta " + exact(etas[e]));
    const auto g = solve::dpnp_ddim_grid(base, etas[e], solve::DpnpOptions::Grid::kCode);
    ASSERT_EQ(static_cast<int64_t>(g.abp.size()), lengths[e]);
    ASSERT_EQ(g.t.size(), g.abp.size());
    const auto ours_abp = torch::tensor(g.abp, torch::kFloat64);
    const auto ours_t = torch::tensor(g.t, torch::kInt64);
    const auto theirs_abp = abp.slice(0, at, at + lengths[e]);
    // the stored values are float32: equal to its rounding (one unit, 6e-8, where numpy's exp and
    // ours differ in the last bit of a double at a float32 rounding boundary)
    EXPECT_TRUE(torch::allclose(ours_abp.to(torch::kFloat32).to(torch::kFloat64), theirs_abp, 1.3e-7, 0))
        << ((ours_abp - theirs_abp).abs() / theirs_abp).max().item<double>();
    EXPECT_TRUE(torch::equal(ours_t, t.slice(0, at, at + lengths[e])));
    if (e < 16) {  // the default schedule's 16 values of η
      nfe_code += lengths[e];
      nfe_ratio += static_cast<int64_t>(solve::dpnp_ddim_grid(base, etas[e], solve::DpnpOptions::Grid::kRatio).abp.size());
    }
    at += lengths[e];
  }
  EXPECT_EQ(at, abp.size(0));
  // the default schedule's NFE: 2423 on the code's grid, 2369 on ours (dpnp.h)
  EXPECT_EQ(nfe_code, 2423);
  EXPECT_EQ(nfe_ratio, 2369);
}

}  // namespace
}  // namespace tweedie::test
