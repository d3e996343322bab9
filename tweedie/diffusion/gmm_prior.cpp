#include "tweedie/diffusion/gmm_prior.h"

#include <cmath>
#include <numeric>
#include <utility>

#include <nlohmann/json.hpp>

#include "tweedie/core/error.h"
#include "tweedie/core/json_input.h"
#include "tweedie/core/memory.h"
#include "tweedie/io/safetensors.h"

namespace tweedie::diffusion {
namespace {

using torch::Tensor;

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);
const double kLog2Pi = std::log(2.0 * M_PI);

std::string shape_str(const Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// σ² as a [B] float64 column from one value or B values.
Tensor sigma2_of(const Tensor& sigma, int64_t batch, const char* who) {
  auto s = sigma.detach().to(torch::kCPU, torch::kFloat64).reshape({-1});
  require(s.numel() == 1 || s.numel() == batch,
          std::string(who) + ": expected 1 or " + std::to_string(batch) + " sigma values, got " +
              std::to_string(s.numel()));
  return s.expand({batch}).square().contiguous();
}

// What one evaluation of the noisy mixture p_σ at the active pixels yields.
struct Noisy {
  Tensor logits;       // [B, K] log π_k + log N(x̃; μ_k, Σ_k + σ²I)
  Tensor log_density;  // [B] log p_σ(x̃)
  Tensor h;            // [B, Da] Σ_k w_k (Σ_k + σ²I)⁻¹ (x̃ − μ_k), when asked for
};

// xa [B, Da] float64 (the active pixels), s2 [B] = σ². The maths is in the header.
Noisy evaluate(const GaussianMixture& g, const Tensor& xa, const Tensor& s2, bool want_h) {
  const int64_t da = g.active_pixels(), d = g.dims();
  const Tensor& U = g.basis;
  const Tensor P = at::matmul(xa, U);                                // [B, d]
  const Tensor pm = at::matmul(g.means, U);                          // [K, d]
  const Tensor a = P.unsqueeze(1) - pm.unsqueeze(0);                 // Uᵀ(x̃ − μ_k) [B, K, d]
  const Tensor q = at::einsum("bkd,kde->bke", {a, g.eigvecs});       // V_kᵀ a [B, K, d]
  const Tensor r2 = xa.square().sum(1, true) - 2 * at::matmul(xa, g.means.t()) +
                    g.means.square().sum(1).unsqueeze(0);            // ‖x̃ − μ_k‖² [B, K]
  const Tensor e2 = (r2 - a.square().sum(2)).clamp_min(0);           // energy outside span(U)
  const Tensor inv_l = 1.0 / (g.eigvals.unsqueeze(0) + s2.view({-1, 1, 1}));  // [B, K, d]
  const Tensor inv_s = 1.0 / (g.residual.unsqueeze(0) + s2.view({-1, 1}));    // [B, K]
  // log N(x̃; μ_k, Σ_k + σ²I) = −½ (Mahalanobis + log det + Da log 2π)
  const Tensor log_n = -0.5 * ((q.square() * inv_l).sum(2) + e2 * inv_s - inv_l.log().sum(2) -
                               static_cast<double>(da - d) * inv_s.log() + da * kLog2Pi);
  const Tensor logits = g.log_weights.unsqueeze(0) + log_n;         // [B, K]
  Noisy out;
  out.logits = logits;
  out.log_density = at::logsumexp(logits, 1);
  if (want_h) {
    const Tensor w = at::softmax(logits, 1);
    const Tensor c = w * inv_s;                                      // w_k / (s_k² + σ²)
    // inside span(U): U V_k diag(1/(λ+σ²)) q  minus the isotropic term's share, U (c_k a_k)
    const Tensor z = at::einsum("kde,bke->bkd", {g.eigvecs, q * inv_l}) * w.unsqueeze(2) -
                     a * c.unsqueeze(2);                             // [B, K, d]
    out.h = c.sum(1, true) * xa - at::matmul(c, g.means) + at::matmul(z.sum(1), U.t());
  }
  return out;
}

// x̃ [B, item...] → its active pixels [B, Da] float64 on the CPU.
Tensor active_of(const GaussianMixture& g, const Tensor& x_tilde, const char* who) {
  require(x_tilde.dim() >= 2 && x_tilde[0].numel() == g.item_numel(),
          std::string(who) + ": expected items of " + std::to_string(g.item_numel()) +
              " pixels, got x of shape " + shape_str(x_tilde));
  return x_tilde.to(torch::kCPU, torch::kFloat64).reshape({x_tilde.size(0), -1}).index_select(1, g.active);
}

}  // namespace

int64_t GaussianMixture::item_numel() const {
  return std::accumulate(item_shape.begin(), item_shape.end(), int64_t{1}, std::multiplies<>());
}

int64_t GaussianMixture::num_parameters() const {
  return log_weights.numel() + means.numel() + basis.numel() + eigvals.numel() + eigvecs.numel() +
         residual.numel();
}

void GaussianMixture::validate(const std::string& where) const {
  auto fail = [&](const std::string& what) { throw InputError(where + ": " + what); };
  auto need = [&](const Tensor& t, const char* name, std::vector<int64_t> shape, at::ScalarType type) {
    if (!t.defined()) fail(std::string("missing tensor '") + name + "'");
    if (t.sizes() != c10::IntArrayRef(shape)) {
      fail(std::string("tensor '") + name + "' has shape " + shape_str(t) + ", expected " +
           shape_str(torch::empty(shape)));
    }
    if (t.scalar_type() != type) fail(std::string("tensor '") + name + "' has the wrong dtype");
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) {
      fail(std::string("tensor '") + name + "' holds NaN or Inf");
    }
  };
  if (item_shape.empty() || item_numel() <= 0) fail("item shape must be non-empty and positive");
  for (auto s : item_shape) {
    if (s <= 0) fail("item shape must be positive");
  }
  const int64_t D = item_numel();
  if (!active.defined() || active.dim() != 1 || active.size(0) < 1) fail("tensor 'active' must be a non-empty vector");
  if (!means.defined() || means.dim() != 2) fail("tensor 'means' must be [K, active pixels]");
  if (!basis.defined() || basis.dim() != 2) fail("tensor 'basis' must be [active pixels, d]");
  const int64_t da = active.size(0), K = means.size(0), d = basis.size(1);
  if (K < 1 || d < 1 || d > da) fail("need K ≥ 1 components and 1 ≤ d ≤ active pixels");
  need(fixed, "fixed", {D}, torch::kFloat64);
  need(active, "active", {da}, torch::kInt64);
  need(log_weights, "log_weights", {K}, torch::kFloat64);
  need(means, "means", {K, da}, torch::kFloat64);
  need(basis, "basis", {da, d}, torch::kFloat64);
  need(eigvals, "eigvals", {K, d}, torch::kFloat64);
  need(eigvecs, "eigvecs", {K, d, d}, torch::kFloat64);
  need(residual, "residual", {K}, torch::kFloat64);
  const auto sorted = std::get<0>(active.sort());
  if (sorted[0].item<int64_t>() < 0 || sorted[-1].item<int64_t>() >= D ||
      (da > 1 && !(sorted.slice(0, 1) > sorted.slice(0, 0, da - 1)).all().item<bool>())) {
    fail("tensor 'active' must hold distinct pixel indices in [0, " + std::to_string(D) + ")");
  }
  if (!(eigvals > 0).all().item<bool>()) fail("tensor 'eigvals' must be positive");
  if (!(residual > 0).all().item<bool>()) fail("tensor 'residual' must be positive");
  if (std::abs(log_weights.exp().sum().item<double>() - 1.0) > 1e-6) fail("tensor 'log_weights' must be normalised");
  const double tol = 1e-6;
  if ((at::matmul(basis.t(), basis) - torch::eye(d, kF64)).abs().max().item<double>() > tol) {
    fail("tensor 'basis' must have orthonormal columns");
  }
  if ((at::matmul(eigvecs.transpose(1, 2), eigvecs) - torch::eye(d, kF64)).abs().max().item<double>() > tol) {
    fail("tensor 'eigvecs' must hold orthonormal matrices");
  }
}

