#include "tweedie/core/fs.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tweedie/core/error.h"
#include "tweedie/core/memory.h"

namespace tweedie {
namespace fs = std::filesystem;

namespace {

// The open transaction of this thread, if any (see OutputTransaction).
thread_local OutputTransaction* current_transaction = nullptr;

}  // namespace

std::string read_file(const std::string& path, uint64_t max_bytes) {
  const std::string source = OutputTransaction::current_path(path);  // `path` is named in messages
  std::error_code ec;
  auto status = fs::status(source, ec);
  if (fs::is_directory(status)) throw InputError(path + ": is a directory, expected a file");
  // Devices (/dev/zero, /dev/urandom) never end; pipes and regular files do.
  if (fs::exists(status) && !fs::is_regular_file(status) && !fs::is_fifo(status))
    throw InputError(path + ": not a regular file");
  if (max_bytes == 0) {
    int64_t avail = available_memory_bytes();
    max_bytes = avail > 0 ? static_cast<uint64_t>(avail) : UINT64_MAX;
  }
  std::ifstream in(source, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open (" + std::strerror(errno) + ")");
  if (fs::is_regular_file(status)) {
    uint64_t size = fs::file_size(source, ec);
    if (!ec && size > max_bytes)
      throw InputError(path + ": " + format_bytes(double(size)) + " is more than the " +
                       format_bytes(double(max_bytes)) + " of memory available to read it");
  }
  std::string bytes;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.append(buf, static_cast<size_t>(in.gcount()));
    if (bytes.size() > max_bytes)
      throw InputError(path + ": more than the " + format_bytes(double(max_bytes)) + " of memory available to read it");
  }
  if (in.bad()) throw InputError(path + ": read failed");
  return bytes;
}

nlohmann::json read_json_file(const std::string& path) { return parse_json(read_file(path), path); }

namespace {

// The nearest ancestor of `p` (or p itself) that exists; empty when none does.
fs::path nearest_existing(const fs::path& p) {
  fs::path q = p.empty() ? fs::path(".") : p;
  std::error_code ec;
  while (!q.empty() && !fs::exists(q, ec)) {
    fs::path parent = q.parent_path();
    if (parent == q) break;
    q = parent.empty() ? fs::path(".") : parent;
    if (q == ".") break;
  }
  return q;
}

void check_writable_dir(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  fs::path base = nearest_existing(dir);
  if (!fs::is_directory(base, ec))
    throw InputError(what + ": " + base.string() + " exists and is not a directory");
  if (::access(base.c_str(), W_OK | X_OK) != 0)
    throw InputError(what + ": cannot write in " + base.string() + " (" + std::strerror(errno) + ")");
}

}  // namespace

void check_output_dir(const std::string& path, const std::string& flag, int rank) {
  require(!path.empty(), flag + ": expected a directory, got an empty path");
  check_writable_dir(fs::path(path), flag + " " + path);
  claim_output(path, flag, rank);
}

void claim_output(const std::string& path, const std::string& flag, int rank) {
  static std::set<std::string> held;  // this process's claims (their descriptors stay open)
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(fs::absolute(path, ec), ec);
  const std::string key = sha256_hex(canonical.string()) + ".r" + std::to_string(rank);
  if (held.count(key)) return;
  const fs::path dir = fs::temp_directory_path(ec) / ("tweedie-locks-" + std::to_string(getuid()));
  fs::create_directories(dir, ec);
  const std::string lock = (dir / (key + ".lock")).string();
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;  // no lock directory (a read-only /tmp): run unguarded rather than refuse
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    const std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
    throw InputError(flag + " " + path + ": in use by another tweedie (pid " + pid +
                     "); wait for it to finish or choose another output");
  }
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, me.data(), me.size(), 0) < 0) {
    // the PID is only for the message of whoever comes second
  }
  held.insert(key);  // fd stays open: the lock lasts until the process exits
}

