#include "tweedie/experiment/posterior_scores.h"

#include <filesystem>

#include "tweedie/io/safetensors.h"

#include <cmath>

#include "tweedie/core/error.h"

namespace tweedie::experiment {
namespace {

using torch::Tensor;
const auto kScoresF64 = torch::TensorOptions().dtype(torch::kFloat64);

std::vector<double> as_list(const Tensor& t) {
  const Tensor c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Φ(x) of the standard normal, elementwise
Tensor normal_cdf(const Tensor& x) { return 0.5 * torch::erfc(-x / std::sqrt(2.0)); }

struct Scores {
  Tensor mmse_gap, coverage50, coverage90, energy, mode_tv;
};

// The scores of `x` [B, K, D] (float64) against `ref`; `varying` [D] marks the scored pixels.
Scores score(const diffusion::GaussianMixture& prior, const PosteriorReference& ref, const Tensor& x,
             const Tensor& varying) {
  const int64_t B = x.size(0), K = x.size(1);
  Scores s;
  s.mmse_gap = (x.mean(1) - ref.mean).square().sum(1) / ref.total_var.clamp_min(1e-300);
  auto coverage = [&](double p) {
    const Tensor q = torch::tensor({(1 - p) / 2, (1 + p) / 2}, kScoresF64);
    const Tensor lohi = torch::quantile(x, q, 1);  // [2, B, D]
    Tensor p_in;
    if (ref.comp_means.defined()) {
      // P(lo ≤ x_i ≤ hi) = Σ_k w_k [Φ((hi − m_ki)/s_ki) − Φ((lo − m_ki)/s_ki)]
      const Tensor sd = ref.comp_sd.unsqueeze(0).clamp_min(1e-12);
      const Tensor hi = normal_cdf((lohi[1].unsqueeze(1) - ref.comp_means) / sd);
      const Tensor lo = normal_cdf((lohi[0].unsqueeze(1) - ref.comp_means) / sd);
      p_in = (ref.weights.unsqueeze(2) * (hi - lo)).sum(1);  // [B, D]
    } else {
      p_in = ((ref.draws >= lohi[0].unsqueeze(1)) & (ref.draws <= lohi[1].unsqueeze(1))).to(torch::kFloat64).mean(1);
    }
    return (p_in * varying).sum(1) / varying.sum();
  };
  s.coverage50 = coverage(0.5);
  s.coverage90 = coverage(0.9);
  // energy distance, U-statistics within each set
  auto within = [](const Tensor& a) {
    const int64_t n = a.size(1);
    return torch::cdist(a, a).sum({1, 2}) / static_cast<double>(n * (n - 1));
  };
  s.energy = 2 * torch::cdist(x, ref.draws).mean({1, 2}) - within(x) - within(ref.draws);
  // mode coverage: each draw's most likely component p(k | x)
  const int64_t Kc = ref.weights.size(1);
  const Tensor comp = prior.component_logits(x.reshape({B * K, -1})).argmax(1).view({B, K});
  const Tensor freq =
      torch::zeros({B, Kc}, kScoresF64).scatter_add_(1, comp, torch::ones({B, K}, kScoresF64)) / static_cast<double>(K);
  s.mode_tv = 0.5 * (freq - ref.weights).abs().sum(1);
  return s;
}

}  // namespace

nlohmann::json PosteriorReference::describe() const {
  nlohmann::json j = {{"kind", kind}, {"draws", draws.size(1)}, {"rhat_max", rhat_max}, {"ess_min", ess_min}};
  if (rhat.defined()) {  // per measurement: which ones the chains did not meet on
    j["rhat"] = as_list(rhat);
    j["ess"] = as_list(ess);
  }
  if (kind == "mala") {
    j["accept"] = accept;
    j["jump_accept"] = jump_accept;
  }
  return j;
}

PosteriorReference exact_reference(const diffusion::GmmPosterior& post, int64_t R, int64_t K, torch::Generator& gen) {
  const int64_t B = post.batch();
  PosteriorReference ref;
  ref.draws = post.sample(R, gen).reshape({B, R, -1});
  ref.floor = post.sample(K, gen).reshape({B, K, -1});
  ref.mean = post.mean().reshape({B, -1});
  ref.total_var = post.variance().reshape({B, -1}).sum(1);
  ref.weights = post.log_weights().exp();
  ref.comp_means = post.component_means();
  ref.comp_sd = post.component_variances().sqrt();
  return ref;
}

namespace {

// The reference of a sampler (`kind`: "gibbs" or "mala") from its chains [B, C, N, D] and their
// per-item split-R̂ and ESS [B]: R + K states evenly spaced over the pooled chains, every
// (R + K)/K-th the floor's, the rest the reference's (spaced by about C·N/(R + K) steps, farther
// than the chains' correlation when the ESS is above R + K); moments and weights from all states.
PosteriorReference pooled_reference(const diffusion::GaussianMixture& prior, const Tensor& chains, const Tensor& rhat,
                                    const Tensor& ess, int64_t R, int64_t K, const std::string& kind) {
  const int64_t B = chains.size(0), D = prior.item_numel();
  const Tensor pooled = chains.reshape({B, -1, D});  // [B, chains·iterations, D]
  const int64_t n = pooled.size(1);
  require(R + K <= n, "posterior reference: " + std::to_string(R + K) + " draws asked of a " + kind +
                          " run that keeps " + std::to_string(n));
  const Tensor idx = torch::linspace(0, static_cast<double>(n - 1), R + K, kScoresF64).round().to(torch::kLong);
  const Tensor is_floor = (torch::arange(R + K) % ((R + K) / K) == 0) & (torch::arange(R + K) < ((R + K) / K) * K);
  PosteriorReference ref;
  ref.draws = pooled.index_select(1, idx.masked_select(~is_floor));
  ref.floor = pooled.index_select(1, idx.masked_select(is_floor));
  ref.mean = pooled.mean(1);
  ref.total_var = pooled.var(1, true).sum(1);
  ref.weights = at::softmax(prior.component_logits(pooled.reshape({B * n, D})), 1).view({B, n, -1}).mean(1);
  ref.kind = kind;
  ref.rhat = rhat;
  ref.ess = ess;
  ref.rhat_max = rhat.max().item<double>();
  ref.ess_min = ess.min().item<double>();
  return ref;
}

}  // namespace

namespace {
// The per-item tensors of a sampled reference (Gibbs, MALA), by name: what is kept on disk, and
// what item-by-item runs are joined along.
const std::vector<std::pair<std::string, Tensor PosteriorReference::*>>& sampled_fields() {
  static const std::vector<std::pair<std::string, Tensor PosteriorReference::*>> f = {
      {"draws", &PosteriorReference::draws},   {"floor", &PosteriorReference::floor},
      {"mean", &PosteriorReference::mean},     {"total_var", &PosteriorReference::total_var},
      {"weights", &PosteriorReference::weights}, {"rhat", &PosteriorReference::rhat},
      {"ess", &PosteriorReference::ess}};
  return f;
}
}  // namespace

void save_reference(const std::string& path, const PosteriorReference& ref, const std::string& key) {
  io::TensorMap tensors;
  for (const auto& [name, field] : sampled_fields()) tensors[name] = (ref.*field).to(torch::kCPU).contiguous();
  const nlohmann::json meta = {{"key", key},          {"kind", ref.kind},       {"rhat_max", ref.rhat_max},
                               {"ess_min", ref.ess_min}, {"accept", ref.accept}, {"jump_accept", ref.jump_accept}};
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  io::write_safetensors(path, tensors, {{"tweedie.reference", meta.dump()}});
}

std::optional<PosteriorReference> load_reference(const std::string& path, const std::string& key) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    const auto st = io::read_safetensors(path);
    const auto meta = nlohmann::json::parse(st.metadata.at("tweedie.reference"));
    if (meta.at("key").get<std::string>() != key) return std::nullopt;
    PosteriorReference ref;
    for (const auto& [name, field] : sampled_fields()) ref.*field = st.tensors.at(name);
    ref.kind = meta.at("kind").get<std::string>();
    ref.rhat_max = meta.at("rhat_max").get<double>();
    ref.ess_min = meta.at("ess_min").get<double>();
    ref.accept = meta.at("accept").get<double>();
    ref.jump_accept = meta.at("jump_accept").get<double>();
    return ref;
  } catch (const std::exception&) {
    return std::nullopt;  // a damaged or foreign file: sample anew (and overwrite it)
  }
}

