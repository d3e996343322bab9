#pragma once
// Process memory as the kernel counts it (Linux /proc/self/status), for reports and for the
// peak-memory tests and benchmarks; and the guard that refuses a request too large to allocate.
#include <cstdint>
#include <string>

namespace tweedie {

// Current resident set (VmRSS) and its high-water mark (VmHWM), in bytes; -1 if unknown.
int64_t resident_bytes();
int64_t peak_resident_bytes();
// Resets the high-water mark to the current resident set (writes 5 to /proc/self/clear_refs,
// Linux ≥ 4.0). False when the kernel refuses.
bool reset_peak_resident();

// Memory the kernel could give this process now without swapping (MemAvailable of
// /proc/meminfo), in bytes; -1 if unknown. TWEEDIE_MEMORY_LIMIT (bytes, e.g. 8e9) lowers it, for
// tests and shared machines.
int64_t available_memory_bytes();

// "1.2 GB", "780 GB", "512 MB": a byte count for messages (decimal units).
std::string format_bytes(double bytes);

// Refuses, before allocating, a request that needs more than the memory available:
// InputError "<what> needs 780 GB, but 20 GB is available[; <hint>]". `bytes` is a double so
// products of huge sizes cannot overflow.
void require_memory(double bytes, const std::string& what, const std::string& hint = "");

}  // namespace tweedie
