#include "tweedie/io/npy.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"

namespace tweedie::io {
namespace {

// ---- format constants ------------------------------------------------------------------
// A .npy file is: magic "\x93NUMPY", major and minor version bytes, the header length
// (uint16 LE in 1.0, uint32 LE in 2.0/3.0), a Python dict literal, then the raw data.
constexpr std::string_view kMagic{"\x93NUMPY", 6};
constexpr size_t kHeaderAlign = 64;   // numpy pads preamble + header to this
constexpr size_t kMaxRank = 64;       // numpy allows 32 (64 in 2.x); torch allows 64

bool host_is_little_endian() {
  const uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

// Makes `text` safe to embed in a one-line message: control and non-ASCII bytes become
// \xNN, and long text is cut short.
std::string printable(std::string_view text, size_t limit = 64) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size() && i < limit; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  if (text.size() > limit) out += "...";
  return out;
}

[[noreturn]] void fail(const std::string& name, const std::string& problem) {
  throw InputError(printable(name, 4096) + ": " + problem);
}

uint32_t read_le(std::string_view bytes, size_t offset, size_t width) {
  uint32_t value = 0;
  for (size_t i = 0; i < width; ++i)
    value |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  return value;
}

void append_le(std::string& out, uint32_t value, size_t width) {
  for (size_t i = 0; i < width; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

// Reverses the byte order of each `unit`-byte word in [data, data + size).
void byte_swap(char* data, size_t size, size_t unit) {
  if (unit <= 1) return;
  for (size_t off = 0; off + unit <= size; off += unit) std::reverse(data + off, data + off + unit);
}

// ---- dtypes ----------------------------------------------------------------------------
struct DType {
  torch::ScalarType type;
  size_t itemsize;
  size_t swap_unit;  // size of the words to byte-swap (half the item for complex)
};

// The kind character + item size pairs we support, e.g. 'f' + 4 = float32.
std::optional<DType> dtype_for(char kind, size_t itemsize) {
  using torch::ScalarType;
  struct Entry { char kind; size_t size; ScalarType type; };
  static const Entry table[] = {
      {'f', 2, ScalarType::Half},         {'f', 4, ScalarType::Float},
      {'f', 8, ScalarType::Double},       {'i', 1, ScalarType::Char},
      {'i', 2, ScalarType::Short},        {'i', 4, ScalarType::Int},
      {'i', 8, ScalarType::Long},         {'u', 1, ScalarType::Byte},
      {'b', 1, ScalarType::Bool},         {'c', 8, ScalarType::ComplexFloat},
      {'c', 16, ScalarType::ComplexDouble},
  };
  for (const auto& e : table) {
    if (e.kind == kind && e.size == itemsize)
      return DType{e.type, itemsize, kind == 'c' ? itemsize / 2 : itemsize};
  }
  return std::nullopt;
}

// Why a descr we cannot load is unsupported, for the error message.
std::string unsupported_reason(char kind, size_t itemsize) {
  switch (kind) {
    case 'u': return "unsigned " + std::to_string(itemsize * 8) +
                     "-bit integers are not supported (torch has only uint8)";
    case 'U': return "unicode strings are not supported";
    case 'S': case 'a': return "byte strings are not supported";
    case 'O': return "Python object arrays are not supported";
    case 'V': return "void/structured dtypes are not supported";
    case 'M': case 'm': return "datetime/timedelta dtypes are not supported";
    case 'f': case 'i': case 'c': case 'b':
      return "item size " + std::to_string(itemsize) + " is not supported for this kind";
    default: return "unknown dtype kind";
  }
}

// Parses a numpy type string such as "<f4", ">c16", "|b1". Returns the dtype and whether
// the file's byte order differs from the host's.
std::pair<DType, bool> parse_descr(const std::string& descr, const std::string& name) {
  auto unsupported = [&](const std::string& why) {
    fail(name, "unsupported dtype '" + printable(descr) + "': " + why);
  };
  size_t pos = 0;
  char order = '=';
  if (!descr.empty() && std::strchr("<>|=", descr[0]) != nullptr) order = descr[pos++];
  if (pos >= descr.size()) unsupported("empty type");
  char kind = descr[pos++];
  std::string digits = descr.substr(pos);
  if (digits.empty() || digits.size() > 4 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Sizeless or parametrised kinds ('|O', '<U5' has digits, '<M8[ns]') get their own reason.
    bool known_other = kind != '\0' && std::strchr("USaOVMm", kind) != nullptr;
    unsupported(known_other ? unsupported_reason(kind, 0) : "not a numpy type string");
  }
  size_t itemsize = std::stoul(digits);
  auto dtype = dtype_for(kind, itemsize);
  if (!dtype) unsupported(unsupported_reason(kind, itemsize));
  // '|' (not applicable) and '=' (native) both mean the host order.
  bool file_little = order == '<' || ((order == '|' || order == '=') && host_is_little_endian());
  bool swap = dtype->swap_unit > 1 && file_little != host_is_little_endian();
  return {*dtype, swap};
}

std::string descr_for(torch::ScalarType type, const std::string& context) {
  using torch::ScalarType;
  switch (type) {
    case ScalarType::Half: return "<f2";
    case ScalarType::Float: return "<f4";
    case ScalarType::Double: return "<f8";
    case ScalarType::Char: return "|i1";
    case ScalarType::Short: return "<i2";
    case ScalarType::Int: return "<i4";
    case ScalarType::Long: return "<i8";
    case ScalarType::Byte: return "|u1";
    case ScalarType::Bool: return "|b1";
    case ScalarType::ComplexFloat: return "<c8";
    case ScalarType::ComplexDouble: return "<c16";
    default:
      fail(context, std::string("cannot store dtype ") + c10::toString(type) +
                        " as .npy (supported: float16/32/64, int8/16/32/64, uint8, bool, "
                        "complex64/128)");
  }
}

// ---- header dict -----------------------------------------------------------------------
struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// A small recursive-descent parser for the header's Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// Keys may come in any order and use either quote style; whitespace is free.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  Header parse() {
    Header header;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      std::string key = parse_string();
      expect(':');
      skip_space();
      if (key == "descr") {
        mark_seen(seen_descr, key);
        if (peek() != '\'' && peek() != '"')
          fail(name_, "unsupported dtype: structured (record) arrays are not supported");
        header.descr = parse_string();
      } else if (key == "fortran_order") {
        mark_seen(seen_order, key);
        header.fortran_order = parse_bool();
      } else if (key == "shape") {
        mark_seen(seen_shape, key);
        header.shape = parse_shape();
      } else {
        malformed("unexpected key '" + printable(key) + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') malformed("expected ',' or '}' after the value of '" + key + "'");
    }
    ++pos_;  // '}'
    skip_space();
    if (pos_ != text_.size()) malformed("unexpected text after the closing '}'");
    if (!seen_descr || !seen_order || !seen_shape)
      malformed("missing key '" +
                std::string(!seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape") +
                "'");
    return header;
  }

 private:
  // Quotes the header without its padding so the message stays readable.
  [[noreturn]] void malformed(const std::string& what) {
    std::string_view shown = text_;
    while (!shown.empty() && std::isspace(static_cast<unsigned char>(shown.back())))
      shown.remove_suffix(1);
    fail(name_, "malformed .npy header (" + what + " at offset " + std::to_string(pos_) +
                    "): " + printable(shown, 120));
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  void expect(char c) {
    skip_space();
    if (peek() != c) malformed(std::string("expected '") + c + "'");
    ++pos_;
  }

  void mark_seen(bool& seen, const std::string& key) {
    if (seen) malformed("duplicate key '" + key + "'");
    seen = true;
  }

  // A quoted Python string literal; a backslash takes the next character literally.
  std::string parse_string() {
    skip_space();
    char quote = peek();
    if (quote != '\'' && quote != '"') malformed("expected a quoted string");
    ++pos_;
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
      out += text_[pos_++];
    }
    if (pos_ >= text_.size()) malformed("unterminated string");
    ++pos_;
    return out;
  }

  bool parse_bool() {
    for (const char* word : {"True", "False"}) {
      size_t len = std::strlen(word);
      if (text_.substr(pos_, len) == word) {
        pos_ += len;
        return word[0] == 'T';
      }
    }
    malformed("'fortran_order' must be True or False");
  }

  // A tuple of non-negative ints: (), (3,), (2, 3). "(3)" is accepted too.
  std::vector<int64_t> parse_shape() {
    std::vector<int64_t> shape;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') break;
      shape.push_back(parse_dim());
      if (shape.size() > kMaxRank) malformed("more than " + std::to_string(kMaxRank) + " dimensions");
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') malformed("expected ',' or ')' in shape");
    }
    ++pos_;  // ')'
    return shape;
  }

