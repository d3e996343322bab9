#include "tweedie/lowrank/problem.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>

#include "tweedie/core/error.h"
#include "tweedie/core/memory.h"
#include "tweedie/lowrank/tucker.h"

namespace tweedie::lowrank {
namespace {

using torch::indexing::Slice;

constexpr int64_t kChunk = int64_t{1} << 18;           // entries per gather/scatter block
constexpr double kMaxSensingEntries = 2.5e8;           // dense A: 2 GB in float64

std::string text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Every draw is float64 on the CPU, whatever the problem's dtype and device, so a seed gives the
// same problem everywhere (a float32 problem is the float64 one rounded).
torch::Tensor normal(at::IntArrayRef shape, torch::Generator& gen) {
  return torch::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat64));
}
torch::Tensor uniform(at::IntArrayRef shape, torch::Generator& gen) {
  return torch::rand(shape, gen, torch::TensorOptions().dtype(torch::kFloat64));
}

// A uniformly random n×r matrix with orthonormal columns (Q of a Gaussian matrix).
torch::Tensor orthonormal(int64_t n, int64_t r, torch::Generator& gen) {
  return std::get<0>(torch::linalg_qr(normal({n, r}, gen)));
}

// σ*_i = linspace(1, 1/κ, r) (MS.m, MC.m, RPCA.m); a single value is 1.
torch::Tensor condition_spectrum(int64_t r, double kappa) {
  if (r == 1) return torch::ones({1}, torch::kFloat64);
  return torch::linspace(1.0, 1.0 / kappa, r, torch::TensorOptions().dtype(torch::kFloat64));
}

std::vector<double> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// Ω ~ Bernoulli(p) over an n1×n2 grid, drawn in row blocks; row-major (rows, cols).
std::pair<torch::Tensor, torch::Tensor> bernoulli_entries(int64_t n1, int64_t n2, double p, torch::Generator& gen) {
  std::vector<torch::Tensor> rows, cols;
  int64_t block = std::max<int64_t>(1, kChunk * 4 / n2);
  for (int64_t start = 0; start < n1; start += block) {
    int64_t len = std::min(block, n1 - start);
    auto idx = (uniform({len, n2}, gen) < p).nonzero();
    rows.push_back(idx.select(1, 0) + start);
    cols.push_back(idx.select(1, 1));
  }
  return {torch::cat(rows), torch::cat(cols)};
}

void check_spec(const ProblemSpec& s) {
  require(s.n1 >= 1 && s.n2 >= 1 && s.n3 >= 0, "dimensions must be positive");
  int64_t n3 = s.n3 > 0 ? s.n3 : s.n1;
  int64_t smallest = s.task == Task::tucker ? std::min({s.n1, s.n2, n3}) : std::min(s.n1, s.n2);
  require(s.rank >= 1 && s.rank <= smallest,
          "rank " + std::to_string(s.rank) + " must be between 1 and the smallest dimension (" +
              std::to_string(smallest) + ")");
  require(s.kappa >= 1 && std::isfinite(s.kappa), "condition number kappa must be >= 1 and finite");
  if (s.task == Task::completion || s.task == Task::tucker || s.task == Task::powerlaw)
    require(s.ratio > 0 && s.ratio <= 1, "sampling ratio " + text(s.ratio) + " is outside (0, 1]");
  if (s.task == Task::rpca)
    require(s.outliers >= 0 && s.outliers < 0.5, "outlier fraction must be in [0, 0.5)");
  require(s.outlier_scale >= 0 && std::isfinite(s.outlier_scale), "outlier scale must be >= 0");
  require(s.noise >= 0 && std::isfinite(s.noise), "noise must be >= 0");
  require(s.measurements >= 0, "measurements must be >= 0");
  require(s.decay > 0 && std::isfinite(s.decay), "power-law decay must be > 0");
  require(!s.symmetric || (s.task == Task::sensing && s.n1 == s.n2),
          "symmetric (PSD) problems are sensing problems with n1 = n2");
  require(s.dtype == torch::kFloat64 || s.dtype == torch::kFloat32, "dtype must be float32 or float64");
  // The truth, the observations and the solvers' iterates are dense n1 × n2 (× n3) arrays: refuse
  // sizes that cannot be held before the first allocation does it with LibTorch's raw message.
  const double entries = double(s.n1) * double(s.n2) * (s.task == Task::tucker ? double(n3) : 1.0);
  const double elem = s.dtype == torch::kFloat64 ? 8.0 : 4.0;
  require_memory(4.0 * elem * entries, "a " + std::to_string(s.n1) + " x " + std::to_string(s.n2) +
                                           (s.task == Task::tucker ? " x " + std::to_string(n3) : std::string()) +
                                           " problem (dense arrays)");
}

