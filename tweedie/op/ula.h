#pragma once
// Angle-of-arrival estimation with a uniform linear array (the radar task of seed 004, paper §4.2).
//
// M antennas at half-wavelength spacing see K far-field sources; antenna i receives
//   x_i(l) = Σ_k s_k(l) e^{jπ i sin θ_k} + n_i(l),   l = 1 … L snapshots,
// so the covariance is R = Σ_g p_g a(θ_g) a(θ_g)ᴴ + σ² I with a(θ)_i = e^{jπ i sin θ} and p the
// power spectrum on an angle grid — sparse: one entry per source. R_{ij} depends only on the lag
// i − j, and the noise only on lag 0, so the measurements are the lag averages of the sample
// covariance R̂ for lags k = 1 … M−1:
//   y_k = mean_i R̂_{i+k, i} ≈ Σ_g p_g e^{jπ k sin θ_g}     (operator "ula", linear in p, complex y)
// The spectrum p ≥ 0 is the signal (any shape; its numel is the number of grid angles, spread
// evenly over [−span, span] degrees). MUSIC on R̂ is the classical baseline.
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "tweedie/op/operator.h"

namespace tweedie::op {

struct UlaOptions {
  int64_t elements = 16;  // M antennas
  double span = 60;       // grid over [−span, span] degrees
};
std::shared_ptr<Operator> make_ula(Shape in, const UlaOptions& o);

// Grid angles in degrees: linspace(−span, span, G).
std::vector<double> ula_grid(int64_t G, double span);

// L snapshots of K sources (unit-variance complex Gaussian amplitudes scaled by √power) with
// white complex noise of power `noise_power`; the sample covariance R̂ = X Xᴴ / L [M, M] and its
// lag averages y [M−1] (complex128).
struct UlaSnapshots {
  torch::Tensor covariance;  // [M, M]
  torch::Tensor lags;        // [M − 1]
};
UlaSnapshots simulate_ula_snapshots(const std::vector<double>& angles_deg, const std::vector<double>& powers,
                                    int64_t elements, int64_t snapshots, double noise_power, torch::Generator& gen);

// MUSIC pseudo-spectrum 1/‖E_nᴴ a(θ)‖² on `grid_deg`, E_n the M − K noise eigenvectors of R̂.
torch::Tensor music_spectrum(const torch::Tensor& covariance, int64_t sources, const std::vector<double>& grid_deg);

// The `count` highest local maxima of a spectrum over `grid_deg`, sorted by angle.
std::vector<double> peak_angles(const torch::Tensor& spectrum, const std::vector<double>& grid_deg, int64_t count);

// RMSE in degrees between sorted estimated and true angles (missing peaks count as the span).
double angle_rmse(std::vector<double> estimated, std::vector<double> truth, double miss_penalty);

}  // namespace tweedie::op
