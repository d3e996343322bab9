// Your own forward model in C++ (docs/extending.md): a 2x2 block average written as an
// op::Operator subclass and enrolled under the name "box2", so problem specs, `tweedie` configs
// run by this program and every solver can use it. It is the same map as the built-in
// sr-avg:factor=2, so DPS gives the same estimate with either, bit for bit; DDRM needs the
// operator's SVD (op::SvdView), which Box2 does not give, and says so in one line.
// Built from an installed tweedie (find_package) by tests/install/test_install.py.
#include <tweedie/core/data_dir.h>
#include <tweedie/core/error.h>
#include <tweedie/core/runtime.h>
#include <tweedie/data/reference.h>
#include <tweedie/diffusion/prior.h>
#include <tweedie/metric/psnr.h>
#include <tweedie/op/registry.h>
#include <tweedie/problem.h>
#include <tweedie/solve/solver.h>

#include <cstdio>
#include <memory>

// A: [B, C, H, W] -> [B, C, H/2, W/2], the mean of each 2x2 block. Linear, so it gives Aᵀ too;
// everything else (AᵀA, vector-Jacobian products, checks) the base class derives.
class Box2 : public tweedie::op::Operator {
 public:
  explicit Box2(const tweedie::op::Shape& in) : Operator(in, {in.at(0), in.at(1) / 2, in.at(2) / 2}) {}
  std::string name() const override { return "box2"; }
  std::string spec() const override { return "box2"; }  // what rebuilds it: no parameters
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);  // a one-line InputError for a wrongly shaped x
    return torch::avg_pool2d(x, 2);
  }
  // Aᵀy: each value spread over its block, divided by 4 (⟨A x, y⟩ = ⟨x, Aᵀy⟩)
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    return y.repeat_interleave(2, 2).repeat_interleave(2, 3) / 4.0;
  }
};

int main() {
  using namespace tweedie;
  set_threads(0);
  op::operator_registry().add({"box2", "2x2 block average (examples/cpp/own_operator.cpp)", /*params=*/{},
                               [](const Params&, const op::OpContext& c) -> std::shared_ptr<op::Operator> {
                                 if (c.in_shape.size() != 3 || c.in_shape[1] % 2 || c.in_shape[2] % 2)
                                   throw InputError("box2: needs images [C, H, W] with even H and W");
                                 return std::make_shared<Box2>(c.in_shape);
                               },
                               /*examples=*/{"box2"}});

  diffusion::Prior prior = diffusion::load_prior(kDefaultPrior);
  torch::Tensor x = data::load_reference("fashion-mnist:test:0-3");
  Problem mine = make_problem("box2", "gaussian:sigma=0.05", {1, 32, 32}, /*seed=*/0);
  Problem builtin = make_problem("sr-avg:factor=2", "gaussian:sigma=0.05", {1, 32, 32}, /*seed=*/0);
  torch::Tensor y = simulate(mine, x);
  std::printf("measurements equal to sr-avg's: %s\n", torch::equal(y, simulate(builtin, x)) ? "yes" : "no");

  // Any solver by name, with its options as KEY=VALUE (as `tweedie solve --set`)
  auto run = [&](const Problem& problem, const char* method, std::vector<std::string> set) {
    torch::Generator gen = make_generator(0);
    solve::SolveContext ctx{problem, y, *prior.denoiser, gen, /*monitor=*/{}};
    return solve::solver_registry().find(method).make.run(solve::resolve_solver(method, set), ctx);
  };
  solve::Result a = run(mine, "dps", {"steps=50", "zeta=0.3"});
  solve::Result b = run(builtin, "dps", {"steps=50", "zeta=0.3"});
  std::printf("dps with box2: mean PSNR %.2f dB, NFE %lld; estimates equal to sr-avg's: %s\n",
              metric::psnr(a.estimate, x).mean().item<double>(), static_cast<long long>(a.cost.nfe),
              torch::equal(a.estimate, b.estimate) ? "yes" : "no");
  try {
    run(mine, "ddrm", {"steps=20"});
  } catch (const InputError& e) {
    std::printf("ddrm with box2: refused: %s\n", e.what());
  }
  return 0;
}
