// libFuzzer harness: tweedie::io::parse_torch_pt (torch.save checkpoints: zip and legacy).
// Zip inputs are read as they are and, when a record's CRC-32 no longer matches (almost every
// mutation of data.pkl or a storage), again with the CRCs recomputed (fuzz/zip_fixup.h), so
// the unpickler and the tensor rebuilding behind the CRC check are fuzzed too.
#include <string>

#include "fuzz/fuzz_common.h"
#include "fuzz/zip_fixup.h"
#include "tweedie/io/torch_pt.h"

TWEEDIE_FUZZ_INIT

namespace {

void read(std::string_view bytes) {
  try {
    auto tensors = tweedie::io::parse_torch_pt(bytes, "fuzz.pt");
    for (auto& [name, t] : tensors)
      if (t.numel() > 0) (void)t.flatten().to(torch::kDouble).sum();
  } catch (const tweedie::InputError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tweedie::fuzz::read_as_is_and_fixed(data, size, read, tweedie::fuzz::fix_zip_crcs);
}
