#include "tweedie/io/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

#include "tweedie/core/error.h"
#include "tweedie/io/byte_order.h"

namespace tweedie::io {

namespace {

// Record signatures and fixed sizes from the zip specification (APPNOTE.TXT).
constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndOfCentralDirSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndOfCentralDirSize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EndSize = 56;
constexpr uint16_t kZip64ExtraId = 0x0001;

uint32_t crc32_of(std::string_view data) {
  // crc32_z takes a size_t length, so multi-gigabyte records need no chunking.
  return static_cast<uint32_t>(
      ::crc32_z(0L, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

}  // namespace

ZipReader::ZipReader(std::string_view bytes, std::string file)
    : bytes_(bytes), file_(std::move(file)) {
  parse_central_directory();
}

void ZipReader::fail(const std::string& what) const {
  throw InputError(file_ + ": corrupt zip archive: " + what);
}

const char* ZipReader::at(uint64_t offset, uint64_t length, const char* what) const {
  if (offset > bytes_.size() || length > bytes_.size() - offset)
    fail(std::string(what) + " lies outside the file (truncated?)");
  return bytes_.data() + offset;
}

void ZipReader::parse_central_directory() {
  // The end-of-central-directory record is the last 22 bytes plus a comment of up to 64 KiB.
  if (bytes_.size() < kEndOfCentralDirSize) fail("file too short for a zip archive");
  uint64_t eocd = std::numeric_limits<uint64_t>::max();
  uint64_t lowest = bytes_.size() > kEndOfCentralDirSize + 0xFFFF
                        ? bytes_.size() - kEndOfCentralDirSize - 0xFFFF
                        : 0;
  for (uint64_t pos = bytes_.size() - kEndOfCentralDirSize + 1; pos-- > lowest;) {
    const char* p = bytes_.data() + pos;
    if (load_le<uint32_t>(p) == kEndOfCentralDirSig &&
        pos + kEndOfCentralDirSize + load_le<uint16_t>(p + 20) == bytes_.size()) {
      eocd = pos;
      break;
    }
  }
  if (eocd == std::numeric_limits<uint64_t>::max())
    fail("no end-of-central-directory record (truncated?)");

  const char* e = bytes_.data() + eocd;
  if (load_le<uint16_t>(e + 4) != 0 || load_le<uint16_t>(e + 6) != 0)
    fail("multi-disk archives are not supported");
  uint64_t count = load_le<uint16_t>(e + 10);
  uint64_t cd_size = load_le<uint32_t>(e + 12);
  uint64_t cd_offset = load_le<uint32_t>(e + 16);
  uint64_t cd_limit = eocd;  // the central directory must end before this

  // zip64: the real values live in a zip64 end record found through the locator before eocd.
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    if (eocd < kZip64LocatorSize) fail("missing zip64 locator");
    const char* loc = bytes_.data() + eocd - kZip64LocatorSize;
    if (load_le<uint32_t>(loc) != kZip64LocatorSig) fail("missing zip64 locator");
    uint64_t z64 = load_le<uint64_t>(loc + 8);
    if (z64 > eocd - kZip64LocatorSize || eocd - kZip64LocatorSize - z64 < kZip64EndSize)
      fail("zip64 end record out of range");
    const char* z = bytes_.data() + z64;
    if (load_le<uint32_t>(z) != kZip64EndSig) fail("bad zip64 end record signature");
    count = load_le<uint64_t>(z + 32);
    cd_size = load_le<uint64_t>(z + 40);
    cd_offset = load_le<uint64_t>(z + 48);
    cd_limit = z64;
  }
  if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset)
    fail("central directory out of range (truncated?)");
  if (count > cd_size / kCentralHeaderSize) fail("central directory too small for its entries");

  entries_.reserve(count);
  uint64_t pos = cd_offset;
  const uint64_t end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (end - pos < kCentralHeaderSize) fail("central directory truncated");
    const char* h = bytes_.data() + pos;
    if (load_le<uint32_t>(h) != kCentralHeaderSig) fail("bad central directory signature");
    ZipEntry entry;
    entry.flags = load_le<uint16_t>(h + 8);
    entry.method = load_le<uint16_t>(h + 10);
    entry.crc32 = load_le<uint32_t>(h + 16);
    entry.compressed_size = load_le<uint32_t>(h + 20);
    entry.size = load_le<uint32_t>(h + 24);
    uint64_t name_len = load_le<uint16_t>(h + 28);
    uint64_t extra_len = load_le<uint16_t>(h + 30);
    uint64_t comment_len = load_le<uint16_t>(h + 32);
    entry.local_header_offset = load_le<uint32_t>(h + 42);
    if (end - pos - kCentralHeaderSize < name_len + extra_len + comment_len)
      fail("central directory entry overruns the directory");
    entry.name.assign(h + kCentralHeaderSize, name_len);

    // zip64 extra field: 8-byte values for those fields that hold 0xFFFFFFFF, in this order.
    const char* x = h + kCentralHeaderSize + name_len;
    const char* x_end = x + extra_len;
    while (x_end - x >= 4) {
      uint16_t id = load_le<uint16_t>(x);
      uint16_t len = load_le<uint16_t>(x + 2);
      if (static_cast<uint64_t>(x_end - x - 4) < len) fail("bad extra field in " + entry.name);
      if (id == kZip64ExtraId) {
        const char* v = x + 4;
        const char* v_end = v + len;
        for (uint64_t* field : {&entry.size, &entry.compressed_size, &entry.local_header_offset}) {
          if (*field != 0xFFFFFFFF) continue;
          if (v_end - v < 8) fail("short zip64 extra field in " + entry.name);
          *field = load_le<uint64_t>(v);
          v += 8;
        }
      }
      x += 4 + len;
    }
    if (!index_.emplace(entry.name, entries_.size()).second)
      fail("duplicate entry " + entry.name);
    entries_.push_back(std::move(entry));
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
}

std::string_view ZipReader::read(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("missing entry " + name);
  const ZipEntry& entry = entries_[it->second];
  if (entry.flags & 1) fail("entry " + name + " is encrypted");
  if (entry.method != 0)
    fail("entry " + name + " is compressed (method " + std::to_string(entry.method) +
         "); torch.save stores entries uncompressed");
  if (entry.compressed_size != entry.size) fail("entry " + name + " has inconsistent sizes");

  const char* h = at(entry.local_header_offset, kLocalHeaderSize, "local header");
  if (load_le<uint32_t>(h) != kLocalHeaderSig) fail("bad local header signature for " + name);
  uint64_t name_len = load_le<uint16_t>(h + 26);
  uint64_t extra_len = load_le<uint16_t>(h + 28);
  const char* local_name = at(entry.local_header_offset + kLocalHeaderSize, name_len + extra_len,
                              "local header");
  if (std::string_view(local_name, name_len) != name)
    fail("local header name disagrees with the central directory for " + name);

  uint64_t data_offset = entry.local_header_offset + kLocalHeaderSize + name_len + extra_len;
  std::string_view data(at(data_offset, entry.size, ("data of " + name).c_str()), entry.size);
  if (crc32_of(data) != entry.crc32) fail("CRC-32 mismatch in " + name);
  return data;
}

}  // namespace tweedie::io