std::vector<int64_t> distinct_components(const Tensor& k) {
  const Tensor u = std::get<0>(at::_unique(k.to(torch::kCPU, torch::kLong).reshape({-1}))).contiguous();
  return std::vector<int64_t>(u.data_ptr<int64_t>(), u.data_ptr<int64_t>() + u.numel());
}

std::pair<Tensor, Tensor> GaussianMixture::component_log_density_and_score(const Tensor& xa, const Tensor& k) const {
  require(xa.dim() == 2 && xa.size(1) == active_pixels() && xa.scalar_type() == torch::kFloat64 && k.dim() == 1 &&
              k.size(0) == xa.size(0),
          "gmm prior: expected active pixels [B, " + std::to_string(active_pixels()) + "] float64 and k [B], got " +
              shape_str(xa) + " and " + shape_str(k));
  const int64_t da = active_pixels(), d = dims();
  const Tensor& U = basis;
  Tensor log_p = torch::empty({xa.size(0)}, kF64), score = torch::empty_like(xa);
  const Tensor kc = k.to(torch::kCPU, torch::kLong);
  for (const int64_t j : distinct_components(kc)) {  // the rows of each component
    require(j >= 0 && j < components(), "gmm prior: component index out of range");
    const Tensor rows = (kc == j).nonzero().squeeze(1);
    const Tensor r = xa.index_select(0, rows) - means[j];   // x − μ_j
    const Tensor a = at::matmul(r, U);                      // Uᵀ r
    const Tensor q = at::matmul(a, eigvecs[j]);             // V_jᵀ Uᵀ r
    const Tensor lam = eigvals[j];
    // Σ_j⁻¹ r = U V_j diag(1/λ_j) V_jᵀ Uᵀ r + (r − U Uᵀ r)/s_j²  (the second term only when d < Da)
    Tensor quad = (q.square() / lam).sum(1);
    Tensor log_det = lam.log().sum().expand({rows.size(0)});
    Tensor grad = at::matmul(at::matmul(q / lam, eigvecs[j].t()), U.t());
    if (d < da) {
      const double s2 = residual[j].item<double>();
      const Tensor outside = r - at::matmul(a, U.t());
      quad = quad + outside.square().sum(1) / s2;
      log_det = log_det + static_cast<double>(da - d) * std::log(s2);
      grad = grad + outside / s2;
    }
    log_p.index_copy_(0, rows, log_weights[j] - 0.5 * (quad + log_det + da * kLog2Pi));
    score.index_copy_(0, rows, -grad);
  }
  return {log_p, score};
}

