// Tucker tensor completion by GD and ScaledGD; the maths and the papers are in tucker.h.
#include "tweedie/lowrank/tucker.h"

#include <cmath>

namespace tweedie::lowrank {
namespace {

using torch::Tensor;

// The largest σ₁ over the core's three unfoldings (TC.m: sv_max, there of the true core).
double core_sigma_max(const Tensor& S) {
  double best = 0;
  for (int64_t k = 0; k < 3; ++k) best = std::max(best, torch::linalg_svdvals(unfold(S, k)).max().item<double>());
  return best;
}

TuckerResult run(const TuckerProblem& p, const TuckerFactors& start, const TuckerOptions& o, const Monitor& monitor,
                 Clock::time_point t0) {
  validate(p);
  validate(o.stop);
  require(o.method != Method::scaledgd_lambda, "tucker completion supports the methods gd and scaledgd");
  require(o.eta > 0 && std::isfinite(o.eta) && o.sigma_max >= 0, "eta must be > 0 and sigma max >= 0");
  TuckerResult res;
  Tensor S = start.core;
  auto U = start.factors;
  res.sigma_max = o.sigma_max > 0 ? o.sigma_max : core_sigma_max(S);
  require(o.method != Method::gd || res.sigma_max > 0, "GD needs sigma max > 0 (the start core is zero)");
  const double y_norm = p.Y.norm().item<double>();
  const double truth_norm = p.truth.defined() ? p.truth.norm().item<double>() : 0;
  const double h = o.eta / p.ratio;
  Tensor X_prev;
  for (int64_t t = 0;; ++t) {
    Tensor X = tucker_product(S, U);
    Tensor Z = p.mask * X - p.Y;  // Z = P_Ω(X) − Y
    IterationStats s;
    s.iteration = t;
    double x_norm = X.norm().item<double>();
    if (p.truth.defined()) s.error = (X - p.truth).norm().item<double>() / truth_norm;
    s.residual = Z.norm().item<double>() / (y_norm > 0 ? y_norm : 1);
    if (t > 0) s.change = (X - X_prev).norm().item<double>() / (x_norm > 0 ? x_norm : 1);
    s.seconds = seconds_since(t0);
    res.stop = record(res.history, s, monitor, o.stop);
    if (!res.stop.empty()) break;
    X_prev = X;
    // Partial contractions of Z with the factors, shared between the modes.
    Tensor T0 = mode_product(Z, U[0].t(), 0);                   // Z ×₁ U₁ᵀ
    Tensor T1 = mode_product(Z, U[1].t(), 1);                   // Z ×₂ U₂ᵀ
    std::array<Tensor, 3> W = {mode_product(T1, U[2].t(), 2),   // Z ×₂ U₂ᵀ ×₃ U₃ᵀ
                               mode_product(T0, U[2].t(), 2),   // Z ×₁ U₁ᵀ ×₃ U₃ᵀ
                               mode_product(T0, U[1].t(), 1)};  // Z ×₁ U₁ᵀ ×₂ U₂ᵀ
    Tensor C = mode_product(W[2], U[2].t(), 2);                 // Z ×₁ U₁ᵀ ×₂ U₂ᵀ ×₃ U₃ᵀ
    std::array<Tensor, 3> gram, next;
    for (int64_t k = 0; k < 3; ++k) gram[k] = U[k].t().mm(U[k]);  // G_k = U_kᵀ U_k
    try {
      for (int64_t k = 0; k < 3; ++k) {
        Tensor ZU = unfold(W[k], k).mm(unfold(S, k).t());  // Z_(k) Ŭ_k
        if (o.method == Method::gd) {
          next[k] = U[k] - h / (res.sigma_max * res.sigma_max) * ZU;  // U_k⁺ = U_k − (η/p)/σ² Z_(k) Ŭ_k
        } else {
          // Ŭ_kᵀ Ŭ_k = (S ×_{j≠k} G_j)_(k) S_(k)ᵀ, without forming Ŭ_k.
          Tensor SG = S;
          for (int64_t j = 0; j < 3; ++j)
            if (j != k) SG = mode_product(SG, gram[j], j);
          Tensor P = unfold(SG, k).mm(unfold(S, k).t());
          next[k] = U[k] - h * torch::linalg_solve(P, ZU.t()).t();  // U_k⁺ = U_k − (η/p) Z_(k) Ŭ_k (Ŭ_kᵀŬ_k)⁻¹
        }
      }
      if (o.method == Method::gd) {
        S = S - h * C;  // S⁺ = S − (η/p) Z ×₁ U₁ᵀ ×₂ U₂ᵀ ×₃ U₃ᵀ
      } else {
        // Z ×_k ((U_kᵀU_k)⁻¹ U_kᵀ) = (Z ×_k U_kᵀ) ×_k G_k⁻¹, so S⁺ = S − (η/p) C ×₁ G₁⁻¹ ×₂ G₂⁻¹ ×₃ G₃⁻¹.
        for (int64_t k = 0; k < 3; ++k) C = mode_product(C, torch::linalg_inv(gram[k]), k);
        S = S - h * C;
      }
    } catch (const c10::Error&) {
      res.stop = "singular-preconditioner";
      break;
    }
    U = next;
  }
  res.x = {S, U};
  res.iterations = res.history.back().iteration;
  res.seconds = seconds_since(t0);
  return res;
}

}  // namespace

torch::Tensor mode_product(const Tensor& T, const Tensor& M, int64_t k) {
  return torch::tensordot(M, T, {1}, {k}).movedim(0, k);
}

torch::Tensor unfold(const Tensor& T, int64_t k) { return T.movedim(k, 0).reshape({T.size(k), -1}); }

torch::Tensor tucker_product(const Tensor& core, const std::array<Tensor, 3>& U) {
  return mode_product(mode_product(mode_product(core, U[0], 0), U[1], 1), U[2], 2);
}

nlohmann::json to_json(const TuckerOptions& o) {
  return {{"method", method_name(o.method)},         {"eta", o.eta},
          {"init", init_name(o.init)},               {"sigma_max", o.sigma_max},
          {"max_iterations", o.stop.max_iterations}, {"tolerance", o.stop.tolerance},
          {"change_tolerance", o.stop.change_tolerance}, {"divergence", o.stop.divergence}};
}

TuckerFactors tucker_initialize(const TuckerProblem& p, const TuckerOptions& o, torch::Generator& gen) {
  validate(p);
  int64_t r = p.rank;
  TuckerFactors f;
  if (o.init == Init::spectral) {
    for (int64_t k = 0; k < 3; ++k) {
      Tensor Yk = unfold(p.Y, k);
      Tensor G = Yk.mm(Yk.t());                        // G = Y_(k) Y_(k)ᵀ
      G = G - (1 - p.ratio) * torch::diag(torch::diag(G));  // debias the diagonal: G − (1 − p) diag(G)
      // Top-r eigenvectors by value (TC.m's eigs takes the largest magnitude; the debiased
      // diagonal can make noise eigenvalues negative, and those are not signal).
      f.factors[k] = std::get<1>(torch::linalg_eigh(G)).flip(1).slice(1, 0, r).contiguous();
    }
    f.core = p.Y / p.ratio;
    for (int64_t k = 0; k < 3; ++k) f.core = mode_product(f.core, f.factors[k].t(), k);  // S₀ = (Y/p) ×_k U_kᵀ
  } else {
    // TC_randinit.m: U_k ~ N(0, 1/n_k), S₀ ~ N(0, 1) ‖Y‖_F/√(p r³), drawn in float64 on the CPU.
    auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
    for (int64_t k = 0; k < 3; ++k)
      f.factors[k] = (torch::randn({p.dims[k], r}, gen, f64) / std::sqrt(static_cast<double>(p.dims[k])))
                         .to(p.Y.device(), p.Y.scalar_type());
    double scale = p.Y.norm().item<double>() / std::sqrt(p.ratio * static_cast<double>(r * r * r));
    f.core = (torch::randn({r, r, r}, gen, f64) * scale).to(p.Y.device(), p.Y.scalar_type());
  }
  return f;
}

TuckerResult tucker_iterate(const TuckerProblem& p, const TuckerFactors& start, const TuckerOptions& o,
                            const Monitor& monitor) {
  return run(p, start, o, monitor, Clock::now());
}

TuckerResult solve_tucker(const TuckerProblem& p, const TuckerOptions& o, torch::Generator& gen, const Monitor& monitor) {
  return solve_timed([&] { return tucker_initialize(p, o, gen); },
                     [&](const auto& start, Clock::time_point t0) { return run(p, start, o, monitor, t0); });
}

}  // namespace tweedie::lowrank