  int64_t parse_dim() {
    if (peek() == '-') fail(name_, "invalid .npy header: negative dimension in shape " + shape_text());
    if (!std::isdigit(static_cast<unsigned char>(peek()))) malformed("expected an integer in shape");
    int64_t value = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      int digit = text_[pos_++] - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10)
        fail(name_, "invalid .npy header: dimension too large in shape " + shape_text());
      value = value * 10 + digit;
    }
    if (peek() == 'L' || peek() == 'l') ++pos_;  // Python 2 long literal
    return value;
  }

  // The shape tuple's text from the current position, for messages.
  std::string shape_text() const {
    size_t start = text_.rfind('(', pos_);
    if (start == std::string_view::npos) start = pos_;
    size_t end = text_.find(')', pos_);
    size_t len = end == std::string_view::npos ? 32 : end + 1 - start;
    return printable(text_.substr(start, len));
  }

  std::string_view text_;
  const std::string& name_;
  size_t pos_ = 0;
};

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

// Number of payload bytes the header promises, or fails if the shape is absurd. The product
// of the non-zero dims must fit in int64 even when another dim is zero, so torch never sees
// an overflowing shape.
size_t expected_data_size(const Header& header, size_t itemsize, const std::string& name) {
  int64_t product = static_cast<int64_t>(itemsize);
  bool has_zero = false;
  for (int64_t dim : header.shape) {
    if (dim == 0) {
      has_zero = true;
      continue;
    }
    if (__builtin_mul_overflow(product, dim, &product))
      fail(name, "invalid .npy header: shape " + shape_to_string(header.shape) +
                     " is absurdly large (size overflows)");
  }
  return has_zero ? 0 : static_cast<size_t>(product);
}