MatrixProblem sized(Task task, int64_t n1, int64_t n2, int64_t rank, bool symmetric = false) {
  MatrixProblem p;
  p.task = task;
  p.n1 = n1;
  p.n2 = n2;
  p.rank = rank;
  p.symmetric = symmetric;
  return p;
}

// A problem of the spec's task and sizes with X* = U diag(linspace(1, 1/κ, r)) Vᵀ drawn first
// (U and V uniformly random with orthonormal columns; V = U when symmetric).
MatrixProblem with_random_truth(const ProblemSpec& s, Task task, torch::Generator& gen) {
  MatrixProblem p = sized(task, s.n1, s.n2, s.rank, s.symmetric);
  auto sigma = condition_spectrum(s.rank, s.kappa);
  auto U = orthonormal(s.n1, s.rank, gen);
  p.truth.left = U * sigma;  // X* = U Σ Vᵀ
  p.truth.right = s.symmetric ? U : orthonormal(s.n2, s.rank, gen);
  p.truth.singular_values = to_vector(sigma);
  return p;
}

torch::Tensor add_noise(const torch::Tensor& t, double sigma, torch::Generator& gen) {
  if (sigma <= 0) return t;
  return t + sigma * normal(t.sizes(), gen);
}

MatrixProblem generate_sensing(const ProblemSpec& s, torch::Generator& gen) {
  int64_t r = s.rank, m = s.measurements > 0 ? s.measurements : 5 * r * (s.n1 + s.n2) / 2;
  require(static_cast<double>(m) * s.n1 * s.n2 <= kMaxSensingEntries,
          "dense Gaussian sensing with m = " + std::to_string(m) + " and " + std::to_string(s.n1) + "x" +
              std::to_string(s.n2) + " would hold " + std::to_string(m * s.n1 * s.n2) +
              " entries (limit 2.5e8); use smaller n or m");
  MatrixProblem p = with_random_truth(s, Task::sensing, gen);
  // (A_k)_ij ~ N(0, 1/m) (MS.m), so E 𝒜*𝒜 = I.
  p.A = normal({m, s.n1 * s.n2}, gen) / std::sqrt(static_cast<double>(m));
  p.y = add_noise(p.A.mv(p.truth.left.mm(p.truth.right.t()).reshape(-1)), s.noise, gen);
  return p;
}

MatrixProblem generate_completion(const ProblemSpec& s, torch::Generator& gen) {
  MatrixProblem p = sized(Task::completion, s.n1, s.n2, s.rank);
  torch::Tensor full_left, full_right;  // the matrix that is sampled
  if (s.task == Task::powerlaw) {
    // M = U diag(i^−decay) Vᵀ of full rank; the target is its best rank-r approximation M_r.
    int64_t k = std::min(s.n1, s.n2);
    auto sigma = torch::arange(1, k + 1, torch::TensorOptions().dtype(torch::kFloat64)).pow(-s.decay);
    auto U = orthonormal(s.n1, k, gen), V = orthonormal(s.n2, k, gen);
    full_left = U * sigma;
    full_right = V;
    p.truth.left = full_left.index({Slice(), Slice(0, s.rank)});
    p.truth.right = V.index({Slice(), Slice(0, s.rank)});
    p.truth.singular_values = to_vector(sigma.slice(0, 0, s.rank));
  } else {
    p = with_random_truth(s, Task::completion, gen);
    full_left = p.truth.left;
    full_right = p.truth.right;
  }
  p.ratio = s.ratio;
  std::tie(p.rows, p.cols) = bernoulli_entries(s.n1, s.n2, s.ratio, gen);
  require(p.rows.numel() > 0, "no entry was sampled; raise the sampling ratio");
  p.values = add_noise(sampled_product(full_left, full_right, p.rows, p.cols), s.noise, gen);
  return p;
}

