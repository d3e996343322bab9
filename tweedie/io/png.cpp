#include "tweedie/io/png.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <memory>
#include <sstream>
#include <string_view>
#include <vector>

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"

namespace tweedie::io {
namespace {

constexpr std::string_view kSignature{"\x89PNG\r\n\x1a\n", 8};
constexpr size_t kIhdrEnd = 8 + 4 + 4 + 13 + 4;    // signature, IHDR length, type, data, CRC
constexpr uint32_t kMaxChunkLength = 0x7fffffffu;  // PNG spec: lengths are at most 2^31 - 1

struct Chunk {
  std::string_view type;
  std::string_view data;
};

uint32_t load_be32(std::string_view bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

void append_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint32_t chunk_crc(std::string_view type, std::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(type.data()), static_cast<uInt>(type.size()));
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
  return static_cast<uint32_t>(crc);
}

// A chunk type for messages: corrupt files may put any bytes there, messages stay one line.
std::string printable_type(std::string_view type) {
  std::string out;
  for (char ch : type) out.push_back(std::isalpha(static_cast<unsigned char>(ch)) ? ch : '?');
  return out;
}

std::string shape_string(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

// Splits a PNG file into chunks, checking the signature, every length and CRC, that IHDR comes
// first and that IEND is present. stb trusts all of these, so this is what turns truncated or
// bit-flipped files into clean errors. Bytes after IEND are ignored, as other decoders do.
std::vector<Chunk> parse_chunks(const std::string& path, std::string_view bytes) {
  if (bytes.substr(0, kSignature.size()) != kSignature)
    throw InputError(path + ": not a PNG file (bad signature)");
  std::vector<Chunk> chunks;
  size_t at = kSignature.size();
  while (chunks.empty() || chunks.back().type != "IEND") {
    if (bytes.size() - at < 12) throw InputError(path + ": truncated PNG (no IEND chunk)");
    uint32_t length = load_be32(bytes, at);
    if (length > kMaxChunkLength) throw InputError(path + ": corrupt PNG (bad chunk length)");
    if (bytes.size() - at - 12 < length) throw InputError(path + ": truncated PNG");
    Chunk chunk{bytes.substr(at + 4, 4), bytes.substr(at + 8, length)};
    if (load_be32(bytes, at + 8 + length) != chunk_crc(chunk.type, chunk.data))
      throw InputError(path + ": corrupt PNG (CRC mismatch in chunk '" + printable_type(chunk.type) + "')");
    if (chunks.empty() && (chunk.type != "IHDR" || length != 13))
      throw InputError(path + ": corrupt PNG (first chunk is not IHDR)");
    chunks.push_back(chunk);
    at += 12 + length;
  }
  return chunks;
}

// Copies stb's interleaved [H, W, C] pixels into a float [C, H, W] tensor in [-1, 1].
template <typename Pixel>
torch::Tensor planar_unit_tensor(const Pixel* pixels, int64_t h, int64_t w, int64_t c, uint32_t max_value) {
  torch::Tensor out = torch::empty({c, h, w}, torch::kFloat);
  float* dst = out.data_ptr<float>();
  const int64_t plane = h * w;
  for (int64_t i = 0; i < plane; ++i)
    for (int64_t k = 0; k < c; ++k) dst[k * plane + i] = unit_from_pixel(pixels[i * c + k], max_value);
  return out;
}

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown error";
}

// Validates a tEXt keyword/text pair (PNG spec: keyword 1-79 printable Latin-1, no NULs).
void check_text_entry(const std::string& path, const std::string& key, const std::string& text) {
  bool key_ok = !key.empty() && key.size() <= 79;
  for (unsigned char ch : key) key_ok = key_ok && ((ch >= 32 && ch <= 126) || ch >= 161);
  require(key_ok, path + ": invalid PNG text keyword '" + key + "' (1-79 printable characters)");
  require(text.find('\0') == std::string::npos, path + ": PNG text for '" + key + "' contains NUL");
  require(key.size() + 1 + text.size() <= kMaxChunkLength, path + ": PNG text for '" + key + "' too long");
}

std::string text_chunk(const std::string& key, const std::string& text) {
  std::string data = key + '\0' + text;
  std::string out;
  append_be32(out, static_cast<uint32_t>(data.size()));
  out += "tEXt";
  out += data;
  append_be32(out, chunk_crc("tEXt", data));
  return out;
}

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

// Validates `image` for writing and returns it as uint8 [H, W, C], contiguous.
torch::Tensor to_png_pixels(const std::string& path, const torch::Tensor& image) {
  require(image.defined(), path + ": cannot write an undefined tensor as PNG");
  torch::Tensor img = image.dim() == 2 ? image.unsqueeze(0) : image;
  require(img.dim() == 3 && (img.size(0) == 1 || img.size(0) == 3),
          path + ": PNG image must be [C, H, W] or [H, W] with C = 1 or 3, got " + shape_string(image));
  require(img.is_floating_point(), path + ": PNG image must be a floating-point tensor in [-1, 1]");
  require(img.size(1) > 0 && img.size(2) > 0, path + ": PNG image is empty " + shape_string(image));
  // stb indexes pixel bytes with int
  require(img.size(0) * img.size(1) * img.size(2) < INT_MAX,
          path + ": image too large for PNG " + shape_string(image));
  img = img.detach().to(torch::kCPU, torch::kDouble);
  require(!torch::isnan(img).any().item<bool>(), path + ": image contains NaN");
  // round half up (std::round on non-negative values); double keeps round trips exact
  torch::Tensor p = torch::floor((img.clamp(-1.0, 1.0) + 1.0) * 127.5 + 0.5);
  return p.to(torch::kUInt8).permute({1, 2, 0}).contiguous();
}

}  // namespace

torch::Tensor parse_png(std::string_view bytes, const std::string& path) {
  const std::vector<Chunk> chunks = parse_chunks(path, bytes);
  // stb_image copies a zero-length first IDAT into a null buffer (memcpy(nullptr, p, 0): undefined
  // behaviour, found by fuzzing). Empty IDAT chunks carry no data, so stb gets the file without them.
  auto empty_idat = [](const Chunk& c) { return c.type == "IDAT" && c.data.empty(); };
  std::string without_empty_idat;
  if (std::any_of(chunks.begin(), chunks.end(), empty_idat)) {
    without_empty_idat.assign(kSignature);
    for (const Chunk& c : chunks)  // a chunk is its 4-byte length, type, data and 4-byte CRC
      if (!empty_idat(c)) without_empty_idat.append(c.type.data() - 4, 12 + c.data.size());
    bytes = without_empty_idat;
  }
  require(bytes.size() <= static_cast<size_t>(INT_MAX), path + ": PNG file too large");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &comp))
    throw InputError(path + ": unreadable PNG (" + stb_reason() + ")");
  // gray and gray+alpha -> 1 channel; RGB, RGBA and palette -> 3 (stb drops the alpha)
  const int channels = comp <= 2 ? 1 : 3;
  int file_comp = 0;
  if (stbi_is_16_bit_from_memory(data, len)) {
    std::unique_ptr<stbi_us, StbFree> px(stbi_load_16_from_memory(data, len, &w, &h, &file_comp, channels));
    if (!px) throw InputError(path + ": corrupt PNG (" + stb_reason() + ")");
    return planar_unit_tensor(px.get(), h, w, channels, 65535);
  }
  std::unique_ptr<stbi_uc, StbFree> px(stbi_load_from_memory(data, len, &w, &h, &file_comp, channels));
  if (!px) throw InputError(path + ": corrupt PNG (" + stb_reason() + ")");
  return planar_unit_tensor(px.get(), h, w, channels, 255);
}

