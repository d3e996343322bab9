#include "tweedie/io/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <tuple>
#include <vector>

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/io/byte_order.h"
#include "tweedie/io/mapped_file.h"

namespace tweedie::io {

namespace {

using json = nlohmann::json;

// The reference implementation refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kMaxDims = 64;
constexpr const char* kMetadataKey = "__metadata__";

struct DtypeCode {
  const char* code;
  torch::ScalarType type;
};

constexpr DtypeCode kDtypes[] = {
    {"F64", torch::kDouble}, {"F32", torch::kFloat}, {"F16", torch::kHalf},
    {"BF16", torch::kBFloat16}, {"I64", torch::kLong}, {"I32", torch::kInt},
    {"I16", torch::kShort}, {"I8", torch::kChar}, {"U8", torch::kByte},
    {"BOOL", torch::kBool},
};

bool dtype_from_code(const std::string& code, torch::ScalarType* type) {
  for (const auto& d : kDtypes) {
    if (code == d.code) {
      *type = d.type;
      return true;
    }
  }
  return false;
}

const char* code_from_dtype(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.code;
  return nullptr;
}

// Keeps error messages on one line (JSON parse errors may quote the offending text).
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

// A tensor's entry in the header, checked.
struct Entry {
  std::string name;
  torch::ScalarType dtype = torch::kFloat;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

class SafetensorsHeaderParser {
 public:
  SafetensorsHeaderParser(const std::string& file, uint64_t data_size) : file_(file), data_size_(data_size) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(one_line(file_ + ": " + what));
  }
  [[noreturn]] void fail(const std::string& tensor, const std::string& what) const {
    fail("tensor '" + tensor + "': " + what);
  }

  json parse(std::string_view header) const;
  std::map<std::string, std::string> metadata(const json& value) const;
  Entry entry(const std::string& name, const json& value) const;
  void check_no_overlap(std::vector<Entry>* entries) const;

 private:
  uint64_t non_negative(const std::string& tensor, const json& v, const char* field) const {
    if (!v.is_number_unsigned()) fail(tensor, std::string(field) + " must hold non-negative integers");
    return v.get<uint64_t>();
  }

