#include "tweedie/data/fashion_mnist.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/io/png.h"

namespace tweedie::data {
namespace {

constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned bytes, 1 dimension
constexpr int64_t kSide = 28;
constexpr int64_t kPad = 2;
constexpr int kClasses = 10;

uint32_t load_be32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// Decompresses a whole gzip file held in memory. zlib checks the gzip CRC and length trailer,
// so corruption anywhere in the file is reported here.
std::string gunzip(const std::string& path, const std::string& compressed) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw InternalError("zlib inflateInit2 failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  require(compressed.size() < UINT32_MAX, path + ": file too large");
  zs.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  for (;;) {
    if (zs.avail_out == 0) {
      const size_t grow = std::clamp<size_t>(out.size(), size_t{1} << 20, size_t{1} << 30);
      out.resize(out.size() + grow);
      zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
      zs.avail_out = static_cast<uInt>(grow);
    }
    const int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc == Z_OK || (rc == Z_BUF_ERROR && zs.avail_out == 0)) continue;
    if (rc == Z_BUF_ERROR) throw InputError(path + ": truncated gzip data");
    throw InputError(path + ": corrupt gzip data (" + (zs.msg ? zs.msg : "zlib error") + ")");
  }
  out.resize(zs.total_out);
  return out;
}

// Reads `<dir>/<name>.gz`, or the uncompressed `<dir>/<name>` when only that exists.
// Returns the decompressed bytes; *shown_path is the file read, for messages.
std::string read_idx_bytes(const std::string& dir, const std::string& name, std::string* shown_path) {
  namespace fs = std::filesystem;
  const std::string gz = (fs::path(dir) / (name + ".gz")).string();
  const std::string raw = (fs::path(dir) / name).string();
  std::error_code ec;
  if (!fs::exists(gz, ec) && fs::exists(raw, ec)) {
    *shown_path = raw;
    return read_file(raw);
  }
  *shown_path = gz;
  if (!fs::exists(gz, ec))
    throw InputError(gz + ": not found (install dataset-fashion-mnist or set TWEEDIE_FASHION_MNIST_DIR)");
  return gunzip(gz, read_file(gz));
}

// Checks an idx header (magic, then `rank` big-endian sizes) and that the payload has exactly
// the size the header promises. Returns the sizes.
std::vector<int64_t> parse_idx_header(const std::string& path, const std::string& bytes, uint32_t magic,
                                      size_t rank) {
  const size_t header = 4 + 4 * rank;
  require(bytes.size() >= header, path + ": truncated idx file (" + std::to_string(bytes.size()) + " bytes)");
  const uint32_t found = load_be32(bytes, 0);
  require(found == magic, path + ": not an idx file of the expected kind (magic " + std::to_string(found) +
                              ", expected " + std::to_string(magic) + ")");
  std::vector<int64_t> dims;
  uint64_t payload = 1;
  for (size_t i = 0; i < rank; ++i) {
    dims.push_back(load_be32(bytes, 4 + 4 * i));
    const auto d = static_cast<uint64_t>(dims.back());
    payload = (d != 0 && payload > UINT64_MAX / d) ? UINT64_MAX : payload * d;  // saturate, never wrap
  }
  require(bytes.size() - header == payload, path + ": idx size mismatch (header promises " +
                                                std::to_string(payload) + " bytes of data, file has " +
                                                std::to_string(bytes.size() - header) + "; truncated?)");
  return dims;
}

// Decodes the images into [N, 1, S, S] float, S = 28 + 2 * border; the border stays -1 (black).
torch::Tensor decode_images(const std::string& path, const std::string& bytes, int64_t border) {
  const auto dims = parse_idx_header(path, bytes, kImagesMagic, 3);
  require(dims[1] == kSide && dims[2] == kSide,
          path + ": expected 28x28 images, got " + std::to_string(dims[1]) + "x" + std::to_string(dims[2]));
  const int64_t n = dims[0], side = kSide + 2 * border;
  torch::Tensor images = torch::full({n, 1, side, side}, -1.0f, torch::kFloat);
  float* dst = images.data_ptr<float>();
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data()) + 16;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < kSide; ++y)
      for (int64_t x = 0; x < kSide; ++x)
        dst[(i * side + y + border) * side + x + border] =
            io::unit_from_pixel(src[(i * kSide + y) * kSide + x], 255);
  return images;
}

torch::Tensor decode_labels(const std::string& path, const std::string& bytes) {
  const int64_t n = parse_idx_header(path, bytes, kLabelsMagic, 1)[0];
  torch::Tensor labels = torch::empty({n}, torch::kLong);
  int64_t* dst = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const auto label = static_cast<unsigned char>(bytes[8 + static_cast<size_t>(i)]);
    require(label < kClasses, path + ": label " + std::to_string(label) + " at index " + std::to_string(i) +
                                  " is out of range 0..9");
    dst[i] = label;
  }
  return labels;
}

}  // namespace

std::string fashion_mnist_dir() {
  const char* env = std::getenv("TWEEDIE_FASHION_MNIST_DIR");
  return (env && *env) ? env : "/usr/share/datasets/fashion-mnist";
}

LabeledImages load_fashion_mnist(Split split, bool pad_to_32, const std::string& dir) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  std::string images_path, labels_path;
  const std::string image_bytes = read_idx_bytes(dir, prefix + "-images-idx3-ubyte", &images_path);
  const std::string label_bytes = read_idx_bytes(dir, prefix + "-labels-idx1-ubyte", &labels_path);
  LabeledImages out;
  out.images = decode_images(images_path, image_bytes, pad_to_32 ? kPad : 0);
  out.labels = decode_labels(labels_path, label_bytes);
  require(out.images.size(0) == out.labels.size(0), labels_path + ": " + std::to_string(out.labels.size(0)) +
                                                        " labels but " + images_path + " has " +
                                                        std::to_string(out.images.size(0)) + " images");
  return out;
}

const std::array<std::string, 10>& fashion_mnist_classes() {
  static const std::array<std::string, 10> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                    "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                    "Bag",         "Ankle boot"};
  return names;
}

Split parse_split(const std::string& name) {
  if (name == "train") return Split::kTrain;
  if (name == "test") return Split::kTest;
  throw InputError("unknown split '" + name + "' (expected train or test)");
}

}  // namespace tweedie::data