torch::Tensor read_png(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_png(bytes, path);
}

void write_png(const std::string& path, const torch::Tensor& image,
               const std::map<std::string, std::string>& text) {
  torch::Tensor pixels = to_png_pixels(path, image);
  for (const auto& [key, value] : text) check_text_entry(path, key, value);
  const int h = static_cast<int>(pixels.size(0));
  const int w = static_cast<int>(pixels.size(1));
  const int c = static_cast<int>(pixels.size(2));
  std::string png;
  if (!stbi_write_png_to_func(append_bytes, &png, w, h, c, pixels.data_ptr<uint8_t>(), w * c))
    throw InternalError(path + ": PNG encoding failed");
  if (png.size() < kIhdrEnd || png.compare(12, 4, "IHDR") != 0)
    throw InternalError(path + ": unexpected PNG layout from the encoder");
  // Text chunks go right after IHDR so that readers which stop early still find them.
  std::string chunks;
  for (const auto& [key, value] : text) chunks += text_chunk(key, value);
  png.insert(kIhdrEnd, chunks);
  atomic_write_file(path, png);
}

std::map<std::string, std::string> parse_png_text(std::string_view bytes, const std::string& path) {
  std::map<std::string, std::string> text;
  for (const Chunk& chunk : parse_chunks(path, bytes)) {
    if (chunk.type != "tEXt") continue;
    size_t nul = chunk.data.find('\0');
    if (nul == std::string_view::npos)
      throw InputError(path + ": corrupt PNG tEXt chunk (no keyword separator)");
    text[std::string(chunk.data.substr(0, nul))] = std::string(chunk.data.substr(nul + 1));
  }
  return text;
}

std::map<std::string, std::string> read_png_text(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_png_text(bytes, path);
}

torch::Tensor make_grid(const torch::Tensor& images, int64_t cols, int64_t pad, double pad_value, int64_t min_tile) {
  require(images.defined() && images.dim() == 4, "make_grid: expected images [N, C, H, W], got " +
                                                     (images.defined() ? shape_string(images) : "undefined"));
  require(images.size(0) > 0, "make_grid: no images");
  require(cols > 0, "make_grid: cols must be positive, got " + std::to_string(cols));
  require(pad >= 0, "make_grid: pad must be >= 0, got " + std::to_string(pad));
  torch::Tensor src = images.detach();
  const int64_t side = std::max(src.size(2), src.size(3));
  if (side > 0 && min_tile > side) {
    const int64_t k = (min_tile + side - 1) / side;
    src = src.repeat_interleave(k, 2).repeat_interleave(k, 3);
  }
  const int64_t n = src.size(0), c = src.size(1), h = src.size(2), w = src.size(3);
  const int64_t rows = (n + cols - 1) / cols;
  torch::Tensor grid = torch::full({c, rows * h + pad * (rows + 1), cols * w + pad * (cols + 1)}, pad_value,
                                   images.options().requires_grad(false));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = pad + (i / cols) * (h + pad);
    const int64_t left = pad + (i % cols) * (w + pad);
    grid.narrow(1, top, h).narrow(2, left, w).copy_(src[i]);
  }
  return grid;
}

}  // namespace tweedie::io
