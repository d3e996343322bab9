#pragma once
// Low-rank recovery problems and their ground truth: generators for matrix sensing, matrix
// completion, robust PCA, Tucker tensor completion and a power-law-spectrum matrix, builders for
// problems read from files, validation, and the relative error of a factored estimate.
//
// The generators follow the official MATLAB experiments of Tong, Ma, Chi (JMLR 2021 experiments;
// github.com/Titan-Tong/ScaledGD matrix/MS.m, MC.m, RPCA.m) and Tong, Ma, Chi (tensor ScaledGD,
// 2021; tensor/TC.m): σ*_i = linspace(1, 1/κ, r), random orthonormal factors (we use the Q of a
// Gaussian matrix; the scripts use the SVD of a sign matrix and, a typo, reuse U for V), Gaussian
// sensing matrices with entries N(0, 1/m), Bernoulli(p) sampling.
#include <torch/torch.h>

#include <array>
#include <string>
#include <vector>

namespace tweedie::lowrank {

enum class Task { sensing, completion, rpca, tucker, powerlaw };
std::string task_name(Task task);
Task parse_task(const std::string& name);  // InputError listing the names

// What to generate. Every random draw comes from the caller's generator in a fixed order
// (factors, then the measurement design, then noise), so problems that differ only in κ share
// their factors, sensing matrix and sampling pattern, as in the MATLAB scripts.
struct ProblemSpec {
  Task task = Task::completion;
  int64_t n1 = 100, n2 = 100;
  int64_t n3 = 0;             // tucker: third dimension (0 = n1)
  int64_t rank = 5;           // r; powerlaw: the rank of the approximation sought
  double kappa = 1;           // σ*_i = linspace(1, 1/κ, r); tucker: the core's mode-1 scaling (TC.m)
  double ratio = 0.2;         // completion, tucker, powerlaw: P[entry observed] = p (MC.m: 0.2, TC.m: 0.1)
  int64_t measurements = 0;   // sensing: m; 0 = 5 r (n1 + n2)/2 (MS.m: m = 5nr)
  double outliers = 0.1;      // rpca: fraction α of corrupted entries (RPCA.m: α = 0.1)
  double outlier_scale = 10;  // rpca: corruptions ~ N(0, (scale · rms X*)²) on a Bernoulli(α) support [INFERRED]
  double decay = 1;           // powerlaw: σ_i = i^(−decay), i = 1..min(n1, n2)
  double noise = 0;           // standard deviation of Gaussian noise added to every observation
  bool symmetric = false;     // sensing: X* = U Σ Uᵀ ⪰ 0, fitted as X Xᵀ (ScaledGD(λ) setting); n1 = n2
  torch::Dtype dtype = torch::kFloat64;
};

// X* in factored form X* = left · rightᵀ (generated problems) or dense (read from a file).
struct MatrixTruth {
  torch::Tensor left, right, dense;
  std::vector<double> singular_values;  // of X*, when generated
  bool known() const { return left.defined() || dense.defined(); }
};

// Ω compressed for sparse products with P_Ω(·), built once per problem by index_entries():
// the entries are stored row-major, row_ptr delimits the rows, by_column orders them column-major.
struct SparsePattern {
  torch::Tensor row_ptr;         // [n1 + 1]
  torch::Tensor col_ptr;         // [n2 + 1]
  torch::Tensor by_column;       // permutation of the entries into column-major order
  torch::Tensor rows_by_column;  // rows[by_column]
};

// A matrix problem. Which members are set depends on `task`:
//   sensing     y = 𝒜(X*) = A vec(X*), A [m, n1·n2] (row-major vec), y [m]
//   completion  observed entries Y[rows[k], cols[k]] = values[k] (row-major order), ratio = p,
//               pattern = Ω compressed (index_entries)
//   rpca        Y = X* + S* [n1, n2]; outliers = α, the sparsity the estimator T_α assumes
// A power-law problem is a completion problem whose truth is the best rank-r approximation.
struct MatrixProblem {
  Task task = Task::completion;
  int64_t n1 = 0, n2 = 0, rank = 0;
  bool symmetric = false;
  torch::Tensor A, y;
  torch::Tensor rows, cols, values;
  double ratio = 1;
  SparsePattern pattern;
  torch::Tensor Y;
  double outliers = 0;
  MatrixTruth truth;

