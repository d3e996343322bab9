#pragma once
// Process memory as the kernel counts it (Linux /proc/self/status), for reports and for the
// peak-memory tests and benchmarks.
#include <cstdint>

namespace tweedie {

// Current resident set (VmRSS) and its high-water mark (VmHWM), in bytes; -1 if unknown.
int64_t resident_bytes();
int64_t peak_resident_bytes();
// Resets the high-water mark to the current resident set (writes 5 to /proc/self/clear_refs,
// Linux ≥ 4.0). False when the kernel refuses.
bool reset_peak_resident();

}  // namespace tweedie
