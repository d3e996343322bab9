#include "tweedie/diffusion/schedule.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "tweedie/core/error.h"

namespace tweedie::diffusion {
namespace {

constexpr double kPi = 3.14159265358979323846;

void require_steps(int64_t num_timesteps) {
  require(num_timesteps >= 1, "diffusion schedule: number of timesteps must be >= 1, got " +
                                  std::to_string(num_timesteps));
}

// np.linspace(start, stop, num) with endpoint: y_i = i·step + start, step = (stop−start)/(num−1),
// and the last entry set to `stop` exactly.
std::vector<double> linspace(double start, double stop, int64_t num) {
  std::vector<double> y(static_cast<size_t>(num));
  if (num == 1) {
    y[0] = start;
    return y;
  }
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (int64_t i = 0; i < num; ++i) y[i] = static_cast<double>(i) * step + start;
  y[num - 1] = stop;
  return y;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// A non-negative decimal integer (surrounding blanks allowed, as Python's int() does).
int64_t parse_count(const std::string& text, const std::string& spec) {
  const std::string t = trim(text);
  const bool digits = !t.empty() && t.size() <= 18 &&
                      std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  require(digits, "timestep respacing '" + spec + "': '" + text +
                      "' is not a non-negative integer (expected \"ddimN\", \"N\" or \"a,b,c\")");
  return std::stoll(t);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ',') {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

// "ddimN": the first integer stride i in [1, T) with len(range(0, T, i)) == N.
std::vector<int64_t> ddim_timesteps(int64_t num_timesteps, int64_t desired,
                                    const std::string& spec) {
  for (int64_t i = 1; i < num_timesteps; ++i) {
    if ((num_timesteps + i - 1) / i != desired) continue;  // len(range(0, T, i)) = ⌈T/i⌉
    std::vector<int64_t> steps;
    for (int64_t t = 0; t < num_timesteps; t += i) steps.push_back(t);
    return steps;
  }
  throw InputError("timestep respacing '" + spec + "': cannot create exactly " +
                   std::to_string(desired) + " steps from " + std::to_string(num_timesteps) +
                   " with an integer stride");
}

// One section of `count` steps out of `size`, starting at `start` (respace.space_timesteps).
void take_section(int64_t start, int64_t size, int64_t count, const std::string& spec,
                  std::set<int64_t>* steps) {
  require(count <= size, "timestep respacing '" + spec + "': cannot divide a section of " +
                             std::to_string(size) + " steps into " + std::to_string(count));
  const double frac_stride =
      count <= 1 ? 1.0 : static_cast<double>(size - 1) / static_cast<double>(count - 1);
  double cur_idx = 0.0;  // accumulated, not j·stride: the reference's rounding depends on it
  for (int64_t j = 0; j < count; ++j) {
    steps->insert(start + round_half_even(cur_idx));
    cur_idx += frac_stride;
  }
}

template <class F>
std::vector<double> map_table(const std::vector<double>& a, F f) {
  std::vector<double> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = f(i);
  return out;
}

}  // namespace

// ---- beta schedules -------------------------------------------------------------------------

std::vector<double> linear_betas(int64_t num_timesteps) {
  require_steps(num_timesteps);
  const double scale = 1000.0 / static_cast<double>(num_timesteps);
  return linspace(scale * 0.0001, scale * 0.02, num_timesteps);  // β from s·1e-4 to s·0.02
}

std::vector<double> betas_for_alpha_bar(int64_t num_timesteps,
                                        const std::function<double(double)>& alpha_bar,
                                        double max_beta) {
  require_steps(num_timesteps);
  std::vector<double> betas(static_cast<size_t>(num_timesteps));
  const double n = static_cast<double>(num_timesteps);
  for (int64_t i = 0; i < num_timesteps; ++i) {
    const double t1 = static_cast<double>(i) / n, t2 = static_cast<double>(i + 1) / n;
    betas[i] = std::min(1.0 - alpha_bar(t2) / alpha_bar(t1), max_beta);  // β_i = 1 − ᾱ(t2)/ᾱ(t1)
  }
  return betas;
}

std::vector<double> cosine_betas(int64_t num_timesteps) {
  return betas_for_alpha_bar(num_timesteps, [](double t) {
    const double c = std::cos((t + 0.008) / 1.008 * kPi / 2);  // ᾱ(t) = cos²((t+s)/(1+s)·π/2)
    return c * c;
  });
}

std::vector<double> named_betas(const std::string& name, int64_t num_timesteps) {
  if (name == "linear") return linear_betas(num_timesteps);
  if (name == "cosine") return cosine_betas(num_timesteps);
  throw InputError("unknown beta schedule '" + name + "' (expected linear or cosine)");
}

std::vector<double> cumprod_alphas(const std::vector<double>& betas) {
  std::vector<double> ac(betas.size());
  double acc = 1.0;
  for (size_t i = 0; i < betas.size(); ++i) {
    const double alpha = 1.0 - betas[i];
    acc = (i == 0) ? alpha : acc * alpha;  // ᾱ_i = ᾱ_{i−1} · α_i
    ac[i] = acc;
  }
  return ac;
}

// ---- respacing ------------------------------------------------------------------------------

int64_t round_half_even(double x) {
  const double f = std::floor(x);
  const double d = x - f;  // exact for the magnitudes used here
  if (d > 0.5) return static_cast<int64_t>(f) + 1;
  if (d < 0.5) return static_cast<int64_t>(f);
  const auto fi = static_cast<int64_t>(f);
  return (fi % 2 == 0) ? fi : fi + 1;
}

std::vector<int64_t> space_timesteps(int64_t num_timesteps, const std::string& spec) {
  require_steps(num_timesteps);
  if (spec.rfind("ddim", 0) == 0) {
    return ddim_timesteps(num_timesteps, parse_count(spec.substr(4), spec), spec);
  }
  std::vector<int64_t> counts;
  for (const auto& part : split_commas(spec)) counts.push_back(parse_count(part, spec));
  const auto sections = static_cast<int64_t>(counts.size());
  const int64_t size_per = num_timesteps / sections, extra = num_timesteps % sections;
  std::set<int64_t> steps;
  int64_t start = 0;
  for (int64_t i = 0; i < sections; ++i) {
    const int64_t size = size_per + (i < extra ? 1 : 0);
    take_section(start, size, counts[i], spec, &steps);
    start += size;
  }
  require(!steps.empty(), "timestep respacing '" + spec + "' keeps no timesteps");
  return {steps.begin(), steps.end()};
}

// ---- schedule tables ------------------------------------------------------------------------

Schedule make_schedule(const std::vector<double>& betas) {
  require(!betas.empty(), "diffusion schedule: no betas");
  for (double b : betas) {
    require(b > 0.0 && b <= 1.0,
            "diffusion schedule: betas must lie in (0, 1], got " + std::to_string(b));
  }
  Schedule s;
  const size_t n = betas.size();
  s.original_num_steps = static_cast<int64_t>(n);
  s.timestep_map.resize(n);
  for (size_t i = 0; i < n; ++i) s.timestep_map[i] = static_cast<int64_t>(i);
  s.betas = betas;
  s.alphas_cumprod = cumprod_alphas(betas);
  const auto& ac = s.alphas_cumprod;
  s.alphas_cumprod_prev = map_table(ac, [&](size_t i) { return i == 0 ? 1.0 : ac[i - 1]; });
  s.alphas_cumprod_next = map_table(ac, [&](size_t i) { return i + 1 == n ? 0.0 : ac[i + 1]; });
  const auto& acp = s.alphas_cumprod_prev;
  s.sqrt_alphas_cumprod = map_table(ac, [&](size_t i) { return std::sqrt(ac[i]); });
  s.sqrt_one_minus_alphas_cumprod = map_table(ac, [&](size_t i) { return std::sqrt(1.0 - ac[i]); });
  s.log_one_minus_alphas_cumprod = map_table(ac, [&](size_t i) { return std::log(1.0 - ac[i]); });
  s.sqrt_recip_alphas_cumprod = map_table(ac, [&](size_t i) { return std::sqrt(1.0 / ac[i]); });
  s.sqrt_recipm1_alphas_cumprod =
      map_table(ac, [&](size_t i) { return std::sqrt(1.0 / ac[i] - 1.0); });
  // β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)   (DDPM eq. 7)
  s.posterior_variance =
      map_table(ac, [&](size_t i) { return betas[i] * (1.0 - acp[i]) / (1.0 - ac[i]); });
  const auto& pv = s.posterior_variance;
  // log β̃ with entry 0 (β̃_0 = 0) replaced by entry 1; a 1-step schedule keeps log 0 = −inf.
  s.posterior_log_variance_clipped =
      map_table(ac, [&](size_t i) { return std::log(i == 0 && n > 1 ? pv[1] : pv[i]); });
  // μ̃_t = coef1 x0 + coef2 x_t, coef1 = β √ᾱ_{t−1}/(1−ᾱ), coef2 = (1−ᾱ_{t−1}) √α_t/(1−ᾱ)
  s.posterior_mean_coef1 =
      map_table(ac, [&](size_t i) { return betas[i] * std::sqrt(acp[i]) / (1.0 - ac[i]); });
  s.posterior_mean_coef2 = map_table(
      ac, [&](size_t i) { return (1.0 - acp[i]) * std::sqrt(1.0 - betas[i]) / (1.0 - ac[i]); });
  s.log_betas = map_table(ac, [&](size_t i) { return std::log(betas[i]); });
  s.fixed_large_variance =
      map_table(ac, [&](size_t i) { return i == 0 ? (n > 1 ? pv[1] : betas[0]) : betas[i]; });
  s.fixed_large_log_variance =
      map_table(ac, [&](size_t i) { return std::log(s.fixed_large_variance[i]); });
  return s;
}

Schedule make_schedule(const std::string& name, int64_t num_timesteps) {
  return make_schedule(named_betas(name, num_timesteps));
}

Schedule respace(const Schedule& base, const std::vector<int64_t>& use_timesteps) {
  const std::set<int64_t> keep(use_timesteps.begin(), use_timesteps.end());
  require(!keep.empty(), "timestep respacing keeps no timesteps");
  require(*keep.begin() >= 0 && *keep.rbegin() < base.size(),
          "timestep respacing: kept timesteps must lie in [0, " + std::to_string(base.size()) +
              "), got " + std::to_string(*keep.begin()) + ".." + std::to_string(*keep.rbegin()));
  std::vector<double> betas;
  std::vector<int64_t> map;
  double last_alpha_cumprod = 1.0;
  for (int64_t t : keep) {  // ascending, as SpacedDiffusion walks the base ᾱ
    const double ac = base.alphas_cumprod[t];
    betas.push_back(1.0 - ac / last_alpha_cumprod);  // β'_k = 1 − ᾱ[t_k]/ᾱ[t_{k−1}]
    last_alpha_cumprod = ac;
    map.push_back(base.timestep_map[t]);
  }
  Schedule s = make_schedule(betas);
  s.timestep_map = std::move(map);
  s.original_num_steps = base.original_num_steps;
  return s;
}

Schedule respace(const Schedule& base, const std::string& spec) {
  return respace(base, space_timesteps(base.size(), spec));
}

std::vector<double> ve_sigmas(const Schedule& schedule) {
  const auto& ac = schedule.alphas_cumprod;
  return map_table(ac, [&](size_t i) { return std::sqrt((1.0 - ac[i]) / ac[i]); });
}

// ---- table lookup ---------------------------------------------------------------------------

torch::Tensor extract(const std::vector<double>& table, const torch::Tensor& index, int64_t ndim,
                      torch::ScalarType dtype, torch::Device device) {
  const torch::Tensor idx = index.to(torch::kCPU, torch::kInt64).contiguous().reshape({-1});
  const int64_t batch = idx.numel();
  const auto n = static_cast<int64_t>(table.size());
  auto out = torch::empty({batch}, torch::kFloat64);
  const int64_t* ip = idx.data_ptr<int64_t>();
  double* op = out.data_ptr<double>();
  for (int64_t b = 0; b < batch; ++b) {
    if (ip[b] < 0 || ip[b] >= n) {
      throw InternalError("diffusion table index " + std::to_string(ip[b]) + " out of range [0, " +
                          std::to_string(n) + ")");
    }
    op[b] = table[static_cast<size_t>(ip[b])];
  }
  std::vector<int64_t> shape(static_cast<size_t>(std::max<int64_t>(ndim, 1)), 1);
  shape[0] = batch;
  return out.to(dtype).reshape(shape).to(device);  // float64 entry → float cast per element
}

torch::Tensor index_tensor(int64_t index, int64_t batch, torch::Device device) {
  return torch::full({batch}, index, torch::TensorOptions().dtype(torch::kInt64).device(device));
}

}  // namespace tweedie::diffusion
