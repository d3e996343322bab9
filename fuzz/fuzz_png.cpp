// libFuzzer harness: tweedie::io::parse_png and parse_png_text (the PNG reader, and behind it
// stb_image, compiled into the fuzz build by stb_image_impl.cpp).
//
// Every chunk carries a CRC-32 that the reader checks first, and a mutated chunk almost never
// has the right one, so mutations would stop at the CRC check. Each input is therefore read
// twice: as it is (the CRC and framing checks), and with every CRC recomputed (the chunk
// contents, IHDR fields, zlib streams and stb's decoder).
#include <zlib.h>

#include <string>

#include "fuzz/fuzz_common.h"
#include "tweedie/io/png.h"

TWEEDIE_FUZZ_INIT

namespace {

uint32_t be32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// Rewrites the CRC of every complete chunk; returns whether anything changed.
bool fix_crcs(std::string& png) {
  bool changed = false;
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint64_t length = be32(png, at);
    if (length > png.size() - at - 12) break;
    uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(png.data() + at + 4), static_cast<uInt>(4 + length));
    const size_t crc_at = at + 8 + length;
    for (int i = 0; i < 4; ++i) {
      const char byte = static_cast<char>((crc >> (24 - 8 * i)) & 0xff);
      changed = changed || png[crc_at + i] != byte;
      png[crc_at + i] = byte;
    }
    at = crc_at + 4;
  }
  return changed;
}

void read(std::string_view bytes) {
  try {
    (void)tweedie::io::parse_png_text(bytes, "fuzz.png");
  } catch (const tweedie::InputError&) {
  }
  try {
    torch::Tensor t = tweedie::io::parse_png(bytes, "fuzz.png");
    if (t.numel() > 0) (void)t.sum();
  } catch (const tweedie::InputError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tweedie::fuzz::read_as_is_and_fixed(data, size, read, fix_crcs);
}
