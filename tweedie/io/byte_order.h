#pragma once
// Internal to the library: not installed, not part of the API (cmake/Install.cmake).
// Little-endian integer loads from unaligned bytes. The file formats we read (zip, pickle,
// safetensors, torch storages) are little-endian, and so is every host we build for.
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace tweedie::io {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "tweedie's tensor-file readers assume a little-endian host");

template <typename T>
T load_le(const char* p) {
  static_assert(std::is_trivially_copyable_v<T>);
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace tweedie::io
