// GD, ScaledGD and ScaledGD(λ) for matrix sensing, completion and robust PCA. The maths and the
// papers are in matrix.h; the official MATLAB scripts (Titan-Tong/ScaledGD matrix/MS.m, MC.m,
// RPCA.m) were read for the defaults and the loss scalings (η/p for completion, η/σ₁ for GD).
#include "tweedie/lowrank/matrix.h"

#include <algorithm>
#include <cmath>

namespace tweedie::lowrank {
namespace {

using torch::Tensor;

double safe_ratio(double a, double b) { return b > 0 ? a / b : a; }

Tensor orth(const Tensor& X) { return std::get<0>(torch::linalg_qr(X)); }

// ∇_L f, ∇_R f at X = L Rᵀ, and the data misfit there relative to the data norm.
struct Gradient {
  Tensor dL, dR;
  double residual = 0;
};

// Sensing: ∇_X f = 𝒜*(𝒜(X) − y); PSD: f = ¼‖𝒜(X Xᵀ) − y‖² has ∇_X f = sym(𝒜*(𝒜(X Xᵀ) − y)) X.
Gradient sensing_gradient(const MatrixProblem& p, const Tensor& L, const Tensor& R, double data_norm) {
  auto z = p.A.mv(L.mm(R.t()).reshape(-1)) - p.y;   // 𝒜(L Rᵀ) − y
  auto G = p.A.t().mv(z).view({p.n1, p.n2});         // 𝒜*(z)
  if (p.symmetric) G = 0.5 * (G + G.t());
  return {G.mm(R), G.t().mm(L), safe_ratio(z.norm().item<double>(), data_norm)};
}

// Completion (MC.m): ∇_L f = (1/p) P_Ω(L Rᵀ − Y) R, ∇_R f = (1/p) P_Ω(L Rᵀ − Y)ᵀ L, evaluated only
// on Ω: the residual z_ij = ⟨L_i, R_j⟩ − Y_ij from gathered rows, then two sparse (CSR) products.
// O(|Ω| r) time and memory; the n1×n2 matrix is never formed.
Gradient completion_gradient(const MatrixProblem& p, const Tensor& L, const Tensor& R, double data_norm) {
  auto z = sampled_product(L, R, p.rows, p.cols) - p.values;     // (L Rᵀ − Y)_ij on Ω
  auto dL = observed_csr(p, z).mm(R) / p.ratio;                  // (1/p) P_Ω(L Rᵀ − Y) R
  auto dR = observed_csr_transpose(p, z).mm(L) / p.ratio;        // (1/p) P_Ω(L Rᵀ − Y)ᵀ L
  return {dL, dR, safe_ratio(z.norm().item<double>(), data_norm)};
}

// Robust PCA (RPCA.m): S = T_2α(Y − L Rᵀ), then ∇_X f = L Rᵀ + S − Y.
Gradient rpca_gradient(const MatrixProblem& p, const Tensor& L, const Tensor& R, double data_norm) {
  auto X = L.mm(R.t());
  auto E = X + sparsify(p.Y - X, 2 * p.outliers) - p.Y;  // X + T_2α(Y − X) − Y
  return {E.mm(R), E.t().mm(L), safe_ratio(E.norm().item<double>(), data_norm)};
}

Gradient gradient(const MatrixProblem& p, const Tensor& L, const Tensor& R, double data_norm) {
  switch (p.task) {
    case Task::sensing: return sensing_gradient(p, L, R, data_norm);
    case Task::completion: return completion_gradient(p, L, R, data_norm);
    default: return rpca_gradient(p, L, R, data_norm);
  }
}

double observations_norm(const MatrixProblem& p) {
  const Tensor& d = p.task == Task::sensing ? p.y : p.task == Task::completion ? p.values : p.Y;
  return d.norm().item<double>();
}

// Scaled projection P_B (JMLR 2021, matrix completion): L_i ← L_i min(1, B_L/‖L_i Rᵀ‖), R_j ← R_j min(1, B_R/‖R_j Lᵀ‖),
// both from the unprojected pair; ‖L_i Rᵀ‖² = L_i (RᵀR) L_iᵀ costs O(n r²).
void scaled_projection(Tensor& L, Tensor& R, double bound_left, double bound_right) {
  auto row_l = (L.mm(R.t().mm(R)) * L).sum(1).clamp_min(0).sqrt();
  auto row_r = (R.mm(L.t().mm(L)) * R).sum(1).clamp_min(0).sqrt();
  L = L * (bound_left / row_l).clamp_max(1).unsqueeze(1);
  R = R * (bound_right / row_r).clamp_max(1).unsqueeze(1);
}

// G P⁻¹ for a symmetric r×r P (P Wᵀ = Gᵀ). Throws c10::Error when P is singular.
Tensor right_solve(const Tensor& G, const Tensor& P) { return torch::linalg_solve(P, G.t()).t(); }

void check_options(const MatrixProblem& p, const MatrixOptions& o, int64_t fit_rank) {
  require(o.eta > 0 && std::isfinite(o.eta), "step size eta must be > 0");
  require(fit_rank >= 1 && fit_rank <= std::min(p.n1, p.n2),
          "fitted rank " + std::to_string(fit_rank) + " must be between 1 and min(n1, n2) = " +
              std::to_string(std::min(p.n1, p.n2)));
  require(o.init_scale > 0 && o.lambda >= 0 && o.lambda_factor >= 0 && o.sigma_max >= 0 && o.projection >= 0,
          "init scale must be > 0; lambda, lambda factor, sigma max and projection must be >= 0");
  require(o.projection == 0 || p.task == Task::completion, "the scaled projection applies to completion only");
  require(o.spectral.oversample >= 0 && o.spectral.power_iterations >= 0, "spectral options must be >= 0");
  validate(o.stop);
}

MatrixResult run(const MatrixProblem& p, const MatrixStart& start, const MatrixOptions& o, const Monitor& monitor,
                 Clock::time_point t0) {
  validate(p);
  MatrixResult res;
  Tensor L = start.left, R = p.symmetric ? start.left : start.right;
  int64_t r = L.size(1);
  check_options(p, o, r);
  require(L.size(0) == p.n1 && R.size(0) == p.n2 && R.size(1) == r, "start factors do not fit the problem");
  res.sigma_max = o.sigma_max > 0 ? o.sigma_max : start.sigma_max;
  require(o.method != Method::gd || res.sigma_max > 0, "GD needs sigma max > 0 (the spectral matrix is zero)");
  if (o.method == Method::scaledgd_lambda) {
    res.lambda = o.lambda > 0 ? o.lambda : o.lambda_factor * start.sigma_r;
    require(res.lambda > 0, "ScaledGD(lambda) needs lambda > 0 (give --lambda)");
  }
  res.spectrum = start.spectrum;
  double bound_left = o.projection * std::sqrt(static_cast<double>(p.rank) / p.n1) * res.sigma_max;
  double bound_right = o.projection * std::sqrt(static_cast<double>(p.rank) / p.n2) * res.sigma_max;
  if (o.projection > 0) scaled_projection(L, R, bound_left, bound_right);  // the start is projected too
  const double dnorm = observations_norm(p);
  const Tensor I = torch::eye(r, L.options());
  Tensor L_prev, R_prev;
  for (int64_t t = 0;; ++t) {
    Gradient g = gradient(p, L, R, dnorm);
    IterationStats s;
    s.iteration = t;
    s.error = relative_error(L, R, p.truth);
    s.residual = g.residual;
    if (t > 0) s.change = safe_ratio(factored_distance(L, R, L_prev, R_prev), factored_norm(L, R));
    s.seconds = seconds_since(t0);
    res.stop = record(res.history, s, monitor, o.stop);
    if (!res.stop.empty()) break;
    L_prev = L;
    R_prev = R;
    if (o.method == Method::gd) {
      double h = o.eta / res.sigma_max;
      L = L - h * g.dL;  // L⁺ = L − (η/σ₁) ∇_L f
      R = R - h * g.dR;  // R⁺ = R − (η/σ₁) ∇_R f
    } else {
      try {
        auto PL = L.t().mm(L) + res.lambda * I, PR = R.t().mm(R) + res.lambda * I;
        auto L_next = L - o.eta * right_solve(g.dL, PR);  // L⁺ = L − η ∇_L f (RᵀR + λI)⁻¹  (λ = 0: ScaledGD)
        auto R_next = R - o.eta * right_solve(g.dR, PL);  // R⁺ = R − η ∇_R f (LᵀL + λI)⁻¹
        L = L_next;
        R = R_next;
      } catch (const c10::Error&) {
        res.stop = "singular-preconditioner";
        break;
      }
    }
    if (p.symmetric) R = L;  // PSD: one factor, X⁺ = X − η ∇f(X) (XᵀX + λI)⁻¹
    if (o.projection > 0) scaled_projection(L, R, bound_left, bound_right);  // (L, R) ← P_B(L⁺, R⁺)
  }
  res.left = L;
  res.right = R;
  res.iterations = res.history.back().iteration;
  res.seconds = seconds_since(t0);
  return res;
}

}  // namespace

nlohmann::json to_json(const MatrixOptions& o) {
  return {{"method", method_name(o.method)},
          {"eta", o.eta},
          {"fit_rank", o.rank},
          {"init", init_name(o.init)},
          {"init_scale", o.init_scale},
          {"lambda", o.lambda},
          {"lambda_factor", o.lambda_factor},
          {"sigma_max", o.sigma_max},
          {"projection", o.projection},
          {"max_iterations", o.stop.max_iterations},
          {"tolerance", o.stop.tolerance},
          {"change_tolerance", o.stop.change_tolerance},
          {"divergence", o.stop.divergence},
          {"svd_oversample", o.spectral.oversample},
          {"svd_power_iterations", o.spectral.power_iterations}};
}

Svd top_svd(const std::function<Tensor(const Tensor&)>& times, const std::function<Tensor(const Tensor&)>& transpose_times,
            int64_t n1, int64_t n2, int64_t k, const SpectralOptions& o, torch::Generator& gen,
            const torch::TensorOptions& like) {
  int64_t l = std::min(k + o.oversample, std::min(n1, n2));
  auto omega = torch::randn({n2, l}, gen, torch::TensorOptions().dtype(torch::kFloat64)).to(like);
  auto Q = orth(times(omega));                                                   // Q spans M Ω
  for (int64_t q = 0; q < o.power_iterations; ++q) Q = orth(times(orth(transpose_times(Q))));  // (M Mᵀ)^q M Ω
  auto B = transpose_times(Q).t();                                               // B = Qᵀ M, l × n2
  auto [Ub, S, Vh] = torch::linalg_svd(B, false);
  return {Q.mm(Ub).slice(1, 0, k), S.slice(0, 0, k), Vh.slice(0, 0, k).t()};
}

Svd top_svd(const Tensor& M, int64_t k, const SpectralOptions& o, torch::Generator& gen) {
  if (M.numel() <= o.full_svd_limit || std::min(M.size(0), M.size(1)) <= k + o.oversample) {
    auto [U, S, Vh] = torch::linalg_svd(M, false);
    return {U.slice(1, 0, k), S.slice(0, 0, k), Vh.slice(0, 0, k).t()};
  }
  return top_svd([&](const Tensor& B) { return M.mm(B); }, [&](const Tensor& B) { return M.t().mm(B); }, M.size(0),
                 M.size(1), k, o, gen, M.options());
}

torch::Tensor sparsify(const Tensor& Z, double alpha) {
  int64_t k_row = static_cast<int64_t>(std::floor(alpha * Z.size(1) + 1e-9));
  int64_t k_col = static_cast<int64_t>(std::floor(alpha * Z.size(0) + 1e-9));
  if (k_row == 0 || k_col == 0) return torch::zeros_like(Z);
  auto a = Z.abs();
  auto row_kth = std::get<0>(a.topk(k_row, 1)).select(1, k_row - 1).unsqueeze(1);  // k-th largest |Z_i·|
  auto col_kth = std::get<0>(a.topk(k_col, 0)).select(0, k_col - 1).unsqueeze(0);  // k-th largest |Z_·j|
  return Z * (a >= row_kth).logical_and(a >= col_kth);
}

MatrixStart initialize(const MatrixProblem& p, const MatrixOptions& o, torch::Generator& gen) {
  validate(p);
  int64_t fit = o.rank > 0 ? o.rank : p.rank;
  check_options(p, o, fit);
  int64_t k = std::max(fit, p.rank);
  MatrixStart st;
  Svd svd;
  if (p.task == Task::completion && p.n1 * p.n2 > o.spectral.full_svd_limit) {
    // Y/p as a sparse map (MC.m: svds(Y/p, r)).
    auto M = observed_csr(p, p.values / p.ratio), Mt = observed_csr_transpose(p, p.values / p.ratio);
    svd = top_svd([&](const Tensor& B) { return M.mm(B); }, [&](const Tensor& B) { return Mt.mm(B); }, p.n1, p.n2, k,
                  o.spectral, gen, p.values.options());
  } else {
    Tensor M;
    if (p.task == Task::sensing) M = p.A.t().mv(p.y).view({p.n1, p.n2});        // 𝒜*(y) (MS.m)
    else if (p.task == Task::completion) M = observed_matrix(p) / p.ratio;      // Y/p (MC.m)
    else M = p.Y - sparsify(p.Y, p.outliers);                                   // Y − T_α(Y) (RPCA.m)
    if (p.symmetric) {
      // Top eigenpairs of sym(𝒜*(y)); X₀ = U Λ₊^{1/2}.
      auto [evals, evecs] = torch::linalg_eigh(0.5 * (M + M.t()));
      svd = {evecs.flip(1).slice(1, 0, k), evals.flip(0).slice(0, 0, k), Tensor()};
      svd.V = svd.U;
    } else {
      svd = top_svd(M, k, o.spectral, gen);
    }
  }
  auto values = svd.S.to(torch::kCPU, torch::kFloat64).contiguous();
  st.spectrum.assign(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  st.sigma_max = std::abs(st.spectrum.front());
  st.sigma_r = st.spectrum[static_cast<size_t>(p.rank - 1)];
  if (o.init == Init::spectral) {
    auto root = svd.S.slice(0, 0, fit).clamp_min(0).sqrt();
    st.left = svd.U.slice(1, 0, fit) * root;   // L₀ = U₀ Σ₀^{1/2}
    st.right = svd.V.slice(1, 0, fit) * root;  // R₀ = V₀ Σ₀^{1/2}
  } else {
    // X₀ = α N(0, 1/n) entrywise (ICML 2023), drawn in float64 on the CPU.
    auto draw = [&](int64_t n) {
      return (torch::randn({n, fit}, gen, torch::TensorOptions().dtype(torch::kFloat64)) *
              (o.init_scale / std::sqrt(static_cast<double>(n))))
          .to(p.device(), p.dtype());
    };
    st.left = draw(p.n1);
    st.right = p.symmetric ? st.left : draw(p.n2);
  }
  return st;
}

MatrixResult iterate(const MatrixProblem& p, const MatrixStart& start, const MatrixOptions& o, const Monitor& monitor) {
  return run(p, start, o, monitor, Clock::now());
}

MatrixResult solve_matrix(const MatrixProblem& p, const MatrixOptions& o, torch::Generator& gen, const Monitor& monitor) {
  return solve_timed([&] { return initialize(p, o, gen); },
                     [&](const auto& start, Clock::time_point t0) { return run(p, start, o, monitor, t0); });
}

}  // namespace tweedie::lowrank