// Splits `bytes` into header text and payload after checking the preamble.
std::pair<std::string_view, std::string_view> split_file(std::string_view bytes,
                                                         const std::string& name) {
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic) {
    if (bytes.size() < kMagic.size() && kMagic.substr(0, bytes.size()) == bytes)
      fail(name, "truncated .npy file (" + std::to_string(bytes.size()) + " bytes)");
    fail(name, "not a .npy file (bad magic: expected \\x93NUMPY, got '" +
                   printable(bytes.substr(0, kMagic.size())) + "')");
  }
  if (bytes.size() < kMagic.size() + 2)
    fail(name, "truncated .npy file (" + std::to_string(bytes.size()) + " bytes, no version)");
  int major = static_cast<unsigned char>(bytes[6]);
  int minor = static_cast<unsigned char>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0)
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  size_t len_width = major == 1 ? 2 : 4;
  size_t preamble = kMagic.size() + 2 + len_width;
  if (bytes.size() < preamble)
    fail(name, "truncated .npy file (" + std::to_string(bytes.size()) +
                   " bytes, header length missing)");
  size_t header_len = read_le(bytes, kMagic.size() + 2, len_width);
  if (header_len > bytes.size() - preamble)
    fail(name, "truncated .npy file: header length " + std::to_string(header_len) +
                   " runs past the end of the file (" + std::to_string(bytes.size()) + " bytes)");
  return {bytes.substr(preamble, header_len), bytes.substr(preamble + header_len)};
}