MatrixProblem generate_rpca(const ProblemSpec& s, torch::Generator& gen) {
  MatrixProblem p = with_random_truth(s, Task::rpca, gen);
  p.outliers = s.outliers;
  auto X = p.truth.left.mm(p.truth.right.t());
  // S*: Bernoulli(α) support, Gaussian magnitudes far above the entries of X* (RPCA.m keeps the
  // largest α-fraction of a standard Gaussian matrix, ~300× its entries at n = 1000).
  auto support = uniform({s.n1, s.n2}, gen) < s.outliers;
  double rms = X.norm().item<double>() / std::sqrt(static_cast<double>(s.n1 * s.n2));
  auto S = normal({s.n1, s.n2}, gen) * (s.outlier_scale * rms) * support;
  p.Y = add_noise(X + S, s.noise, gen);
  return p;
}

// Swallows LibTorch's one-time "sparse CSR support is in beta" warning, which would otherwise land
// in every CLI run's output. The handler is process-wide, so it is installed only around the
// first construction (the warning is emitted once per process).
struct QuietWarnings : c10::WarningHandler {
  void process(const c10::SourceLocation&, const std::string&, const bool) override {}
};

torch::Tensor csr(const torch::Tensor& ptr, const torch::Tensor& index, const torch::Tensor& values, int64_t rows,
                  int64_t cols) {
  auto make = [&] {
    return torch::sparse_csr_tensor(ptr, index, values, {rows, cols}, values.options().layout(torch::kSparseCsr));
  };
  static std::once_flag first;
  torch::Tensor out;
  std::call_once(first, [&] {
    static QuietWarnings quiet;
    c10::Warning::WarningHandlerGuard guard(&quiet);
    out = make();
  });
  return out.defined() ? out : make();
}

torch::Tensor offsets(const torch::Tensor& index, int64_t n) {
  return torch::cat({torch::zeros({1}, index.options()), torch::bincount(index, {}, n).cumsum(0)});
}

void move_tensor(torch::Tensor& t, const torch::Device& device, torch::Dtype dtype) {
  if (!t.defined()) return;
  t = t.is_floating_point() ? t.to(device, dtype) : t.to(device);
}

}  // namespace

std::string task_name(Task task) {
  switch (task) {
    case Task::sensing: return "sensing";
    case Task::completion: return "completion";
    case Task::rpca: return "rpca";
    case Task::tucker: return "tucker";
    case Task::powerlaw: return "powerlaw";
  }
  return "?";
}

Task parse_task(const std::string& name) {
  for (Task t : {Task::sensing, Task::completion, Task::rpca, Task::tucker, Task::powerlaw})
    if (task_name(t) == name) return t;
  throw InputError("unknown task '" + name + "' (use sensing, completion, rpca, tucker or powerlaw)");
}

torch::Device MatrixProblem::device() const {
  for (auto* t : {&A, &values, &Y})
    if (t->defined()) return t->device();
  return torch::kCPU;
}

torch::Dtype MatrixProblem::dtype() const {
  for (auto* t : {&A, &values, &Y})
    if (t->defined()) return t->scalar_type();
  return torch::kFloat64;
}

int64_t MatrixProblem::observations() const {
  if (task == Task::sensing) return y.numel();
  if (task == Task::completion) return values.numel();
  return n1 * n2;
}

MatrixProblem generate_matrix_problem(const ProblemSpec& spec, torch::Generator& gen, const torch::Device& device) {
  check_spec(spec);
  MatrixProblem p;
  switch (spec.task) {
    case Task::sensing: p = generate_sensing(spec, gen); break;
    case Task::completion:
    case Task::powerlaw: p = generate_completion(spec, gen); break;
    case Task::rpca: p = generate_rpca(spec, gen); break;
    case Task::tucker: throw InputError("tucker is a tensor problem: use generate_tucker_problem");
  }
  for (auto* t : {&p.A, &p.y, &p.rows, &p.cols, &p.values, &p.Y, &p.truth.left, &p.truth.right})
    move_tensor(*t, device, spec.dtype);
  if (p.task == Task::completion) index_entries(p);
  return p;
}

