#pragma once
// Discrete DDPM noise schedules and timestep respacing, reproducing guided-diffusion
// (`gaussian_diffusion.py`: get_named_beta_schedule, betas_for_alpha_bar, GaussianDiffusion's
// tables; `respace.py`: space_timesteps, SpacedDiffusion). Tables are float64, computed in the
// same order of operations as numpy does, so they match the reference to the last bit.
//
// Plain data + free functions: a Schedule is the set of tables of one GaussianDiffusion (base or
// respaced); `extract` turns one table entry per batch item into a float tensor the way
// guided-diffusion's _extract_into_tensor does (index the float64 table, then cast).
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tweedie::diffusion {

// ---- beta schedules (guided-diffusion get_named_beta_schedule) ------------------------------

// Ho et al. linear schedule extended to any N: linspace(s·1e-4, s·0.02, N), s = 1000/N.
std::vector<double> linear_betas(int64_t num_timesteps);

// β_i = min(1 − ᾱ(t_{i+1})/ᾱ(t_i), max_beta), t_i = i/N (guided-diffusion betas_for_alpha_bar).
std::vector<double> betas_for_alpha_bar(int64_t num_timesteps,
                                        const std::function<double(double)>& alpha_bar,
                                        double max_beta = 0.999);

// Nichol & Dhariwal cosine schedule: ᾱ(t) = cos²((t + 0.008)/1.008 · π/2).
std::vector<double> cosine_betas(int64_t num_timesteps);

// "linear" or "cosine"; anything else is an InputError.
std::vector<double> named_betas(const std::string& name, int64_t num_timesteps);

// ᾱ_i = ∏_{j≤i} (1 − β_j), accumulated left to right like np.cumprod.
std::vector<double> cumprod_alphas(const std::vector<double>& betas);

// ---- respacing (guided-diffusion respace.space_timesteps) -----------------------------------

// Python's round() for floats: nearest integer, ties to even (166.5 → 166, 167.5 → 168).
int64_t round_half_even(double x);

// The sorted set of kept timesteps. `spec` is "ddimN" (integer stride i, the first with
// len(range(0, T, i)) == N), or comma-separated section counts "a,b,c" (each section of T/len
// steps strided by (size−1)/(count−1), positions accumulated and rounded half-to-even).
// Bad specs are a one-line InputError.
std::vector<int64_t> space_timesteps(int64_t num_timesteps, const std::string& spec);

// ---- schedule tables (guided-diffusion GaussianDiffusion.__init__) --------------------------

// All tables of one (possibly respaced) diffusion, float64, length size().
struct Schedule {
  std::vector<int64_t> timestep_map;  // original (base) timestep of each step; what the net sees
  int64_t original_num_steps = 0;     // length of the base schedule

  std::vector<double> betas;
  std::vector<double> alphas_cumprod;       // ᾱ_k
  std::vector<double> alphas_cumprod_prev;  // ᾱ_{k−1}, with ᾱ_{−1} = 1
  std::vector<double> alphas_cumprod_next;  // ᾱ_{k+1}, with ᾱ_N = 0 (guided-diffusion's choice)
  std::vector<double> sqrt_alphas_cumprod;  // √ᾱ
  std::vector<double> sqrt_one_minus_alphas_cumprod;   // √(1−ᾱ)
  std::vector<double> log_one_minus_alphas_cumprod;    // log(1−ᾱ)
  std::vector<double> sqrt_recip_alphas_cumprod;       // √(1/ᾱ)
  std::vector<double> sqrt_recipm1_alphas_cumprod;     // √(1/ᾱ − 1) = σ (VE noise level)
  std::vector<double> posterior_variance;              // β̃ = β (1−ᾱ_prev)/(1−ᾱ)
  std::vector<double> posterior_log_variance_clipped;  // log β̃, entry 0 replaced by entry 1
  std::vector<double> posterior_mean_coef1;            // β √ᾱ_prev/(1−ᾱ)
  std::vector<double> posterior_mean_coef2;            // (1−ᾱ_prev) √α/(1−ᾱ)
  std::vector<double> log_betas;                       // log β (learned-range upper end)
  std::vector<double> fixed_large_variance;            // [β̃_1, β_1, β_2, ...] (FIXED_LARGE)
  std::vector<double> fixed_large_log_variance;

  int64_t size() const { return static_cast<int64_t>(betas.size()); }
};

// Tables for `betas` (each in (0, 1]); the timestep map is the identity.
Schedule make_schedule(const std::vector<double>& betas);
// make_schedule(named_betas(name, num_timesteps)).
Schedule make_schedule(const std::string& name, int64_t num_timesteps);

// SpacedDiffusion: keeps the steps `use_timesteps` (indices into `base`, any order, duplicates
// ignored) with β'_k = 1 − ᾱ[t_k]/ᾱ[t_{k−1}] (ᾱ[t_{−1}] = 1) and tables recomputed from β'.
// The timestep map composes, so respacing a respaced schedule still maps to base timesteps.
Schedule respace(const Schedule& base, const std::vector<int64_t>& use_timesteps);
// respace(base, space_timesteps(base.size(), spec)).
Schedule respace(const Schedule& base, const std::string& spec);

// VE noise levels σ_k = √((1−ᾱ_k)/ᾱ_k), increasing with k.
std::vector<double> ve_sigmas(const Schedule& schedule);

// ---- table lookup ---------------------------------------------------------------------------

// guided-diffusion _extract_into_tensor: table[index[b]] (float64) cast per element to `dtype`,
// shaped [B, 1, ..., 1] with `ndim` dimensions in all, on `device`. `index` is [B] int64.
torch::Tensor extract(const std::vector<double>& table, const torch::Tensor& index, int64_t ndim,
                      torch::ScalarType dtype = torch::kFloat32,
                      torch::Device device = torch::kCPU);

// A [batch] int64 tensor filled with `index` (the `t` guided-diffusion's loops build).
torch::Tensor index_tensor(int64_t index, int64_t batch, torch::Device device = torch::kCPU);

}  // namespace tweedie::diffusion