// The tensor with the header's dtype and shape, holding a copy of `data` in host order.
torch::Tensor build_tensor(const Header& header, const DType& dtype, bool swap,
                           std::string_view data) {
  // Fortran order is C order over the reversed shape; permute back afterwards.
  std::vector<int64_t> storage_shape = header.shape;
  if (header.fortran_order) std::reverse(storage_shape.begin(), storage_shape.end());
  torch::Tensor tensor = torch::empty(storage_shape, torch::dtype(dtype.type));
  auto* dst = static_cast<char*>(tensor.data_ptr());
  if (!data.empty()) std::memcpy(dst, data.data(), data.size());
  if (swap) byte_swap(dst, data.size(), dtype.swap_unit);
  if (dtype.type == torch::kBool) {
    // torch assumes bools are 0 or 1; normalise any other non-zero byte.
    for (size_t i = 0; i < data.size(); ++i) dst[i] = dst[i] != 0 ? 1 : 0;
  }
  if (header.fortran_order && header.shape.size() > 1) {
    std::vector<int64_t> reverse_dims(header.shape.size());
    std::iota(reverse_dims.rbegin(), reverse_dims.rend(), 0);
    tensor = tensor.permute(reverse_dims).contiguous();
  }
  return tensor;
}

// Shared by encode_npy and write_npy; `context` names the destination in messages.
std::string encode(const torch::Tensor& input, const std::string& context) {
  if (!input.defined()) fail(context, "cannot store an undefined tensor as .npy");
  std::string descr = descr_for(input.scalar_type(), context);
  torch::Tensor tensor = input.detach();
  if (tensor.layout() != torch::kStrided) tensor = tensor.to_dense();
  // resolve_conj/resolve_neg materialise lazy conjugate/negative views, which contiguous()
  // alone would leave as flags over the unmodified data.
  tensor = tensor.to(torch::kCPU).resolve_conj().resolve_neg().contiguous();

  std::vector<int64_t> shape(tensor.sizes().begin(), tensor.sizes().end());
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " +
                     shape_to_string(shape) + ", }";
  // Version 1.0 stores the header length in 16 bits; fall back to 2.0 when it overflows.
  int major = 1;
  size_t preamble = kMagic.size() + 2 + 2;
  auto padded_len = [&](size_t pre) {
    size_t unpadded = pre + dict.size() + 1;  // +1 for the final '\n'
    return dict.size() + 1 + (kHeaderAlign - unpadded % kHeaderAlign) % kHeaderAlign;
  };
  size_t header_len = padded_len(preamble);
  if (header_len > std::numeric_limits<uint16_t>::max()) {
    major = 2;
    preamble = kMagic.size() + 2 + 4;
    header_len = padded_len(preamble);
  }

  size_t data_size = static_cast<size_t>(tensor.numel()) * tensor.element_size();
  std::string out;
  out.reserve(preamble + header_len + data_size);
  out += kMagic;
  out += static_cast<char>(major);
  out += '\0';
  append_le(out, static_cast<uint32_t>(header_len), major == 1 ? 2 : 4);
  out += dict;
  out.append(header_len - dict.size() - 1, ' ');
  out += '\n';
  size_t data_start = out.size();
  out.append(static_cast<const char*>(tensor.data_ptr()), data_size);
  if (!host_is_little_endian()) {
    size_t unit = tensor.is_complex() ? tensor.element_size() / 2 : tensor.element_size();
    byte_swap(out.data() + data_start, data_size, unit);
  }
  return out;
}

}  // namespace

torch::Tensor parse_npy(std::string_view bytes, const std::string& name) {
  auto [header_text, data] = split_file(bytes, name);
  Header header = HeaderParser(header_text, name).parse();
  auto [dtype, swap] = parse_descr(header.descr, name);
  size_t expected = expected_data_size(header, dtype.itemsize, name);
  if (data.size() != expected)
    fail(name, std::string(data.size() < expected ? "truncated .npy data"
                                                  : "trailing bytes after .npy data") +
                   ": header says shape " + shape_to_string(header.shape) + " of '" +
                   printable(header.descr) + "' = " + std::to_string(expected) +
                   " bytes, but the file holds " + std::to_string(data.size()));
  return build_tensor(header, dtype, swap, data);
}

torch::Tensor read_npy(const std::string& path) { return parse_npy(read_file(path), path); }

std::string encode_npy(const torch::Tensor& tensor) { return encode(tensor, "encode_npy"); }

void write_npy(const std::string& path, const torch::Tensor& tensor) {
  atomic_write_file(path, encode(tensor, path));
}

}  // namespace tweedie::io