Tensor GaussianMixture::log_density(const Tensor& x_tilde, const Tensor& sigma) const {
  const Tensor xa = active_of(*this, x_tilde, "gmm prior");
  return evaluate(*this, xa, sigma2_of(sigma, xa.size(0), "gmm prior"), false).log_density;
}

Tensor GaussianMixture::component_logits(const Tensor& x) const {
  const Tensor xa = active_of(*this, x, "gmm prior");
  return evaluate(*this, xa, torch::zeros({xa.size(0)}, kF64), false).logits;
}

Tensor GaussianMixture::posterior_noise(const Tensor& x_tilde, const Tensor& sigma) const {
  const Tensor xa = active_of(*this, x_tilde, "gmm prior");
  const int64_t b = xa.size(0);
  const Tensor s2 = sigma2_of(sigma, b, "gmm prior");
  const Tensor s = s2.sqrt().view({-1, 1});
  const Tensor h = evaluate(*this, xa, s2, true).h;
  // inactive pixels: E[n | x̃] = (x̃ − c)/σ exactly (x0 = c there)
  const Tensor flat = x_tilde.to(torch::kCPU, torch::kFloat64).reshape({b, -1});
  return ((flat - fixed) / s).index_copy(1, active, s * h).view(x_tilde.sizes());
}