PosteriorReference gibbs_reference(const diffusion::GaussianMixture& prior, const Tensor& A, const Tensor& y,
                                   double sigma, int64_t R, int64_t K, const diffusion::ProbitGibbsOptions& o,
                                   torch::Generator& gen) {
  // One item at a time: a run keeps chains × iterations states of the item and its diagnostics
  // take several copies of them (about 1.3 GB per item at 4 × 2000 sweeps of 1024 pixels), so
  // the whole batch at once was killed for memory at 50 items. The chains of different items
  // never interact, so running them apart changes only which random numbers each item gets.
  std::vector<PosteriorReference> parts;
  for (int64_t b = 0; b < y.size(0); ++b) {
    const auto run = diffusion::probit_gibbs(prior, A, y.slice(0, b, b + 1), sigma, o, gen);
    parts.push_back(pooled_reference(prior, run.draws, run.rhat, run.ess, R, K, "gibbs"));
  }
  require(!parts.empty(), "posterior reference: no measurements");
  PosteriorReference ref = parts[0];
  for (const auto& [name, field] : sampled_fields()) {  // every per-item tensor of a sampled reference
    std::vector<Tensor> pieces;
    for (const auto& p : parts) pieces.push_back(p.*field);
    ref.*field = torch::cat(pieces, 0);
  }
  ref.rhat_max = ref.rhat.max().item<double>();
  ref.ess_min = ref.ess.min().item<double>();
  return ref;
}

