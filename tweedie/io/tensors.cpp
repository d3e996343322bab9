#include "tweedie/io/tensors.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tweedie/core/error.h"
#include "tweedie/io/byte_order.h"
#include "tweedie/io/torch_pt.h"

namespace tweedie::io {

namespace {

// PROTO 2 followed by LONG1 of 10 bytes: the start of torch's legacy magic-number pickle.
constexpr char kLegacyStart[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
constexpr size_t kLegacyStartSize = sizeof(kLegacyStart) - 1;

// The first `n` bytes of a file (fewer if it is shorter).
std::string head(const std::string& path, size_t n) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(path + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string bytes(n, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

}  // namespace

TensorFileFormat detect_tensor_file(const std::string& path) {
  std::string h = head(path, 16);
  if (h.size() >= 4 && h.compare(0, 4, "PK\x03\x04", 4) == 0) return TensorFileFormat::kTorchZip;
  if (h.size() >= kLegacyStartSize && h.compare(0, kLegacyStartSize, kLegacyStart) == 0)
    return TensorFileFormat::kTorchLegacy;
  // safetensors: an 8-byte little-endian header length, then the JSON object's '{'.
  if (h.size() >= 9 && h[8] == '{' && load_le<uint64_t>(h.data()) >= 2)
    return TensorFileFormat::kSafetensors;
  return TensorFileFormat::kUnknown;
}

TensorMap load_tensors(const std::string& path) {
  switch (detect_tensor_file(path)) {
    case TensorFileFormat::kSafetensors: return read_safetensors(path).tensors;
    case TensorFileFormat::kTorchZip:
    case TensorFileFormat::kTorchLegacy: return read_torch_pt(path);
    case TensorFileFormat::kUnknown: break;
  }
  throw InputError(path + ": not a safetensors file or a torch.save checkpoint");
}

TensorMap strip_prefix(const TensorMap& tensors, const std::string& prefix) {
  const std::string lead = prefix + ".";
  TensorMap out;
  for (const auto& [name, tensor] : tensors)
    if (name.size() > lead.size() && name.compare(0, lead.size(), lead) == 0)
      out.emplace(name.substr(lead.size()), tensor);
  return out;
}

}  // namespace tweedie::io
