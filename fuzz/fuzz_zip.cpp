// libFuzzer harness: tweedie::io::ZipReader (central directory, local headers, CRC-32). Like
// fuzz_torch_pt, a second pass reads the input with its record CRCs recomputed.
#include <string>

#include "fuzz/fuzz_common.h"
#include "fuzz/zip_fixup.h"
#include "tweedie/io/zip_reader.h"

TWEEDIE_FUZZ_INIT

namespace {

void read(std::string_view bytes) {
  try {
    tweedie::io::ZipReader zip(bytes, "fuzz.zip");
    for (const auto& entry : zip.entries()) {
      if (!zip.contains(entry.name)) __builtin_trap();
      try {  // one bad record must not hide the others
        std::string_view record = zip.read(entry.name);
        if (record.size() != entry.size) __builtin_trap();
        volatile char sink = 0;
        for (char c : record) sink = sink ^ c;
      } catch (const tweedie::InputError&) {
      }
    }
  } catch (const tweedie::InputError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tweedie::fuzz::read_as_is_and_fixed(data, size, read, tweedie::fuzz::fix_zip_crcs);
}