  const std::string& file_;
  uint64_t data_size_;
};

json SafetensorsHeaderParser::parse(std::string_view header) const {
  // Reject duplicate top-level names, which JSON parsers would otherwise silently merge.
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  json j;
  try {
    j = json::parse(header.begin(), header.end(), on_event);
  } catch (const json::exception& e) {
    fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail("header is not a JSON object");
  if (!duplicate.empty()) fail("name '" + duplicate + "' appears twice in the header");
  return j;
}

std::map<std::string, std::string> SafetensorsHeaderParser::metadata(const json& value) const {
  if (!value.is_object()) fail("__metadata__ must be an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string()) fail("__metadata__ entry '" + key + "' is not a string");
    out.emplace(key, v.get<std::string>());
  }
  return out;
}

Entry SafetensorsHeaderParser::entry(const std::string& name, const json& value) const {
  Entry e;
  e.name = name;
  if (!value.is_object()) fail(name, "entry is not an object");
  auto dtype = value.find("dtype");
  auto shape = value.find("shape");
  auto offsets = value.find("data_offsets");
  if (dtype == value.end() || shape == value.end() || offsets == value.end())
    fail(name, "entry needs dtype, shape and data_offsets");
  if (!dtype->is_string()) fail(name, "dtype is not a string");
  if (!dtype_from_code(dtype->get<std::string>(), &e.dtype))
    fail(name, "unsupported dtype '" + dtype->get<std::string>() +
                   "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
  if (!shape->is_array() || shape->size() > kMaxDims) fail(name, "shape is not an array of dimensions");

  // numel * itemsize, with overflow checks; every dimension must fit int64 for torch.
  uint64_t bytes = torch::elementSize(e.dtype);
  for (const json& d : *shape) {
    uint64_t dim = non_negative(name, d, "shape");
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(name, "dimension too large");
    e.shape.push_back(static_cast<int64_t>(dim));
    if (__builtin_mul_overflow(bytes, dim, &bytes)) fail(name, "shape too large");
  }
  if (!offsets->is_array() || offsets->size() != 2) fail(name, "data_offsets must be [begin, end]");
  e.begin = non_negative(name, (*offsets)[0], "data_offsets");
  e.end = non_negative(name, (*offsets)[1], "data_offsets");
  if (e.begin > e.end || e.end > data_size_)
    fail(name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                   "] outside the " + std::to_string(data_size_) + "-byte data section");
  if (e.end - e.begin != bytes)
    fail(name, "data_offsets cover " + std::to_string(e.end - e.begin) + " bytes but " +
                   dtype->get<std::string>() + " " + shape->dump() + " needs " + std::to_string(bytes));
  return e;
}

void SafetensorsHeaderParser::check_no_overlap(std::vector<Entry>* entries) const {
  std::sort(entries->begin(), entries->end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  for (size_t i = 1; i < entries->size(); ++i) {
    const Entry& prev = (*entries)[i - 1];
    const Entry& cur = (*entries)[i];
    if (cur.begin < prev.end) fail("tensors '" + prev.name + "' and '" + cur.name + "' overlap");
  }
}

}  // namespace

SafeTensors parse_safetensors(std::string_view bytes, const std::string& name) {
  if (bytes.size() < 8)
    throw InputError(name + ": too short for a safetensors file (" + std::to_string(bytes.size()) +
                     " bytes)");
  const uint64_t header_size = load_le<uint64_t>(bytes.data());
  if (header_size > kMaxHeaderBytes)
    throw InputError(name + ": safetensors header length " + std::to_string(header_size) +
                     " exceeds the 100 MB limit");
  if (header_size > bytes.size() - 8)
    throw InputError(name + ": safetensors header length " + std::to_string(header_size) +
                     " runs past the end of the file (truncated?)");
  const std::string_view data = bytes.substr(8 + header_size);

  SafetensorsHeaderParser parser(name, data.size());
  json header = parser.parse(bytes.substr(8, header_size));
  SafeTensors out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) out.metadata = parser.metadata(value);
    else entries.push_back(parser.entry(key, value));
  }
  parser.check_no_overlap(&entries);

  for (const Entry& e : entries) {
    std::string_view src = data.substr(e.begin, e.end - e.begin);
    if (e.dtype == torch::kBool &&
        std::any_of(src.begin(), src.end(), [](char c) { return static_cast<unsigned char>(c) > 1; }))
      parser.fail(e.name, "BOOL data holds a byte other than 0 or 1");
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    if (!src.empty()) std::memcpy(t.data_ptr(), src.data(), src.size());
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

SafeTensors read_safetensors(const std::string& path) {
  MappedFile file(path);
  return parse_safetensors(file.bytes(), path);
}

std::string encode_safetensors(const TensorMap& tensors,
                               const std::map<std::string, std::string>& metadata) {
  // Header keys in a fixed order: metadata first, then tensors by name, each with its fields
  // in the order the format documents them.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = std::move(meta);
  }
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) throw InputError("a tensor may not be named __metadata__");
    if (!tensor.defined()) throw InputError("tensor '" + name + "' is undefined");
    const char* code = code_from_dtype(tensor.scalar_type());
    if (!code)
      throw InputError("tensor '" + name + "': dtype " + std::string(c10::toString(tensor.scalar_type())) +
                       " cannot be stored in safetensors");
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = code;
    entry["shape"] = t.sizes().vec();
    entry["data_offsets"] = {offset, offset + nbytes};
    header[name] = std::move(entry);
    offset += nbytes;
    data.push_back(std::move(t));
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not valid UTF-8
    throw InputError(one_line(std::string("cannot encode safetensors header: ") + e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned

  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t header_size = text.size();
  out.append(reinterpret_cast<const char*>(&header_size), 8);  // little-endian host
  out += text;
  for (const torch::Tensor& t : data)
    if (t.numel() > 0) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::string bytes;
  try {
    bytes = encode_safetensors(tensors, metadata);
  } catch (const InputError& e) {
    throw InputError(path + ": " + e.what());
  }
  atomic_write_file(path, bytes);
}

}  // namespace tweedie::io
