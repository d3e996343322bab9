#pragma once
// Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from
// error visibility to structural similarity", eq. 13 with the Gaussian window of §III-C).
//
// The value is exactly skimage's
//   structural_similarity(a01, b01, gaussian_weights=True, sigma=1.5,
//                         use_sample_covariance=False, data_range=1, channel_axis=<C>)
// on the images mapped to [0, 1]: a Gaussian window of σ = 1.5 truncated at 3.5 σ (11 × 11),
// K1 = 0.01, K2 = 0.03, population (not sample) covariances, the SSIM map averaged over the
// valid region (a border of (11 − 1)/2 = 5 pixels dropped), and multichannel images averaged
// over channels. skimage filters with scipy's 'reflect' boundary, but the border it crops is
// exactly the region that boundary reaches, so a valid (unpadded) convolution gives the same
// numbers. Everything is computed in float64.
//
// SSIM is not invariant to an offset of the values (the luminance term compares means), so the
// range the inputs are given in matters: the library's images are in [-1, 1] and are mapped
// by x01 = (x + 1) / 2 (the default `range`). Pass range {0, 1} for images already in [0, 1].
#include <torch/torch.h>

namespace tweedie::metric {

// The interval [lo, hi] input values live in; mapped affinely onto [0, 1].
struct ValueRange {
  double lo = -1.0;  // library convention: images in [-1, 1]
  double hi = 1.0;
};

struct SsimOptions {
  ValueRange range;       // of the inputs; x01 = (x − lo) / (hi − lo)
  double sigma = 1.5;     // Gaussian window standard deviation, pixels (Wang et al. 2004)
  double truncate = 3.5;  // window radius r = int(truncate σ + 0.5) = 5, i.e. 11 × 11 (skimage)
  double k1 = 0.01;       // C1 = (K1 L)², L = data range = 1 after the mapping (Wang et al. 2004)
  double k2 = 0.03;       // C2 = (K2 L)²
};

// Window radius int(truncate σ + 0.5), as scipy.ndimage.gaussian_filter.
int64_t ssim_radius(const SsimOptions& options = {});

// Per-pixel SSIM over the valid region: [B, C, H, W] pairs -> float64 [B, C, H − 2r, W − 2r].
// InputError if the shapes differ, are not 4-D, or an image side is smaller than 2r + 1.
torch::Tensor ssim_map(const torch::Tensor& estimate, const torch::Tensor& reference,
                       const SsimOptions& options = {});

// Mean SSIM per item: the map averaged over pixels, then over channels. [B, C, H, W] -> [B]
// float64; 1 for identical images, symmetric in its arguments, at most 1.
torch::Tensor ssim(const torch::Tensor& estimate, const torch::Tensor& reference,
                   const SsimOptions& options = {});

}  // namespace tweedie::metric
