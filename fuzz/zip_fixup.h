#pragma once
// For the zip-based harnesses: rewrites the CRC-32 of every stored record (in its central
// directory entry and its local header) so that mutations of a record's bytes (data.pkl,
// storages) get past the CRC check and reach the code behind it. Best effort: records it
// cannot locate (zip64 sizes, offsets outside the input) are left alone.
#include <zlib.h>

#include <cstdint>
#include <string>

namespace tweedie::fuzz {

inline uint32_t le(const std::string& s, size_t at, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

inline void put_le32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Returns whether anything changed.
inline bool fix_zip_crcs(std::string& zip) {
  if (zip.size() < 22) return false;
  size_t eocd = std::string::npos;
  for (size_t pos = zip.size() - 22 + 1; pos-- > 0 && zip.size() - pos <= 22 + 0xFFFF;) {
    if (le(zip, pos, 4) == 0x06054b50) {
      eocd = pos;
      break;
    }
  }
  if (eocd == std::string::npos) return false;
  const uint32_t count = le(zip, eocd + 10, 2);
  size_t cd = le(zip, eocd + 16, 4);
  bool changed = false;
  for (uint32_t i = 0; i < count && cd + 46 <= zip.size() && le(zip, cd, 4) == 0x02014b50; ++i) {
    const uint64_t csize = le(zip, cd + 20, 4);
    const uint64_t name_len = le(zip, cd + 28, 2), extra_len = le(zip, cd + 30, 2), comment_len = le(zip, cd + 32, 2);
    const uint64_t local = le(zip, cd + 42, 4);
    if (local + 30 <= zip.size() && le(zip, local, 4) == 0x04034b50 && csize != 0xFFFFFFFF) {
      const uint64_t data = local + 30 + le(zip, local + 26, 2) + le(zip, local + 28, 2);
      if (data <= zip.size() && csize <= zip.size() - data) {
        const uint32_t crc = static_cast<uint32_t>(
            crc32_z(0L, reinterpret_cast<const Bytef*>(zip.data() + data), static_cast<size_t>(csize)));
        changed = changed || le(zip, cd + 16, 4) != crc || le(zip, local + 14, 4) != crc;
        put_le32(zip, cd + 16, crc);
        put_le32(zip, local + 14, crc);
      }
    }
    cd += 46 + name_len + extra_len + comment_len;
  }
  return changed;
}

}  // namespace tweedie::fuzz
