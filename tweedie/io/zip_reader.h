#pragma once
// Internal to the library: not installed, not part of the API (cmake/Install.cmake).
// A minimal reader for the zip archives written by torch.save (PyTorch >= 1.6): entries are
// stored uncompressed, so a record is a byte range of the file. Reads the central directory
// (with zip64 extensions), then checks each record's local header, bounds and CRC-32 when it
// is read. Anything malformed is an InputError naming the file.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tweedie::io {

struct ZipEntry {
  std::string name;
  uint64_t local_header_offset = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint32_t crc32 = 0;
  uint16_t method = 0;  // 0 = stored
  uint16_t flags = 0;
};

class ZipReader {
 public:
  // `bytes` is the whole archive and must outlive the reader; `file` names it in errors.
  ZipReader(std::string_view bytes, std::string file);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  // The bytes of a stored entry, after checking its local header, bounds and CRC-32.
  std::string_view read(const std::string& name) const;

 private:
  [[noreturn]] void fail(const std::string& what) const;
  void parse_central_directory();
  const char* at(uint64_t offset, uint64_t length, const char* what) const;

  std::string_view bytes_;
  std::string file_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace tweedie::io