Tensor GaussianMixture::posterior_mean(const Tensor& x_tilde, const Tensor& sigma) const {
  const Tensor xa = active_of(*this, x_tilde, "gmm prior");
  const int64_t b = xa.size(0);
  const Tensor s2 = sigma2_of(sigma, b, "gmm prior");
  const Tensor h = evaluate(*this, xa, s2, true).h;
  const Tensor d = xa - s2.view({-1, 1}) * h;  // Tweedie: x̃ + σ² ∇ log p_σ
  return fixed.expand({b, fixed.size(0)}).index_copy(1, active, d).view(x_tilde.sizes());
}

Tensor GaussianMixture::sample(int64_t n, torch::Generator& gen) const {
  require(n >= 0, "gmm prior: sample count must be ≥ 0");
  const Tensor k = at::multinomial(log_weights.exp(), n, /*replacement=*/true, gen);  // [n]
  const Tensor z = at::randn({n, dims()}, gen, kF64) * eigvals.index_select(0, k).sqrt();
  const Tensor sub = at::matmul(at::einsum("nde,ne->nd", {eigvecs.index_select(0, k), z}), basis.t());
  Tensor iso = at::randn({n, active_pixels()}, gen, kF64);
  iso = (iso - at::matmul(at::matmul(iso, basis), basis.t())) * residual.index_select(0, k).sqrt().view({-1, 1});
  const Tensor xa = means.index_select(0, k) + sub + iso;
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), item_shape.begin(), item_shape.end());
  return fixed.expand({n, fixed.size(0)}).index_copy(1, active, xa).view(shape);
}

// ---- fitting ---------------------------------------------------------------------------------

namespace {

// The closed-form M-step for the structured covariance, from responsibilities R [N, K].
void m_step(GaussianMixture& g, const Tensor& xa, const Tensor& P, const Tensor& xx, const Tensor& R,
            double floor) {
  const int64_t da = xa.size(1), d = P.size(1), K = R.size(1);
  const Tensor nk = R.sum(0) + 1e-10;  // [K]
  g.log_weights = (nk / nk.sum()).log();
  g.means = at::matmul(R.t(), xa) / nk.view({-1, 1});
  const Tensor pm = at::matmul(g.means, g.basis);  // E_R[P] per component
  g.eigvals = torch::empty({K, d}, kF64);
  g.eigvecs = torch::empty({K, d, d}, kF64);
  g.residual = torch::empty({K}, kF64);
  const Tensor p2 = P.square().sum(1);
  for (int64_t k = 0; k < K; ++k) {
    const Tensor r = R.select(1, k);
    const double nk_k = nk[k].item<double>();
    Tensor C = at::matmul(P.t() * r, P) / nk_k - at::outer(pm[k], pm[k]);
    C = 0.5 * (C + C.t()) + floor * torch::eye(d, kF64);
    auto [lam, V] = torch::linalg::eigh(C, "L");
    g.eigvals[k] = lam.clamp_min(floor);
    g.eigvecs[k] = V;
    if (da > d) {
      // E_R‖x − μ_k‖² − E_R‖Uᵀ(x − μ_k)‖², spread over the Da − d residual directions.
      const double full = (r * xx).sum().item<double>() / nk_k - g.means[k].square().sum().item<double>();
      const double in = (r * p2).sum().item<double>() / nk_k - pm[k].square().sum().item<double>();
      g.residual[k] = std::max(full - in, 0.0) / static_cast<double>(da - d) + floor;
    } else {
      g.residual[k] = 1.0;  // no residual directions: s² never enters
    }
  }
}

// Responsibilities [N, K] and mean log-likelihood, in row chunks (B × K × d temporaries).
std::pair<Tensor, double> e_step(const GaussianMixture& g, const Tensor& xa) {
  const int64_t n = xa.size(0), chunk = 2048;
  Tensor R = torch::empty({n, g.components()}, kF64);
  double total = 0;
  for (int64_t s = 0; s < n; s += chunk) {
    const int64_t e = std::min(n, s + chunk);
    const Tensor xb = xa.slice(0, s, e);
    const Tensor logits = evaluate(g, xb, torch::zeros({e - s}, kF64), false).logits;
    const Tensor lse = at::logsumexp(logits, 1, true);
    R.slice(0, s, e).copy_((logits - lse).exp());
    total += lse.sum().item<double>();
  }
  return {R, total / static_cast<double>(n)};
}

// Lloyd's k-means on rows of P; returns the cluster of each row. Seeds are distinct random rows.
Tensor kmeans(const Tensor& P, int64_t k, int iterations, torch::Generator& gen) {
  const int64_t n = P.size(0);
  k = std::min(k, n);
  Tensor centers = P.index_select(0, at::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64)).slice(0, 0, k));
  Tensor assign;
  for (int it = 0; it < iterations; ++it) {
    const Tensor dist = P.square().sum(1, true) - 2 * at::matmul(P, centers.t()) + centers.square().sum(1).unsqueeze(0);
    assign = dist.argmin(1);
    const Tensor onehot = at::one_hot(assign, k).to(torch::kFloat64);
    const Tensor count = onehot.sum(0);
    const Tensor sums = at::matmul(onehot.t(), P);
    const Tensor keep = (count > 0).unsqueeze(1);
    centers = torch::where(keep, sums / count.clamp_min(1).unsqueeze(1), centers);
  }
  return assign;
}

}  // namespace