void check_output_file(const std::string& path, const std::string& flag, const std::vector<std::string>& extensions) {
  const std::string what = flag + " " + path;
  require(!path.empty(), flag + ": expected a file, got an empty path");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw InputError(what + ": is a directory, expected a file");
  if (!extensions.empty()) {
    const std::string ext = file_extension(path);
    bool ok = false;
    std::string list;
    for (const auto& e : extensions) {
      ok = ok || ext == e;
      list += (list.empty() ? "." : " or .") + e;
    }
    require(ok, what + ": expected a " + list + " file");
  }
  fs::path target(path);
  check_writable_dir(target.has_parent_path() ? target.parent_path() : fs::path("."), what);
  claim_output(path, flag);
}

OutputTransaction::OutputTransaction() {
  if (current_transaction) throw InternalError("output transactions do not nest");
  current_transaction = this;
}

bool OutputTransaction::active() { return current_transaction != nullptr; }

namespace {
std::string normal(const std::string& path) { return fs::absolute(fs::path(path)).lexically_normal().string(); }
}  // namespace

OutputTransaction::Staged* OutputTransaction::find_staged(const std::string& path) {
  if (staged_.empty()) return nullptr;
  const std::string want = normal(path);
  for (auto& f : staged_)
    if (normal(f.target) == want) return &f;
  return nullptr;
}

std::string OutputTransaction::current_path(const std::string& path) {
  const Staged* f = current_transaction ? current_transaction->find_staged(path) : nullptr;
  return f ? f->temp : path;
}

void OutputTransaction::commit() {
  if (done_) return;
  done_ = true;
  current_transaction = nullptr;
  for (size_t i = 0; i < staged_.size(); ++i) {
    const Staged& f = staged_[i];
    if (::rename(f.temp.c_str(), f.target.c_str()) != 0) {
      int err = errno;
      for (size_t k = i; k < staged_.size(); ++k) ::unlink(staged_[k].temp.c_str());
      throw InputError(f.target + ": cannot replace (" + std::strerror(err) + ")");
    }
  }
  staged_.clear();
}

OutputTransaction::~OutputTransaction() {
  if (done_) return;
  current_transaction = nullptr;
  for (const Staged& f : staged_) ::unlink(f.temp.c_str());
  std::error_code ec;
  // Innermost first; a directory that gained files from elsewhere stays (remove fails on it).
  for (auto it = created_dirs_.rbegin(); it != created_dirs_.rend(); ++it) fs::remove(*it, ec);
}

void atomic_write_file(const std::string& path, std::string_view bytes) {
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  OutputTransaction* tx = current_transaction;
  if (tx) {
    // Remember each directory this write creates, outermost first, to remove it on rollback.
    std::vector<fs::path> missing;
    for (fs::path d = dir; !d.empty() && !fs::exists(d, ec); d = d.parent_path()) {
      missing.push_back(d);
      if (d.parent_path() == d) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (fs::create_directory(*it, ec)) tx->created_dirs_.push_back(it->string());
      if (ec) break;
    }
  }
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw InputError(path + ": " + dir.string() + " exists and is not a directory");
  fs::create_directories(dir, ec);
  if (ec) throw InputError(path + ": cannot create directory " + dir.string() + " (" + ec.message() + ")");
  if (fs::is_directory(target, ec)) throw InputError(path + ": is a directory, expected a file");
  std::string tmpl = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) throw InputError(path + ": cannot write (" + std::strerror(errno) + ")");
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmpl.c_str());
      throw InputError(path + ": write failed (" + std::strerror(err) + ")");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  // mkstemp creates 0600; give outputs the usual umask-governed permissions.
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    throw InputError(path + ": write failed (" + std::strerror(err) + ")");
  }
  if (tx) {
    // Staged: a second write of the same target replaces the first one's temp file.
    if (OutputTransaction::Staged* f = tx->find_staged(path)) {
      ::unlink(f->temp.c_str());
      f->temp = tmpl;
    } else {
      tx->staged_.push_back({tmpl, path});
    }
    return;
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    throw InputError(path + ": cannot replace (" + std::strerror(err) + ")");
  }
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw InternalError("SHA-256 failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

std::string sha256_file(const std::string& path) { return sha256_hex(read_file(path)); }

std::string file_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  if (!ext.empty() && ext[0] == '.') ext.erase(0, 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

}  // namespace tweedie
