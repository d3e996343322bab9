// 1-bit compressed sensing of Fashion-MNIST with the shipped diffusion prior (seed 001's setting):
// y = sign(A x + noise) with A Gaussian, m = 512 of n = 1024, recovered by Diff-OneBit.
// Built from an installed tweedie (find_package) by tests/install/test_install.py.
#include <tweedie/core/data_dir.h>
#include <tweedie/core/runtime.h>
#include <tweedie/data/reference.h>
#include <tweedie/diffusion/prior.h>
#include <tweedie/metric/psnr.h>
#include <tweedie/problem.h>
#include <tweedie/solve/diff_onebit.h>

#include <cstdio>

int main() {
  using namespace tweedie;
  set_threads(0);                                                 // every core
  diffusion::Prior prior = diffusion::load_prior(kDefaultPrior);  // found in the data directory
  torch::Tensor x = data::load_reference("fashion-mnist:test:0-3");   // [4, 1, 32, 32] in [-1, 1]

  Problem problem = make_problem("gaussian:m=512", "sign:sigma=0.3", {1, 32, 32}, /*seed=*/0);
  torch::Tensor y = simulate(problem, x);                         // 1-bit measurements

  torch::Generator gen = make_generator(0);
  solve::SolveContext ctx{problem, y, *prior.denoiser, gen, /*monitor=*/{}};
  solve::Result r = solve::diff_onebit(ctx, solve::DiffOneBitOptions{});

  torch::Tensor p = metric::psnr(r.estimate, x);
  std::printf("diff-onebit on %lld images: mean PSNR %.2f dB, NFE %lld, %.1f s\n",
              static_cast<long long>(x.size(0)), p.mean().item<double>(),
              static_cast<long long>(r.cost.nfe), r.cost.seconds);
  return 0;
}