GmmFit fit_gmm(const Tensor& x, const Tensor& labels, const GmmFitOptions& o, torch::Generator& gen) {
  require(x.dim() >= 2 && x.size(0) >= 2, "fit-gmm: need at least 2 items of shape [N, ...]");
  require(o.components_per_class >= 1, "fit-gmm: --components-per-class must be ≥ 1");
  require(o.dims >= 1, "fit-gmm: --dims must be ≥ 1");
  require(o.iterations >= 0, "fit-gmm: --iterations must be ≥ 0");
  require(o.variance_floor > 0 && std::isfinite(o.variance_floor), "fit-gmm: the variance floor must be positive");
  const int64_t n = x.size(0);
  const Tensor X = x.to(torch::kCPU, torch::kFloat64).reshape({n, -1});
  require(torch::isfinite(X).all().item<bool>(), "fit-gmm: the images hold NaN or Inf");
  GaussianMixture g;
  g.item_shape = x.sizes().slice(1).vec();
  const Tensor var = X.var(0, /*unbiased=*/false);
  g.active = torch::nonzero(var > o.constant_tolerance).reshape({-1});
  const int64_t da = g.active.size(0);
  require(da >= 1, "fit-gmm: every pixel is constant over the data");
  require(o.dims <= da, "fit-gmm: --dims " + std::to_string(o.dims) + " exceeds the " + std::to_string(da) +
                            " non-constant pixels");
  g.fixed = X[0].clone().index_fill_(0, g.active, 0.0);
  const Tensor xa = X.index_select(1, g.active);

  // PCA basis: the top-d eigenvectors of the data covariance.
  const Tensor centred = xa - xa.mean(0, true);
  auto [evals, evecs] = torch::linalg::eigh(at::matmul(centred.t(), centred) / static_cast<double>(n), "L");
  g.basis = evecs.flip({1}).slice(1, 0, o.dims).contiguous();
  const Tensor P = at::matmul(xa, g.basis);
  const Tensor xx = xa.square().sum(1);

  // Seeding: k-means within each class (or over all) gives hard responsibilities.
  int64_t classes = 1;
  Tensor cls = torch::zeros({n}, torch::kInt64);
  if (labels.defined()) {
    require(labels.dim() == 1 && labels.size(0) == n, "fit-gmm: expected one label per image");
    cls = labels.to(torch::kCPU, torch::kInt64);
    require(cls.min().item<int64_t>() >= 0, "fit-gmm: labels must be ≥ 0");
    classes = cls.max().item<int64_t>() + 1;
  }
  const int64_t K = classes * o.components_per_class;
  require_memory(static_cast<double>(n) * static_cast<double>(K) * 8.0 * 3 +
                     2048.0 * static_cast<double>(K * o.dims) * 8.0 * 6,
                 "fit-gmm responsibilities", "use fewer components");
  Tensor R = torch::zeros({n, K}, kF64);
  for (int64_t c = 0; c < classes; ++c) {
    const Tensor idx = torch::nonzero(cls == c).reshape({-1});
    if (idx.numel() == 0) continue;
    const Tensor assign = kmeans(P.index_select(0, idx), o.components_per_class, 10, gen);
    R.index_put_({idx, c * o.components_per_class + assign}, 1.0);
  }
  GmmFit fit;
  // A component that seeded empty (a class with fewer images than components) gets μ = 0, every
  // variance at the floor and a weight of ~1e-10 / N: it stays idle rather than failing the fit.
  m_step(g, xa, P, xx, R, o.variance_floor);
  for (int64_t it = 0; it < o.iterations; ++it) {
    auto [resp, ll] = e_step(g, xa);
    fit.log_likelihood.push_back(ll);
    m_step(g, xa, P, xx, resp, o.variance_floor);
  }
  fit.log_likelihood.push_back(e_step(g, xa).second);
  g.validate("fit-gmm");
  fit.model = std::move(g);
  return fit;
}

