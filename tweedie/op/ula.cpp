#include "tweedie/op/ula.h"

#include <algorithm>
#include <cmath>

#include "tweedie/core/registry.h"
#include "tweedie/core/runtime.h"
#include "tweedie/op/registry.h"

namespace tweedie::op {

std::vector<double> ula_grid(int64_t G, double span) {
  std::vector<double> g(G);
  for (int64_t i = 0; i < G; ++i) g[i] = G == 1 ? 0.0 : -span + 2 * span * double(i) / double(G - 1);
  return g;
}

namespace {

// Steering phases e^{jπ k sin θ_g} for lags k = first … first+n−1: complex [n, G].
torch::Tensor steering(const std::vector<double>& grid_deg, int64_t first, int64_t n, torch::Dtype real) {
  auto s = torch::tensor(grid_deg, torch::kFloat64).mul(M_PI / 180).sin();
  auto k = torch::arange(first, first + n, torch::kFloat64).unsqueeze(1);
  return torch::polar(torch::ones({n, s.size(0)}, torch::kFloat64), M_PI * k * s.unsqueeze(0))
      .to(real == torch::kFloat64 ? torch::kComplexDouble : torch::kComplexFloat);
}

// y = S p with S [M−1, G] the lag-k steering rows; Aᵀy = Re(Sᴴ y).
class Ula : public Operator {
 public:
  Ula(Shape in, UlaOptions o) : Operator(in, {o.elements - 1}), o_(o) {}
  std::string name() const override { return "ula"; }
  std::string spec() const override {
    return "ula:elements=" + std::to_string(o_.elements) + ",span=" + format_number(o_.span);
  }
  bool complex_output() const override { return true; }
  torch::Tensor apply(const torch::Tensor& x) const override {
    check_input(x);
    auto S = matrix(x.scalar_type(), x.device());
    auto p = x.reshape({x.size(0), -1}).to(S.dtype());
    return p.matmul(S.t());  // y_k = Σ_g p_g e^{jπ k sin θ_g}
  }
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    check_output(y);
    auto S = matrix(c10::toRealValueType(y.scalar_type()), y.device());
    return torch::real(y.to(S.dtype()).matmul(S.conj())).reshape(with_batch(y.size(0), in_));  // Re(Sᴴ y)
  }

 private:
  torch::Tensor matrix(torch::Dtype real, const torch::Device& device) const {
    return steering(ula_grid(numel(in_), o_.span), 1, o_.elements - 1, real).to(device);
  }
  UlaOptions o_;
};

}  // namespace

std::shared_ptr<Operator> make_ula(Shape in, const UlaOptions& o) {
  require(o.elements >= 2, "ula: need at least 2 elements");
  require(o.span > 0 && o.span <= 90, "ula: span must be in (0, 90] degrees");
  // The steering matrix: (M − 1) lags x G grid angles, complex double.
  require_elements(static_cast<double>(o.elements - 1) * element_count(in), 16.0,
                   "ula:elements=" + std::to_string(o.elements) + " (the steering matrix)");
  return std::make_shared<Ula>(std::move(in), o);
}

UlaSnapshots simulate_ula_snapshots(const std::vector<double>& angles_deg, const std::vector<double>& powers,
                                    int64_t M, int64_t L, double noise_power, torch::Generator& gen) {
  require(angles_deg.size() == powers.size() && !angles_deg.empty(), "ula: one power per source angle");
  require(M >= 2 && L >= 1 && noise_power >= 0, "ula: need >= 2 elements, >= 1 snapshot, noise power >= 0");
  const int64_t K = static_cast<int64_t>(angles_deg.size());
  auto cgauss = [&](int64_t r, int64_t c) {  // CN(0, 1)
    auto re = randn({r, c}, gen).to(torch::kFloat64), im = randn({r, c}, gen).to(torch::kFloat64);
    return torch::complex(re, im) / std::sqrt(2.0);
  };
  auto A = steering(angles_deg, 0, M, torch::kFloat64);  // [M, K]
  auto amp = torch::tensor(powers, torch::kFloat64).sqrt().to(torch::kComplexDouble).unsqueeze(1);
  auto X = A.matmul(amp * cgauss(K, L)) + std::sqrt(noise_power) * cgauss(M, L);  // x(l) = A s(l) + n(l)
  UlaSnapshots out;
  out.covariance = X.matmul(X.conj().t()) / double(L);  // R̂ = X Xᴴ / L
  out.lags = torch::zeros({M - 1}, torch::kComplexDouble);
  for (int64_t k = 1; k < M; ++k) out.lags[k - 1] = out.covariance.diagonal(-k).mean();  // mean_i R̂_{i+k, i}
  return out;
}

torch::Tensor music_spectrum(const torch::Tensor& R, int64_t K, const std::vector<double>& grid_deg) {
  const int64_t M = R.size(0);
  require(K >= 1 && K < M, "MUSIC: the number of sources must be in 1..M-1");
  auto eig = torch::linalg_eigh(R.to(torch::kComplexDouble));    // eigenvalues ascending
  auto En = std::get<1>(eig).slice(1, 0, M - K);                  // noise subspace [M, M−K]
  auto a = steering(grid_deg, 0, M, torch::kFloat64);             // [M, G]
  auto proj = En.conj().t().matmul(a).abs().pow(2).sum(0);        // ‖E_nᴴ a(θ)‖²
  return 1.0 / proj.clamp_min(1e-300);
}

std::vector<double> peak_angles(const torch::Tensor& spectrum, const std::vector<double>& grid_deg, int64_t count) {
  auto s = spectrum.to(torch::kFloat64).contiguous().cpu();
  const double* v = s.data_ptr<double>();
  const int64_t G = s.numel();
  std::vector<std::pair<double, double>> peaks;  // (value, angle)
  for (int64_t i = 0; i < G; ++i) {
    const bool left = i == 0 || v[i] > v[i - 1], right = i == G - 1 || v[i] >= v[i + 1];
    if (left && right) peaks.emplace_back(v[i], grid_deg[i]);
  }
  std::sort(peaks.begin(), peaks.end(), [](auto& a, auto& b) { return a.first > b.first; });
  std::vector<double> out;
  for (int64_t i = 0; i < std::min<int64_t>(count, peaks.size()); ++i) out.push_back(peaks[i].second);
  std::sort(out.begin(), out.end());
  return out;
}

double angle_rmse(std::vector<double> est, std::vector<double> truth, double miss_penalty) {
  std::sort(est.begin(), est.end());
  std::sort(truth.begin(), truth.end());
  double sum = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const double e = i < est.size() ? est[i] - truth[i] : miss_penalty;
    sum += e * e;
  }
  return truth.empty() ? 0 : std::sqrt(sum / double(truth.size()));
}

void enroll_ula(OperatorRegistry& r) {
  r.add({"ula", "angle of arrival: lag averages of a uniform linear array's covariance, y_k = sum_g p_g e^{j pi k sin theta_g}",
         {{"elements", "16", "antennas M (half-wavelength spacing); y has M - 1 complex lags"},
          {"span", "60", "the spectrum's grid covers [-span, span] degrees"}},
         [](const Params& p, const OpContext& c) {
           UlaOptions o;
           o.elements = p.integer("elements");
           o.span = p.real("span");
           return make_ula(c.in_shape, o);
         },
         {"ula:elements=8"}});
}

}  // namespace tweedie::op
