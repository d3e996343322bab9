#pragma once
// Shared by the libFuzzer harnesses. A harness feeds the input to one reader; an invalid
// input must end in tweedie::InputError, which is caught. Any other exception escapes
// LLVMFuzzerTestOneInput, std::terminate aborts, and libFuzzer records the input as a crash,
// just like an ASan/UBSan report or a timeout.
#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tweedie/core/error.h"

namespace tweedie::fuzz {

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Feeds `read` the input as it is and, when `fix` changed anything, again with its checksums
// recomputed (PNG chunk and zip record CRCs): random mutations almost never keep a CRC right,
// so without the second pass the fuzzer would stop at the checksum test.
inline int read_as_is_and_fixed(const uint8_t* data, size_t size, void (*read)(std::string_view),
                                bool (*fix)(std::string&)) {
  const auto bytes = as_view(data, size);
  read(bytes);
  std::string fixed(bytes);
  if (fix(fixed)) read(fixed);
  return 0;
}

// One intra-op thread: the parsers are single-threaded, and the machine is shared.
inline void init_torch() {
  at::set_num_threads(1);
}

}  // namespace tweedie::fuzz

#define TWEEDIE_FUZZ_INIT                                              \
  extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) { \
    tweedie::fuzz::init_torch();                                       \
    return 0;                                                          \
  }
