#pragma once
// Files: whole-file reads, atomic writes (temp file + rename), SHA-256.
#include <cstdint>
#include <string>
#include <string_view>

namespace tweedie {

// Reads a whole file; InputError naming the path if it cannot be opened or read.
std::string read_file(const std::string& path);

// Writes `bytes` to `path` atomically: a temp file in the same directory, flushed and fsync'ed,
// then renamed over `path`. A crash never leaves a half-written `path`; the old content survives
// a failed write. Creates missing parent directories. InputError if the target is unwritable.
void atomic_write_file(const std::string& path, std::string_view bytes);

// Lower-case hex SHA-256 of `bytes` / of a file's content.
std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::string& path);

// Lower-case file extension without the dot ("x/y.NPY" -> "npy"); empty if none.
std::string file_extension(const std::string& path);

}  // namespace tweedie