TuckerProblem generate_tucker_problem(const ProblemSpec& spec, torch::Generator& gen, const torch::Device& device) {
  require(spec.task == Task::tucker, "generate_tucker_problem needs task tucker");
  check_spec(spec);
  TuckerProblem p;
  p.dims = {spec.n1, spec.n2, spec.n3 > 0 ? spec.n3 : spec.n1};
  p.rank = spec.rank;
  p.ratio = spec.ratio;
  int64_t r = spec.rank;
  // Core of TC.m: S(j1, j2, j3) = 1/√r where j1 + j2 + j3 ≡ 0 (mod r) (1-based), so every
  // unfolding has orthonormal rows; then S* = S ×₁ diag(linspace(1, 1/κ, r)).
  auto core = torch::zeros({r, r, r}, torch::kFloat64);
  auto acc = core.accessor<double, 3>();
  for (int64_t a = 0; a < r; ++a)
    for (int64_t b = 0; b < r; ++b)
      for (int64_t c = 0; c < r; ++c)
        if ((a + b + c + 3) % r == 0) acc[a][b][c] = 1.0 / std::sqrt(static_cast<double>(r));
  core = mode_product(core, torch::diag(condition_spectrum(r, spec.kappa)), 0);
  std::array<torch::Tensor, 3> U;
  for (int k = 0; k < 3; ++k) U[k] = orthonormal(p.dims[k], r, gen);
  for (int k = 0; k < 3; ++k) {
    auto sv = to_vector(torch::linalg_svdvals(unfold(core, k)));
    p.core_singular_values.insert(p.core_singular_values.end(), sv.begin(), sv.end());
  }
  p.truth = tucker_product(core, U);
  p.mask = (uniform({p.dims[0], p.dims[1], p.dims[2]}, gen) < spec.ratio).to(torch::kFloat64);
  require(p.mask.sum().item<double>() > 0, "no entry was sampled; raise the sampling ratio");
  p.Y = add_noise(p.truth, spec.noise, gen) * p.mask;
  for (auto* t : {&p.mask, &p.Y, &p.truth}) move_tensor(*t, device, spec.dtype);
  return p;
}

MatrixProblem sensing_problem(const torch::Tensor& A, const torch::Tensor& y, int64_t rank, bool symmetric,
                              torch::Dtype dtype) {
  require(A.dim() == 3, "sensing operator must be [m, n1, n2], got " + std::to_string(A.dim()) + " dimensions");
  require(y.numel() == A.size(0), "observations must hold m = " + std::to_string(A.size(0)) + " values, got " +
                                      std::to_string(y.numel()));
  MatrixProblem p = sized(Task::sensing, A.size(1), A.size(2), rank, symmetric);
  p.A = A.reshape({A.size(0), p.n1 * p.n2}).to(dtype);
  p.y = y.reshape({-1}).to(dtype);
  validate(p);
  return p;
}

MatrixProblem completion_problem(const torch::Tensor& Y, const torch::Tensor& mask, int64_t rank,
                                 torch::Dtype dtype) {
  require(Y.dim() == 2, "completion observations must be a matrix [n1, n2]");
  require(mask.sizes() == Y.sizes(), "mask shape must equal the observations' shape");
  MatrixProblem p = sized(Task::completion, Y.size(0), Y.size(1), rank);
  auto idx = (mask != 0).nonzero();
  p.rows = idx.select(1, 0).contiguous();
  p.cols = idx.select(1, 1).contiguous();
  p.values = Y.to(dtype).index({p.rows, p.cols});
  p.ratio = static_cast<double>(p.rows.numel()) / static_cast<double>(p.n1 * p.n2);
  index_entries(p);
  validate(p);
  return p;
}

MatrixProblem rpca_problem(const torch::Tensor& Y, int64_t rank, double outliers, torch::Dtype dtype) {
  require(Y.dim() == 2, "robust PCA observations must be a matrix [n1, n2]");
  MatrixProblem p = sized(Task::rpca, Y.size(0), Y.size(1), rank);
  p.outliers = outliers;
  p.Y = Y.to(dtype);
  validate(p);
  return p;
}

TuckerProblem tucker_problem(const torch::Tensor& Y, const torch::Tensor& mask, int64_t rank, torch::Dtype dtype) {
  require(Y.dim() == 3, "tucker observations must be a 3-way tensor");
  require(mask.sizes() == Y.sizes(), "mask shape must equal the observations' shape");
  TuckerProblem p;
  p.dims = {Y.size(0), Y.size(1), Y.size(2)};
  p.rank = rank;
  auto observed = mask != 0;
  require(torch::isfinite(Y).logical_or(observed.logical_not()).all().item<bool>(),
          "observations contain non-finite values at observed entries");
  p.mask = observed.to(dtype);
  p.Y = Y.to(dtype).masked_fill(observed.logical_not(), 0);
  p.ratio = p.mask.sum().item<double>() / static_cast<double>(Y.numel());
  validate(p);
  return p;
}

