#pragma once
// Fourier phase retrieval: y = |F_c(pad(m_k ⊙ x))| per channel, with F_c the centred
// orthonormal 2-D FFT (mri.h) and pad = ⌊oversample/8 · side⌋ zeros on each side
// (DPS measurements.py PhaseRetrievalOperator: 64 at oversample 2.0 for 256-pixel images).
// Nonlinear; the VJP comes from autograd. Without coded masks there is one, all-ones mask.
// Coded masks (DPnP measurements.py, coded diffraction): entries −1 w.p. 1/8, +1 w.p. 1/8,
// 0 otherwise, [K, H, W] shared by the channels; y is [B, K·C, H + 2p, W + 2p] (mask-major).
// DPS applies the operator to x ∈ [-1, 1]; DAPS first maps x to (x + 1)/2.
#include <memory>

#include "tweedie/op/operator.h"

namespace tweedie::op {

struct PhaseOptions {
  double oversample = 2.0;  // DPS/DAPS/MO phase retrieval
  int64_t masks = 0;        // 0 = uncoded; DPnP's coded PR uses random modulations
  uint64_t seed = 0;
};

std::shared_ptr<Operator> make_phase(Shape in, const PhaseOptions& o);

}  // namespace tweedie::op
