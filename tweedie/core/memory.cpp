#include "tweedie/core/memory.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "tweedie/core/error.h"

namespace tweedie {
namespace {

// A "Key:   123 kB" field of a /proc file, in bytes; -1 if absent.
int64_t proc_field(const char* file, const char* key) {
  std::ifstream in(file);
  std::string line;
  size_t n = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':') return std::stoll(line.substr(n + 1)) * 1024;
  return -1;
}

int64_t status_field(const char* key) { return proc_field("/proc/self/status", key); }

}  // namespace

int64_t resident_bytes() { return status_field("VmRSS"); }
int64_t peak_resident_bytes() { return status_field("VmHWM"); }

int64_t available_memory_bytes() {
  int64_t avail = proc_field("/proc/meminfo", "MemAvailable");
  if (const char* cap = std::getenv("TWEEDIE_MEMORY_LIMIT")) {
    char* end = nullptr;
    double limit = std::strtod(cap, &end);
    if (end != cap && limit > 0 && (avail < 0 || limit < double(avail))) avail = static_cast<int64_t>(limit);
  }
  return avail;
}

std::string format_bytes(double bytes) {
  static const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 1000 && u < 6) {
    bytes /= 1000;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, bytes < 10 && u > 0 ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  return buf;
}

void require_memory(double bytes, const std::string& what, const std::string& hint) {
  const int64_t avail = available_memory_bytes();
  if (avail < 0 || bytes <= double(avail)) return;
  throw InputError(what + " needs " + format_bytes(bytes) + ", but " + format_bytes(double(avail)) +
                   " of memory is available" + (hint.empty() ? "" : "; " + hint));
}

bool reset_peak_resident() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  bool ok = std::fputs("5", f) >= 0;
  ok = (std::fclose(f) == 0) && ok;
  return ok;
}

}  // namespace tweedie