void set_truth(MatrixProblem& p, const torch::Tensor& X) {
  require(X.dim() == 2 && X.size(0) == p.n1 && X.size(1) == p.n2,
          "truth must be [" + std::to_string(p.n1) + ", " + std::to_string(p.n2) + "]");
  require(torch::isfinite(X).all().item<bool>(), "truth contains non-finite values");
  p.truth = {};
  p.truth.dense = X.to(p.device(), p.dtype());
}

void set_truth(TuckerProblem& p, const torch::Tensor& X) {
  require(X.dim() == 3 && X.size(0) == p.dims[0] && X.size(1) == p.dims[1] && X.size(2) == p.dims[2],
          "truth must have the observations' shape");
  require(torch::isfinite(X).all().item<bool>(), "truth contains non-finite values");
  p.truth = X.to(p.Y.device(), p.Y.scalar_type());
}

void validate(const MatrixProblem& p) {
  require(p.n1 >= 1 && p.n2 >= 1, "matrix dimensions must be positive");
  require(p.rank >= 1 && p.rank <= std::min(p.n1, p.n2),
          "rank " + std::to_string(p.rank) + " is larger than the dimensions " + std::to_string(p.n1) + "x" +
              std::to_string(p.n2) + " allow (or < 1)");
  require(!p.symmetric || (p.task == Task::sensing && p.n1 == p.n2), "symmetric problems must be square sensing");
  auto finite = [](const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); };
  switch (p.task) {
    case Task::sensing:
      require(p.A.defined() && p.A.dim() == 2 && p.A.size(1) == p.n1 * p.n2, "sensing matrix must be [m, n1*n2]");
      require(p.y.defined() && p.y.dim() == 1 && p.y.size(0) == p.A.size(0), "sensing needs m observations");
      require(finite(p.A), "sensing operator contains non-finite values");
      require(finite(p.y), "observations contain non-finite values");
      break;
    case Task::completion:
      require(p.ratio > 0 && p.ratio <= 1, "sampling ratio " + text(p.ratio) + " is outside (0, 1]");
      require(p.values.defined() && p.values.numel() > 0, "completion needs at least one observed entry");
      require(p.rows.numel() == p.values.numel() && p.cols.numel() == p.values.numel(),
              "observed rows, columns and values differ in length");
      require(p.rows.min().item<int64_t>() >= 0 && p.rows.max().item<int64_t>() < p.n1 &&
                  p.cols.min().item<int64_t>() >= 0 && p.cols.max().item<int64_t>() < p.n2,
              "observed indices fall outside the matrix");
      require(finite(p.values), "observations contain non-finite values at observed entries");
      require(p.pattern.row_ptr.defined() && p.pattern.row_ptr.numel() == p.n1 + 1 &&
                  p.pattern.by_column.numel() == p.values.numel(),
              "completion problem is not indexed (call index_entries)");
      break;
    case Task::rpca:
      require(p.Y.defined() && p.Y.dim() == 2 && p.Y.size(0) == p.n1 && p.Y.size(1) == p.n2,
              "robust PCA observations must be [n1, n2]");
      require(p.outliers >= 0 && p.outliers < 0.5, "outlier fraction must be in [0, 0.5)");
      require(finite(p.Y), "observations contain non-finite values");
      break;
    default: throw InputError("task " + task_name(p.task) + " is not a matrix problem");
  }
}

void validate(const TuckerProblem& p) {
  require(p.dims[0] >= 1 && p.dims[1] >= 1 && p.dims[2] >= 1, "tensor dimensions must be positive");
  int64_t smallest = std::min({p.dims[0], p.dims[1], p.dims[2]});
  require(p.rank >= 1 && p.rank <= smallest, "rank " + std::to_string(p.rank) +
                                                 " is larger than the smallest dimension " +
                                                 std::to_string(smallest) + " (or < 1)");
  require(p.ratio > 0 && p.ratio <= 1, "sampling ratio " + text(p.ratio) + " is outside (0, 1]");
  require(p.mask.defined() && p.Y.defined() && p.mask.sizes() == p.Y.sizes() && p.Y.dim() == 3,
          "tucker needs observations and a mask of the same 3-way shape");
  require(torch::isfinite(p.Y).all().item<bool>(), "observations contain non-finite values");
}