PosteriorReference mala_reference(const diffusion::GaussianMixture& prior, const Problem& problem, const Tensor& y,
                                  int64_t R, int64_t K, const diffusion::MalaOptions& o, torch::Generator& gen) {
  const op::Operator& op = *problem.op;
  const channel::Channel& channel = *problem.channel;
  const int64_t B = y.size(0), D = prior.item_numel(), C = o.chains;
  require(D == op::numel(op.in_shape()), "posterior reference: the operator takes items of " +
                                             std::to_string(op::numel(op.in_shape())) + " pixels, the prior's have " +
                                             std::to_string(D));
  const Tensor y64 = y.to(torch::kCPU, torch::kFloat64);
  const Tensor y_rows = y64.repeat_interleave(C, 0);  // [B·C, out...], item-major as gmm_mala's rows
  const op::Shape out_shape = op.out_shape();
  // the prior's mean over the whole item, where a nonlinear operator is linearised
  const Tensor prior_mean = prior.fixed.clone().index_copy_(0, prior.active, at::matmul(prior.log_weights.exp(), prior.means));
  // A nonlinear operator runs in float64 where its own tensors allow (phase, hdr), else in float32
  auto work = torch::kFloat64;
  if (!op.linear()) {
    try {
      torch::NoGradGuard no_grad;
      (void)op.apply(prior_mean.view(op::with_batch(1, op.in_shape())));
    } catch (const c10::Error&) {
      work = torch::kFloat32;
    }
  }
  const Tensor J = op.linear() ? op::dense_matrix(op) : op::jacobian(op, prior_mean.view(op.in_shape()).to(work));
  auto forward = [&](const Tensor& x) -> Tensor {  // x [R', D] float64 → z [R', out...] float64
    if (op.linear()) return at::matmul(x, J.t()).view(op::with_batch(x.size(0), out_shape));
    return op.apply(x.to(work).view(op::with_batch(x.size(0), op.in_shape()))).to(torch::kFloat64);
  };
  // ∂nll/∂z_i and ∂²nll/∂z_i² at z [B, out...] (the NLL is a sum of elementwise terms, so its
  // Hessian in z is diagonal: the gradient of the summed gradient is it)
  auto nll_derivatives = [&](const Tensor& z_in) -> std::pair<Tensor, Tensor> {
    torch::AutoGradMode grad_on(true);
    const Tensor z = z_in.detach().clone().requires_grad_(true);
    const Tensor g = torch::autograd::grad({channel.nll_elements(z, y64).sum()}, {z}, {}, true, true)[0];
    const Tensor h = torch::autograd::grad({g.sum()}, {z}, {}, false, false, true)[0];
    return {g.detach(), h.defined() ? h.detach() : torch::zeros_like(g)};
  };
  const diffusion::LogLikelihood loglik = [&](const Tensor& x) { return -channel.nll(forward(x), y_rows); };
  // The surrogate centred on x̂ [B, D]: there −log p(y | z) ≈ c̄ (z − z̃)²/2 + const with
  // z̃ = ẑ − ∂nll/∂z / c̄ (a Newton step from ẑ = A(x̂) with the mean curvature c̄), and
  // A(x) ≈ A(μ̄) + J (x − μ̄), so the surrogate measures J x as z̃ − (A(μ̄) − J μ̄) with noise 1/√c̄.
  // Its exact mixture posterior gives the sampler's metrics and mode jumps (gmm_mala.h): exact for
  // a linear Gaussian problem, an approximation elsewhere that the Metropolis–Hastings ratios correct.
  const Tensor offset = forward(prior_mean.view({1, D})).reshape({1, -1}) - at::matmul(prior_mean.view({1, D}), J.t());
  auto surrogate_at = [&](const Tensor& centre) {
    const Tensor z_hat = forward(centre);
    const auto [dz, d2z] = nll_derivatives(z_hat);
    const double c_bar = std::max(d2z.mean().item<double>(), 1e-12);
    const Tensor z_tilde = (z_hat - dz / c_bar).reshape({B, -1}) - offset;
    return diffusion::GmmPosterior(prior, J, z_tilde, 1.0 / std::sqrt(c_bar), "MALA's surrogate posterior");
  };
  // a pilot run (half the warm-up, 200 sweeps) from the surrogate at the prior mean finds each
  // item's centre
  diffusion::MalaOptions pilot = o;
  pilot.warmup = o.warmup / 2;
  pilot.iterations = 200;
  pilot.thin = 1;
  const Tensor centre = diffusion::gmm_mala(prior, loglik, surrogate_at(prior_mean.view({1, D}).expand({B, D}).contiguous()), pilot, gen)
                            .draws.reshape({B, -1, D})
                            .mean(1);
  const auto run = diffusion::gmm_mala(prior, loglik, surrogate_at(centre), o, gen);
  PosteriorReference ref = pooled_reference(prior, run.draws, run.rhat, run.ess, R, K, "mala");
  ref.accept = run.accept.mean().item<double>();
  ref.jump_accept = run.jump_accept.mean().item<double>();
  return ref;
}

