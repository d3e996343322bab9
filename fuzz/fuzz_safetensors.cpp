// libFuzzer harness: tweedie::io::parse_safetensors.
#include "fuzz/fuzz_common.h"
#include "tweedie/io/safetensors.h"

TWEEDIE_FUZZ_INIT

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto st = tweedie::io::parse_safetensors(tweedie::fuzz::as_view(data, size), "fuzz.safetensors");
    for (auto& [name, t] : st.tensors)
      if (t.numel() > 0) (void)t.flatten().to(torch::kDouble).sum();
  } catch (const tweedie::InputError&) {
  }
  return 0;
}
