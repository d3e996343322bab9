#pragma once
// Internal to the library: not installed, not part of the API (cmake/Install.cmake).
// A read-only view of a whole file. Regular files are memory-mapped, so a multi-gigabyte
// checkpoint is parsed in place and its bytes are copied once, into tensors that own them.
// Other files (pipes, /dev/stdin) are read into memory instead.
//
// The mapping assumes nobody truncates the file while it is open (that would fault on access).
#include <cstddef>
#include <string>
#include <string_view>

namespace tweedie::io {

class MappedFile {
 public:
  // InputError naming `path` if it is missing, a directory, or cannot be mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view bytes() const { return view_; }

 private:
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::string owned_;  // used when the file cannot be mapped (not a regular file)
  std::string_view view_;
};

}  // namespace tweedie::io
