#pragma once
// Seeds derived from seeds. A random object is defined by (shape, seed); its parts (rows of a
// matrix, the noise of a channel) get their own streams derived here, so they never depend on
// how the work is split into blocks or on the order in which parts are drawn.
#include <cstdint>

namespace tweedie {

// SplitMix64 (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// An independent stream `stream` of `seed` (e.g. stream 1 = measurement noise).
inline uint64_t derive_seed(uint64_t seed, uint64_t stream) { return splitmix64(splitmix64(seed) ^ stream); }

}  // namespace tweedie
