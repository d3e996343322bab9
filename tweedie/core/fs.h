#pragma once
// Files: whole-file reads, atomic writes (temp file + rename), all-or-nothing outputs, SHA-256.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tweedie {

// Reads a whole file; InputError naming the path if it cannot be opened or read, is not a
// regular file or pipe (a directory, /dev/zero), or is larger than `max_bytes` (default: the
// memory available now, so a huge file is refused with its size instead of std::bad_alloc).
std::string read_file(const std::string& path, uint64_t max_bytes = 0);

// Reads and parses a JSON file; InputError naming the file (and line/column or key path).
nlohmann::json read_json_file(const std::string& path);

// Checks, before any work, that `path` can be an output directory: absent (its nearest existing
// ancestor a writable directory) or an existing writable directory. InputError naming `flag`.
// Then claims it for this process (claim_output), as slot `rank`.
void check_output_dir(const std::string& path, const std::string& flag, int rank = 0);
// The same for an output file: not a directory, its directory usable as above, and (when
// `extensions` is not empty) one of those extensions, e.g. {"png", "npy"}; then claimed.
void check_output_file(const std::string& path, const std::string& flag,
                       const std::vector<std::string>& extensions = {});

// Claims the output `path` for this process until it exits, so that two runs never write one
// output: an advisory lock (flock) on a file named after the path's canonical form, under
// <temp dir>/tweedie-locks-<uid>/ (the output itself is untouched, and the claim dies with the
// process, however it ends). A second tweedie claiming the same path gets an InputError naming
// `flag`, the path and the holder's PID. The ranks of one sharded run share their output by
// design: each claims its own slot `rank` (a single process is slot 0), so a second run's rank 0
// or a plain run is refused. Claiming again a path this process holds is a no-op.
void claim_output(const std::string& path, const std::string& flag, int rank = 0);

// Makes a command's outputs all-or-nothing. While a transaction is open on this thread,
// atomic_write_file() writes each file in full to a temp file beside its target but does not
// rename it; commit() renames them all into place. A transaction destroyed without commit() (an
// exception, a failed run) deletes its temp files and the directories it created, so a failed
// run leaves the output directory as it was. Transactions do not nest: opening a second one
// while one is open is an InternalError.
class OutputTransaction {
 public:
  OutputTransaction();
  ~OutputTransaction();
  OutputTransaction(const OutputTransaction&) = delete;
  OutputTransaction& operator=(const OutputTransaction&) = delete;
  void commit();
  // True while a transaction is open on this thread.
  static bool active();
  // Where `path`'s content is now: the temp file holding its staged, uncommitted content, or
  // `path` itself. Readers go through it, so a command can read back what it wrote.
  static std::string current_path(const std::string& path);

 private:
  struct Staged {
    std::string temp, target;
  };
  Staged* find_staged(const std::string& path);  // the entry whose target is `path`, if any
  std::vector<Staged> staged_;
  std::vector<std::string> created_dirs_;  // outermost first
  bool done_ = false;
  friend void atomic_write_file(const std::string& path, std::string_view bytes);
};

// Writes `bytes` to `path` atomically: a temp file in the same directory, flushed and fsync'ed,
// then renamed over `path`. A crash never leaves a half-written `path`; the old content survives
// a failed write. Creates missing parent directories. InputError if the target is unwritable.
// Inside an OutputTransaction the rename waits for commit().
void atomic_write_file(const std::string& path, std::string_view bytes);

// Lower-case hex SHA-256 of `bytes` / of a file's content.
std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::string& path);

// Lower-case file extension without the dot ("x/y.NPY" -> "npy"); empty if none.
std::string file_extension(const std::string& path);

}  // namespace tweedie