  torch::Device device() const;
  torch::Dtype dtype() const;
  int64_t observations() const;  // m, |Ω| or n1·n2
};

// Tucker tensor completion: Y = P_Ω(X*) with X* = S* ×₁ U₁ ×₂ U₂ ×₃ U₃, multilinear rank (r, r, r).
struct TuckerProblem {
  std::array<int64_t, 3> dims{};
  int64_t rank = 0;
  double ratio = 1;
  torch::Tensor mask;   // [n1, n2, n3], 1 where observed, in the problem's dtype
  torch::Tensor Y;      // [n1, n2, n3], zero where unobserved
  torch::Tensor truth;  // dense X*, or undefined
  std::vector<double> core_singular_values;  // all singular values of the truth's core unfoldings
};

// Generators. InputError on a bad spec: rank outside [1, min dims], ratio outside (0, 1],
// κ < 1, a sensing matrix too large to hold (m·n1·n2 > 2.5e8 entries), ...
MatrixProblem generate_matrix_problem(const ProblemSpec& spec, torch::Generator& gen,
                                      const torch::Device& device = torch::kCPU);
TuckerProblem generate_tucker_problem(const ProblemSpec& spec, torch::Generator& gen,
                                      const torch::Device& device = torch::kCPU);

// Problems from tensors read from files (any real dtype; kept on their device, cast to `dtype`).
// A: [m, n1, n2]; masks: nonzero = observed; only observed values must be finite.
MatrixProblem sensing_problem(const torch::Tensor& A, const torch::Tensor& y, int64_t rank, bool symmetric,
                              torch::Dtype dtype = torch::kFloat64);
MatrixProblem completion_problem(const torch::Tensor& Y, const torch::Tensor& mask, int64_t rank,
                                 torch::Dtype dtype = torch::kFloat64);
MatrixProblem rpca_problem(const torch::Tensor& Y, int64_t rank, double outliers,
                           torch::Dtype dtype = torch::kFloat64);
TuckerProblem tucker_problem(const torch::Tensor& Y, const torch::Tensor& mask, int64_t rank,
                             torch::Dtype dtype = torch::kFloat64);
// Attaches a dense truth (shape checked).
void set_truth(MatrixProblem& problem, const torch::Tensor& X);
void set_truth(TuckerProblem& problem, const torch::Tensor& X);

// InputError naming the defect: rank > dimensions, ratio outside (0, 1], non-finite observations,
// inconsistent shapes.
void validate(const MatrixProblem& problem);
void validate(const TuckerProblem& problem);

// Dense views, for files and small problems.
torch::Tensor dense_truth(const MatrixProblem& problem);  // undefined if unknown
torch::Tensor observed_matrix(const MatrixProblem& problem);  // completion: zero-filled Y; rpca: Y
torch::Tensor observed_mask(const MatrixProblem& problem);    // completion: bool [n1, n2]

// Sorts a completion problem's entries row-major and builds its pattern (the builders call it).
void index_entries(MatrixProblem& problem);
// The n1×n2 matrix with values[k] at the k-th observed entry (and its n2×n1 transpose) as sparse
// CSR tensors, for products P_Ω(Z) B in O(|Ω| b).
torch::Tensor observed_csr(const MatrixProblem& problem, const torch::Tensor& values);
torch::Tensor observed_csr_transpose(const MatrixProblem& problem, const torch::Tensor& values);

// Entries (L Rᵀ)[rows[k], cols[k]], in chunks (never forms the n1×n2 product).
torch::Tensor sampled_product(const torch::Tensor& L, const torch::Tensor& R, const torch::Tensor& rows,
                              const torch::Tensor& cols);

// ‖A Bᵀ − C Dᵀ‖_F in O((n1 + n2) r²) from the QRs of [A, −C] and [B, D], accurate to the last
// digits even when the difference is 1e-12 of the products (no cancellation of squared norms).
double factored_distance(const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                         const torch::Tensor& D);
// ‖L Rᵀ‖_F.
double factored_norm(const torch::Tensor& L, const torch::Tensor& R);
// ‖L Rᵀ − X*‖_F / ‖X*‖_F; NaN when the truth is unknown.
double relative_error(const torch::Tensor& L, const torch::Tensor& R, const MatrixTruth& truth);

}  // namespace tweedie::lowrank
