#include "tweedie/io/torch_pt.h"

#include <cstring>
#include <functional>
#include <unordered_map>

#include "tweedie/core/error.h"
#include "tweedie/io/byte_order.h"
#include "tweedie/io/mapped_file.h"
#include "tweedie/io/pickle.h"
#include "tweedie/io/zip_reader.h"

namespace tweedie::io {

namespace {

using pickle::Kind;
using pickle::StorageRef;
using pickle::TensorRef;
using pickle::Value;

// The first pickle of a legacy file: PROTO 2, LONG1 of 10 bytes holding the magic number
// 0x1950a86a20f9469cfc6c (little-endian), STOP.
constexpr char kLegacyMagic[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e";
constexpr size_t kLegacyMagicSize = sizeof(kLegacyMagic) - 1;
constexpr int64_t kLegacyProtocolVersion = 1001;

// The first line of a c10::Error's message (the rest is a C++ backtrace).
std::string first_line(const char* what) {
  std::string s(what);
  size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// ---- flattening ------------------------------------------------------------------------------

struct Leaf {
  std::string name;
  std::shared_ptr<const TensorRef> tensor;
};

// Dict keys that can become part of a dotted name; others (tuples, floats) are skipped.
bool key_text(const Value& key, std::string* out) {
  if (key.kind == Kind::kString) *out = key.text;
  else if (key.kind == Kind::kInt) *out = std::to_string(key.integer);
  else return false;
  return true;
}

// Tensors under `dict`, named by their dotted key path. Non-tensor leaves (epoch numbers,
// strings, lists) are skipped. Depth is bounded by the unpickler.
void collect(const Value& dict, const std::string& prefix, std::vector<Leaf>* out) {
  for (const auto& [key, value] : dict.entries) {
    std::string k;
    if (!key_text(*key, &k)) continue;
    std::string name = prefix.empty() ? k : prefix + "." + k;
    if (value->kind == Kind::kTensor) out->push_back({name, value->tensor});
    else if (value->kind == Kind::kDict) collect(*value, name, out);
  }
}

// ---- materialising tensors ---------------------------------------------------------------------

// True when (size, stride) describe a dense row-major layout (dims of size 1 may have any stride).
bool is_row_major(const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
  int64_t expected = 1;
  for (size_t d = size.size(); d-- > 0;) {
    if (size[d] == 1) continue;
    if (stride[d] != expected) return false;
    expected *= size[d];
  }
  return true;
}

// `bytes` are the raw little-endian elements of the (view of the) storage `t.storage`; the
// unpickler has checked that the tensor lies inside them.
torch::Tensor materialize(const TensorRef& t, std::string_view bytes) {
  const torch::ScalarType dtype = t.storage->dtype;
  const auto options = torch::TensorOptions().dtype(dtype);
  torch::Tensor out = torch::empty(t.size, options);
  if (out.numel() == 0) return out;
  const size_t item = torch::elementSize(dtype);
  if (is_row_major(t.size, t.stride)) {  // the common case: one block copy
    std::memcpy(out.data_ptr(), bytes.data() + t.offset * item, out.numel() * item);
    return out;
  }
  const int64_t numel = t.storage->numel;
  torch::Tensor src;
  if (reinterpret_cast<uintptr_t>(bytes.data()) % item == 0) {
    // Read-only use: the view is only the source of a copy.
    src = torch::from_blob(const_cast<char*>(bytes.data()), {numel}, options);
  } else {  // hand-made archives may misalign data; copy to aligned memory first
    src = torch::empty({numel}, options);
    std::memcpy(src.data_ptr(), bytes.data(), bytes.size());
  }
  out.copy_(src.as_strided(t.size, t.stride, t.offset));
  return out;
}

// Checks a storage's bytes against its persistent id and returns the part its view covers.
std::string_view storage_view(const StorageRef& s, std::string_view root, const std::string& file) {
  const size_t item = torch::elementSize(s.dtype);
  if (root.size() % item != 0 || root.size() / item != static_cast<uint64_t>(s.root_numel))
    throw InputError(file + ": storage '" + s.key + "' has " + std::to_string(root.size()) +
                     " bytes, expected " + std::to_string(s.root_numel) + " elements of " +
                     std::to_string(item) + " bytes");
  if (s.dtype == torch::kBool) {
    for (char c : root)
      if (static_cast<unsigned char>(c) > 1)
        throw InputError(file + ": bool storage '" + s.key + "' holds a byte other than 0 or 1");
  }
  return root.substr(static_cast<size_t>(s.offset) * item, static_cast<size_t>(s.numel) * item);
}

using StorageBytes = std::function<std::string_view(const StorageRef&)>;

// Unpickled object -> flat name -> tensor map.
TensorMap build_map(const pickle::Value& root, const StorageBytes& storage_bytes,
                    const std::string& file) {
  if (root.kind != Kind::kDict)
    throw InputError(file + ": top-level object is a " + std::string(pickle::kind_name(root.kind)) +
                     ", expected a dict of tensors");
  std::vector<Leaf> leaves;
  collect(root, "", &leaves);
  TensorMap out;
  for (const Leaf& leaf : leaves) {
    std::string_view bytes = storage_view(*leaf.tensor->storage, storage_bytes(*leaf.tensor->storage), file);
    torch::Tensor t;
    try {
      t = materialize(*leaf.tensor, bytes);
    } catch (const c10::Error& e) {
      throw InputError(file + ": tensor '" + leaf.name + "': " + first_line(e.what_without_backtrace()));
    }
    if (!out.emplace(leaf.name, std::move(t)).second)
      throw InputError(file + ": tensor name '" + leaf.name + "' occurs twice");
  }
  return out;
}

// ---- zip format (PyTorch >= 1.6) ---------------------------------------------------------------

TensorMap read_zip(std::string_view bytes, const std::string& file) {
  ZipReader zip(bytes, file);
  if (zip.entries().empty()) throw InputError(file + ": empty zip archive");
  // Records live under one top-level folder whose name torch.save chose ("archive", or the
  // file's stem in older versions).
  const std::string& first = zip.entries().front().name;
  std::string prefix = first.substr(0, first.find('/'));
  if (!zip.contains(prefix + "/data.pkl"))
    throw InputError(file + ": zip archive without " + prefix + "/data.pkl (not a torch.save file?)");
  if (zip.contains(prefix + "/byteorder") && zip.read(prefix + "/byteorder") != "little")
    throw InputError(file + ": big-endian checkpoints are not supported");

  std::string_view pkl = zip.read(prefix + "/data.pkl");
  size_t pos = 0;
  pickle::Result result = pickle::load(pkl, &pos, file + ": data.pkl");

  std::unordered_map<std::string, std::string_view> records;  // each CRC-checked once
  auto storage_bytes = [&](const StorageRef& s) {
    auto it = records.find(s.key);
    if (it == records.end()) {
      std::string record = prefix + "/data/" + s.key;
      if (!zip.contains(record)) throw InputError(file + ": missing storage record " + record);
      it = records.emplace(s.key, zip.read(record)).first;
    }
    return it->second;
  };
  return build_map(*result.root, storage_bytes, file);
}

// ---- legacy format (PyTorch < 1.6) ----------------------------------------------------------------

// After the magic number: protocol version, system info, the object, the list of storage keys,
// then for each key an 8-byte element count and the raw elements.
TensorMap read_legacy(std::string_view bytes, const std::string& file) {
  if (bytes.substr(0, kLegacyMagicSize) != std::string_view(kLegacyMagic, kLegacyMagicSize))
    throw InputError(file + ": not a legacy torch.save file (bad magic number)");
  size_t pos = kLegacyMagicSize;
  pickle::Result version = pickle::load(bytes, &pos, file + ": protocol version");
  if (version.root->kind != Kind::kInt || version.root->integer != kLegacyProtocolVersion)
    throw InputError(file + ": unsupported legacy protocol version");
  pickle::Result sys_info = pickle::load(bytes, &pos, file + ": sys info");
  if (sys_info.root->kind == Kind::kDict) {
    for (const auto& [key, value] : sys_info.root->entries)
      if (key->kind == Kind::kString && key->text == "little_endian" &&
          value->kind == Kind::kBool && !value->boolean)
        throw InputError(file + ": big-endian checkpoints are not supported");
  }
  pickle::Result main = pickle::load(bytes, &pos, file + ": object");
  pickle::Result keys = pickle::load(bytes, &pos, file + ": storage keys");
  if (keys.root->kind != Kind::kList) throw InputError(file + ": storage key list is not a list");

  // Element size of each root storage, from the persistent ids that name it.
  std::unordered_map<std::string, size_t> item_size;
  for (const auto& s : main.storages) item_size[s->key] = torch::elementSize(s->dtype);

  std::unordered_map<std::string, std::string_view> records;
  for (const auto& key : keys.root->items) {
    if (key->kind != Kind::kString) throw InputError(file + ": storage key is not a string");
    auto it = item_size.find(key->text);
    if (it == item_size.end())
      throw InputError(file + ": storage '" + key->text + "' is listed but never used");
    if (bytes.size() - pos < 8) throw InputError(file + ": truncated storage '" + key->text + "'");
    uint64_t count = load_le<uint64_t>(bytes.data() + pos);
    pos += 8;
    if (count > (bytes.size() - pos) / it->second)
      throw InputError(file + ": truncated storage '" + key->text + "'");
    size_t length = count * it->second;
    records[key->text] = bytes.substr(pos, length);
    pos += length;
  }
  auto storage_bytes = [&](const StorageRef& s) {
    auto it = records.find(s.key);
    if (it == records.end()) throw InputError(file + ": storage '" + s.key + "' has no data");
    return it->second;
  };
  return build_map(*main.root, storage_bytes, file);
}

}  // namespace

TensorMap read_torch_pt(const std::string& path) {
  MappedFile mapped(path);
  return parse_torch_pt(mapped.bytes(), path);
}

TensorMap parse_torch_pt(std::string_view bytes, const std::string& path) {
  if (bytes.substr(0, 4) == std::string_view("PK\x03\x04", 4)) return read_zip(bytes, path);
  if (bytes.substr(0, kLegacyMagicSize) == std::string_view(kLegacyMagic, kLegacyMagicSize))
    return read_legacy(bytes, path);
  throw InputError(path + ": not a torch.save checkpoint (neither a zip archive nor a legacy pickle)");
}

}  // namespace tweedie::io