torch::Tensor dense_truth(const MatrixProblem& p) {
  if (p.truth.dense.defined()) return p.truth.dense;
  if (p.truth.left.defined()) return p.truth.left.mm(p.truth.right.t());
  return {};
}

torch::Tensor observed_matrix(const MatrixProblem& p) {
  if (p.task == Task::rpca) return p.Y;
  require(p.task == Task::completion, "observed_matrix: only completion and robust PCA have a data matrix");
  return torch::zeros({p.n1, p.n2}, p.values.options()).index_put_({p.rows, p.cols}, p.values);
}

torch::Tensor observed_mask(const MatrixProblem& p) {
  require(p.task == Task::completion, "observed_mask: only completion problems have a mask");
  return torch::zeros({p.n1, p.n2}, p.rows.options().dtype(torch::kBool))
      .index_put_({p.rows, p.cols}, torch::ones({1}, p.rows.options().dtype(torch::kBool)));
}

void index_entries(MatrixProblem& p) {
  auto key = p.rows * p.n2 + p.cols;
  if (key.numel() > 1 && !(key.slice(0, 1) >= key.slice(0, 0, -1)).all().item<bool>()) {
    auto order = std::get<1>(key.sort(c10::optional<bool>(true), 0, false));
    p.rows = p.rows.index_select(0, order);
    p.cols = p.cols.index_select(0, order);
    p.values = p.values.index_select(0, order);
  }
  p.pattern.row_ptr = offsets(p.rows, p.n1);
  p.pattern.col_ptr = offsets(p.cols, p.n2);
  p.pattern.by_column = std::get<1>((p.cols * p.n1 + p.rows).sort(c10::optional<bool>(true), 0, false));
  p.pattern.rows_by_column = p.rows.index_select(0, p.pattern.by_column);
}

torch::Tensor observed_csr(const MatrixProblem& p, const torch::Tensor& values) {
  return csr(p.pattern.row_ptr, p.cols, values, p.n1, p.n2);
}

torch::Tensor observed_csr_transpose(const MatrixProblem& p, const torch::Tensor& values) {
  return csr(p.pattern.col_ptr, p.pattern.rows_by_column, values.index_select(0, p.pattern.by_column), p.n2, p.n1);
}

torch::Tensor sampled_product(const torch::Tensor& L, const torch::Tensor& R, const torch::Tensor& rows,
                              const torch::Tensor& cols) {
  int64_t k = rows.numel();
  auto out = torch::empty({k}, L.options());
  for (int64_t s = 0; s < k; s += kChunk) {
    int64_t e = std::min(k, s + kChunk);
    auto Li = L.index_select(0, rows.slice(0, s, e)), Rj = R.index_select(0, cols.slice(0, s, e));
    out.slice(0, s, e).copy_(Li.unsqueeze(1).bmm(Rj.unsqueeze(2)).view({-1}));  // ⟨L_i, R_j⟩ per entry
  }
  return out;
}

double factored_distance(const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                         const torch::Tensor& D) {
  // A Bᵀ − C Dᵀ = [A, −C] [B, D]ᵀ = Q₁ T₁ T₂ᵀ Q₂ᵀ, and Q₁, Q₂ have orthonormal columns.
  auto T1 = std::get<1>(torch::linalg_qr(torch::cat({A, -C}, 1), "r"));
  auto T2 = std::get<1>(torch::linalg_qr(torch::cat({B, D}, 1), "r"));
  return T1.mm(T2.t()).norm().item<double>();
}

double factored_norm(const torch::Tensor& L, const torch::Tensor& R) {
  // ‖L Rᵀ‖²_F = tr(LᵀL RᵀR): a sum of non-negative terms, no cancellation.
  return std::sqrt(std::max(0.0, (L.t().mm(L) * R.t().mm(R)).sum().item<double>()));
}

double relative_error(const torch::Tensor& L, const torch::Tensor& R, const MatrixTruth& truth) {
  if (truth.left.defined())
    return factored_distance(L, R, truth.left, truth.right) / factored_norm(truth.left, truth.right);
  if (truth.dense.defined()) return ((L.mm(R.t()) - truth.dense).norm() / truth.dense.norm()).item<double>();
  return NAN;
}

}  // namespace tweedie::lowrank
