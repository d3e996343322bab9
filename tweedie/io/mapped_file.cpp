#include "tweedie/io/mapped_file.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"

namespace tweedie::io {

namespace {

// Closes a file descriptor on scope exit.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedFile::MappedFile(const std::string& path) {
  // A file this command wrote and has not committed yet lives in its staged temp file.
  const std::string source = OutputTransaction::current_path(path);
  int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path + ": cannot open (" + std::strerror(errno) + ")");
  FdGuard guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw InputError(path + ": cannot stat (" + std::strerror(errno) + ")");
  if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a directory, expected a file");
  if (!S_ISREG(st.st_mode)) {
    owned_ = read_file(path);
    view_ = owned_;
    return;
  }
  if (st.st_size == 0) return;  // mmap rejects empty ranges; the view stays empty
  map_size_ = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    map_size_ = 0;
    throw InputError(path + ": cannot map into memory (" + std::strerror(errno) + ")");
  }
  map_ = p;
  view_ = std::string_view(static_cast<const char*>(map_), map_size_);
}

MappedFile::~MappedFile() {
  if (map_) ::munmap(map_, map_size_);
}

}  // namespace tweedie::io