// ---- files -----------------------------------------------------------------------------------

void save_gmm(const std::string& path, const GaussianMixture& g,
              const std::map<std::string, std::string>& metadata) {
  g.validate("save_gmm");
  io::TensorMap t{{"fixed", g.fixed},     {"active", g.active},   {"log_weights", g.log_weights},
                  {"means", g.means},     {"basis", g.basis},     {"eigvals", g.eigvals},
                  {"eigvecs", g.eigvecs}, {"residual", g.residual}};
  for (auto& [k, v] : t) v = v.contiguous();
  auto meta = metadata;
  meta["tweedie.gmm"] = nlohmann::json{{"item_shape", g.item_shape}}.dump();
  io::write_safetensors(path, t, meta);
}

GaussianMixture load_gmm(const std::string& path) {
  auto st = io::read_safetensors(path);
  GaussianMixture g;
  auto it = st.metadata.find("tweedie.gmm");
  if (it == st.metadata.end()) throw InputError(path + ": not a GMM prior (no tweedie.gmm metadata)");
  const std::string where = path + ": metadata tweedie.gmm";
  g.item_shape = read_json_as(where, [&] {
    return parse_json(it->second, where).at("item_shape").get<std::vector<int64_t>>();
  });
  const std::vector<std::pair<const char*, Tensor*>> slots{
      {"fixed", &g.fixed}, {"active", &g.active},   {"log_weights", &g.log_weights}, {"means", &g.means},
      {"basis", &g.basis}, {"eigvals", &g.eigvals}, {"eigvecs", &g.eigvecs},         {"residual", &g.residual}};
  for (auto& [name, slot] : slots) {
    auto found = st.tensors.find(name);
    if (found == st.tensors.end()) throw InputError(path + ": missing tensor '" + name + "'");
    *slot = found->second;
    st.tensors.erase(found);
  }
  if (!st.tensors.empty()) throw InputError(path + ": unexpected tensor '" + st.tensors.begin()->first + "'");
  g.validate(path);
  return g;
}

EpsModel gmm_eps_model(const Schedule& base, std::shared_ptr<const GaussianMixture> model) {
  require(model != nullptr, "gmm_eps_model: no model");
  return [log_sigmas = log_ve_sigmas(base), model](const Tensor& x_t, const Tensor& t_model) {
    const Tensor x = x_t.to(torch::kCPU, torch::kFloat64);
    const Tensor sigma = t_to_sigma(log_sigmas, t_model.to(torch::kCPU)).reshape({-1});  // [B] or [1]
    std::vector<int64_t> col(static_cast<size_t>(x.dim()), 1);
    col[0] = sigma.numel();
    const Tensor x_tilde = x * (1 + sigma.square()).sqrt().view(col);  // x̃ = x_t √(1+σ²)
    return model->posterior_noise(x_tilde, sigma).to(x_t.device(), x_t.scalar_type());
  };
}

}  // namespace tweedie::diffusion