nlohmann::json PosteriorScores::to_json() const {
  return {{"mmse_gap", as_list(mmse_gap)},           {"coverage50", as_list(coverage50)},
          {"coverage90", as_list(coverage90)},       {"energy", as_list(energy)},
          {"mode_tv", as_list(mode_tv)},             {"floor_mmse_gap", as_list(floor_mmse_gap)},
          {"floor_coverage50", as_list(floor_coverage50)}, {"floor_coverage90", as_list(floor_coverage90)},
          {"floor_energy", as_list(floor_energy)},   {"floor_mode_tv", as_list(floor_mode_tv)}};
}

PosteriorScores score_draws(const diffusion::GaussianMixture& prior, const PosteriorReference& ref,
                            const Tensor& draws) {
  const int64_t B = ref.mean.size(0);
  require(draws.dim() >= 3 && draws.size(0) == B && draws.size(1) >= 2,
          "posterior scores: need draws [B, K >= 2, ...] for B = " + std::to_string(B));
  require(draws.size(1) == ref.floor.size(1), "posterior scores: the reference's floor has " +
                                                  std::to_string(ref.floor.size(1)) + " draws, the draws " +
                                                  std::to_string(draws.size(1)));
  const Tensor x = draws.to(torch::kCPU, torch::kFloat64).reshape({B, draws.size(1), -1});
  const Tensor varying = torch::zeros({x.size(2)}, kScoresF64).index_fill_(0, prior.active, 1.0);
  const Scores a = score(prior, ref, x, varying);
  const Scores f = score(prior, ref, ref.floor, varying);
  return {a.mmse_gap, a.coverage50, a.coverage90, a.energy, a.mode_tv,
          f.mmse_gap, f.coverage50, f.coverage90, f.energy, f.mode_tv};
}

}  // namespace tweedie::experiment
