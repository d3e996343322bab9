// libFuzzer harness: tweedie::io::parse_npy (the .npy reader).
#include "fuzz/fuzz_common.h"
#include "tweedie/io/npy.h"

TWEEDIE_FUZZ_INIT

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    torch::Tensor t = tweedie::io::parse_npy(tweedie::fuzz::as_view(data, size), "fuzz.npy");
    // Touch every element so that a tensor whose storage is shorter than it claims shows up.
    if (t.numel() > 0) (void)t.flatten().sum();
  } catch (const tweedie::InputError&) {
  }
  return 0;
}
