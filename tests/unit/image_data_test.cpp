// PNG I/O, image grids, Fashion-MNIST, the skimage test images and image transforms.
// Python (Debian's numpy / skimage / PIL) is the independent oracle where one is needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "support/test_support.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/data/fashion_mnist.h"
#include "tweedie/data/test_images.h"
#include "tweedie/data/transforms.h"
#include "tweedie/io/png.h"

namespace tweedie {
namespace {
namespace fs = std::filesystem;

// ---- helpers -------------------------------------------------------------------------------

// Pixels of a float image in [-1, 1], as uint8 bytes in the tensor's own (C-order) layout.
std::string pixel_bytes(const torch::Tensor& image) {
  torch::Tensor p =
      torch::floor((image.to(torch::kDouble) + 1.0) * 127.5 + 0.5).to(torch::kUInt8).contiguous();
  return std::string(reinterpret_cast<const char*>(p.data_ptr<uint8_t>()), static_cast<size_t>(p.numel()));
}

// The same for a [C, H, W] image, interleaved as [H, W, C] like numpy image arrays.
std::string hwc_bytes(const torch::Tensor& image) { return pixel_bytes(image.permute({1, 2, 0})); }

// Float image from integer pixels [C, H, W], through the library's own mapping.
torch::Tensor unit_image(const torch::Tensor& pixels, uint32_t max_value) {
  torch::Tensor p = pixels.to(torch::kLong).contiguous();
  torch::Tensor out = torch::empty(p.sizes(), torch::kFloat);
  const int64_t* src = p.data_ptr<int64_t>();
  float* dst = out.data_ptr<float>();
  for (int64_t i = 0; i < p.numel(); ++i)
    dst[i] = io::unit_from_pixel(static_cast<uint32_t>(src[i]), max_value);
  return out;
}

torch::Tensor random_pixels(int64_t c, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {c, h, w}, torch::kLong);
}

// The test pattern the python PNG writer below uses: value of channel ch at (y, x) of an
// image with c interleaved channels is ((y * w + x) * c + ch) * k % m.
torch::Tensor pattern(int64_t c_out, int64_t h, int64_t w, int64_t c_file, int64_t k, int64_t m) {
  torch::Tensor out = torch::empty({c_out, h, w}, torch::kLong);
  for (int64_t ch = 0; ch < c_out; ++ch)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) out[ch][y][x] = ((y * w + x) * c_file + ch) * k % m;
  return out;
}

// The oracle's answer lines: those it printed with a leading "@ " (stderr, merged into the
// same stream, may carry library warnings).
std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("@ ", 0) == 0) out.push_back(line.substr(2));
  return out;
}

// Expects InputError with a one-line message that contains `needle`.
template <typename Fn>
void expect_input_error(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected InputError mentioning '" << needle << "'";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A minimal PNG writer in python (no filters: every row has filter byte 0), so that the test
// files are made independently of stb.
const char* kPythonPngWriter = R"PY(
import struct, zlib
import numpy as np
def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
def png(path, w, h, depth, ctype, rows, extra=b'', idat=None):
    raw = b''.join(b'\x00' + bytes(r) for r in rows)
    ihdr = struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, 0)
    data = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + extra +
            chunk(b'IDAT', zlib.compress(raw) if idat is None else idat) + chunk(b'IEND', b''))
    open(path, 'wb').write(data)
def pattern(h, w, c, k, m):
    return (np.arange(h * w * c, dtype=np.int64) * k % m).reshape(h, w * c)
)PY";

// ---- PNG -----------------------------------------------------------------------------------

TEST(Png, RoundTripGrayExact) {
  const std::string path = (test::scratch_dir() / "gray.png").string();
  torch::Tensor pixels = random_pixels(1, 17, 23, 1);
  torch::Tensor image = unit_image(pixels, 255);
  io::write_png(path, image);
  torch::Tensor back = io::read_png(path);
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{1, 17, 23}));
  EXPECT_EQ(back.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(back, image));
  // [H, W] is written as one channel
  io::write_png(path, image[0]);
  EXPECT_TRUE(torch::equal(io::read_png(path), image));
}

TEST(Png, RoundTripRgbExact) {
  const std::string path = (test::scratch_dir() / "rgb.png").string();
  torch::Tensor image = unit_image(random_pixels(3, 31, 9, 2), 255);
  io::write_png(path, image);
  torch::Tensor back = io::read_png(path);
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{3, 31, 9}));
  EXPECT_TRUE(torch::equal(back, image));
  // float64 input and a non-contiguous view write the same pixels
  io::write_png(path, image.to(torch::kDouble).transpose(1, 2).contiguous().transpose(1, 2));
  EXPECT_TRUE(torch::equal(io::read_png(path), image));
}

TEST(Png, MappingEndpointsAndClamp) {
  const std::string path = (test::scratch_dir() / "ends.png").string();
  torch::Tensor image = torch::tensor({-1.0f, 1.0f, 0.0f, -7.0f, 3.0f, 2.0f / 255 - 1}).reshape({1, 1, 6});
  io::write_png(path, image);
  torch::Tensor back = io::read_png(path);
  EXPECT_EQ(pixel_bytes(back), std::string("\x00\xff\x80\x00\xff\x01", 6));
  EXPECT_EQ(back[0][0][0].item<float>(), -1.0f);
  EXPECT_EQ(back[0][0][1].item<float>(), 1.0f);
  EXPECT_EQ(io::unit_from_pixel(0, 255), -1.0f);
  EXPECT_EQ(io::unit_from_pixel(255, 255), 1.0f);
  EXPECT_EQ(io::unit_from_pixel(65535, 65535), 1.0f);
}

TEST(Png, TextChunksRoundTripAndSitAfterIhdr) {
  const std::string path = (test::scratch_dir() / "text.png").string();
  const std::map<std::string, std::string> text = {{"tweedie", R"({"seed": 7, "note": "a b"})"},
                                                   {"Comment", ""}};
  io::write_png(path, unit_image(random_pixels(3, 4, 5, 3), 255), text);
  EXPECT_EQ(io::read_png_text(path), text);
  const std::string bytes = read_file(path);
  EXPECT_EQ(bytes.substr(33 + 4, 4), "tEXt");  // 8 signature + 25 IHDR, then a length
  // a file without text
  io::write_png(path, torch::zeros({1, 2, 2}));
  EXPECT_TRUE(io::read_png_text(path).empty());
  // bad keywords are refused
  expect_input_error([&] { io::write_png(path, torch::zeros({1, 2, 2}), {{"", "x"}}); }, "keyword");
  expect_input_error(
      [&] {
        io::write_png(path, torch::zeros({1, 2, 2}), {{std::string(80, 'k'), "x"}});
      },
      "keyword");
  expect_input_error(
      [&] {
        io::write_png(path, torch::zeros({1, 2, 2}), {{"k", std::string("a\0b", 3)}});
      },
      "NUL");
}

TEST(Png, PythonReadsOurPngIdentically) {
  if (!test::python_has("skimage.io, PIL.Image, hashlib"))
    TWEEDIE_SKIP_MISSING() << "python oracle (skimage, PIL) unavailable";
  const fs::path dir = test::scratch_dir();
  const std::map<std::string, std::string> text = {{"tweedie", R"({"step": 3})"}};
  for (int64_t c : {1, 3}) {
    const std::string path = (dir / ("py" + std::to_string(c) + ".png")).string();
    torch::Tensor image = unit_image(random_pixels(c, 13, 19, 4 + static_cast<uint64_t>(c)), 255);
    io::write_png(path, image, text);
    std::string out;
    ASSERT_EQ(test::run_python("import hashlib, skimage.io, PIL.Image\n"
                               "a = skimage.io.imread('" +
                                   path +
                                   "')\n"
                                   "print('@', a.dtype, a.shape)\n"
                                   "print('@', hashlib.sha256(a.tobytes()).hexdigest())\n"
                                   "print('@', PIL.Image.open('" +
                                   path + "').text['tweedie'])\n",
                               &out),
              0)
        << out;
    auto got = lines(out);
    ASSERT_EQ(got.size(), 3u) << out;
    EXPECT_EQ(got[0], c == 1 ? "uint8 (13, 19)" : "uint8 (13, 19, 3)");
    EXPECT_EQ(got[1], sha256_hex(hwc_bytes(image)));
    EXPECT_EQ(got[2], text.at("tweedie"));
  }
}

TEST(Png, SkimageTestImagesMatchSkimageData) {
  if (!test::python_has("skimage.data, hashlib")) TWEEDIE_SKIP_MISSING() << "python oracle (skimage) unavailable";
  std::string out;
  ASSERT_EQ(test::run_python("import hashlib, skimage.data\n"
                             "for name in ('camera', 'astronaut', 'coins'):\n"
                             "    a = getattr(skimage.data, name)()\n"
                             "    print('@', name, hashlib.sha256(a.tobytes()).hexdigest())\n",
                             &out),
            0)
      << out;
  auto got = lines(out);
  ASSERT_EQ(got.size(), 3u) << out;
  for (const std::string& line : got) {
    const std::string name = line.substr(0, line.find(' '));
    torch::Tensor image = io::read_png(data::test_image_dir() + "/" + name + ".png");
    EXPECT_EQ(name + " " + sha256_hex(hwc_bytes(image)), line);
  }
}

TEST(Png, ReadsSixteenBitAlphaPaletteAndLowBitDepth) {
  if (!test::python_has("numpy, zlib")) TWEEDIE_SKIP_MISSING() << "python oracle (numpy) unavailable";
  const fs::path dir = test::scratch_dir();
  const int64_t h = 5, w = 7;
  const std::string d = dir.string() + "/";
  std::string out;
  ASSERT_EQ(test::run_python(std::string(kPythonPngWriter) + "h, w, d = 5, 7, '" + d + "'\n" + R"PY(
png(d + 'gray16.png', w, h, 16, 0, pattern(h, w, 1, 7919, 65536).astype('>u2').view(np.uint8))
png(d + 'rgba16.png', w, h, 16, 6, pattern(h, w, 4, 7919, 65536).astype('>u2').view(np.uint8))
png(d + 'graya8.png', w, h, 8, 4, pattern(h, w, 2, 37, 256).astype(np.uint8))
png(d + 'rgba8.png', w, h, 8, 6, pattern(h, w, 4, 37, 256).astype(np.uint8))
png(d + 'rgb8.png', w, h, 8, 2, pattern(h, w, 3, 37, 256).astype(np.uint8))
pal = bytes(v for i in range(256) for v in (i, 255 - i, i * 7 % 256))
png(d + 'palette8.png', w, h, 8, 3, pattern(h, w, 1, 37, 256).astype(np.uint8),
    extra=chunk(b'PLTE', pal) + chunk(b'tRNS', bytes(range(256))))
png(d + 'gray1.png', w, h, 1, 0, np.packbits(pattern(h, w, 1, 1, 2).astype(np.uint8), axis=1))
)PY",
                             &out),
            0)
      << out;

  auto check = [&](const std::string& file, const torch::Tensor& expected) {
    SCOPED_TRACE(file);
    torch::Tensor got = io::read_png(d + file);
    ASSERT_EQ(got.sizes(), expected.sizes());
    EXPECT_TRUE(torch::equal(got, expected));
  };
  check("gray16.png", unit_image(pattern(1, h, w, 1, 7919, 65536), 65535));
  check("rgba16.png", unit_image(pattern(3, h, w, 4, 7919, 65536), 65535));
  check("graya8.png", unit_image(pattern(1, h, w, 2, 37, 256), 255));
  check("rgba8.png", unit_image(pattern(3, h, w, 4, 37, 256), 255));
  check("rgb8.png", unit_image(pattern(3, h, w, 3, 37, 256), 255));
  torch::Tensor index = pattern(1, h, w, 1, 37, 256);
  check("palette8.png", unit_image(torch::cat({index, 255 - index, index * 7 % 256}), 255));
  check("gray1.png", unit_image(pattern(1, h, w, 1, 1, 2) * 255, 255));
}

TEST(Png, CorruptFilesAreOneLineInputErrors) {
  const fs::path dir = test::scratch_dir();
  const std::string good = (dir / "good.png").string();
  io::write_png(good, unit_image(random_pixels(3, 16, 16, 5), 255));
  const std::string bytes = read_file(good);

  const std::string text = (dir / "text.png").string();
  write_bytes(text, "hello, I am not a PNG\n");
  expect_input_error([&] { io::read_png(text); }, "not a PNG");
  expect_input_error([&] { io::read_png_text(text); }, "not a PNG");

  const std::string empty = (dir / "empty.png").string();
  write_bytes(empty, "");
  expect_input_error([&] { io::read_png(empty); }, empty);

  const std::string truncated = (dir / "truncated.png").string();
  write_bytes(truncated, bytes.substr(0, bytes.size() / 2));
  expect_input_error([&] { io::read_png(truncated); }, "truncated");

  const std::string no_iend = (dir / "no_iend.png").string();
  write_bytes(no_iend, bytes.substr(0, bytes.size() - 12));
  expect_input_error([&] { io::read_png(no_iend); }, "IEND");

  std::string flipped_bytes = bytes;
  flipped_bytes[bytes.size() - 20] ^= 0x40;  // inside IDAT
  const std::string flipped = (dir / "flipped.png").string();
  write_bytes(flipped, flipped_bytes);
  expect_input_error([&] { io::read_png(flipped); }, "CRC");

  expect_input_error([&] { io::read_png((dir / "missing.png").string()); }, "missing.png");
  expect_input_error([&] { io::read_png(dir.string()); }, dir.string());
}

TEST(Png, CorruptImageDataWithValidCrcIsInputError) {
  if (!test::python_has("numpy, zlib")) TWEEDIE_SKIP_MISSING() << "python oracle (numpy) unavailable";
  const std::string path = (test::scratch_dir() / "bad_zlib.png").string();
  std::string out;
  ASSERT_EQ(test::run_python(std::string(kPythonPngWriter) + "png('" + path +
                                 "', 4, 4, 8, 0, pattern(4, 4, 1, 1, 256).astype(np.uint8),\n"
                                 "    idat=b'\\x78\\x9c' + bytes(range(200, 250)))\n",
                             &out),
            0)
      << out;
  expect_input_error([&] { io::read_png(path); }, path);
}

TEST(Png, WriteRejectsNanAndBadShapes) {
  const fs::path dir = test::scratch_dir();
  const std::string path = (dir / "bad.png").string();
  torch::Tensor image = torch::zeros({3, 4, 4});
  image[1][2][3] = std::numeric_limits<float>::quiet_NaN();
  expect_input_error([&] { io::write_png(path, image); }, "NaN");
  expect_input_error([&] { io::write_png(path, torch::zeros({2, 4, 4})); }, "C = 1 or 3");
  expect_input_error([&] { io::write_png(path, torch::zeros({1, 1, 4, 4})); }, "C = 1 or 3");
  expect_input_error([&] { io::write_png(path, torch::zeros({1, 0, 4})); }, "empty");
  expect_input_error([&] { io::write_png(path, torch::zeros({1, 4, 4}, torch::kLong)); }, "floating");
  EXPECT_FALSE(fs::exists(path));
}

// ---- make_grid -----------------------------------------------------------------------------

TEST(Grid, ShapePlacementAndPadding) {
  const int64_t n = 5, h = 2, w = 3, pad = 1, cols = 3;
  torch::Tensor images = torch::empty({n, 2, h, w});
  for (int64_t i = 0; i < n; ++i) images[i].fill_(0.1 * static_cast<double>(i));
  torch::Tensor grid = io::make_grid(images, cols, pad, 0.5);
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{2, 2 * h + 3 * pad, 3 * w + 4 * pad}));
  torch::Tensor expected = torch::full({2, 7, 13}, 0.5);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = pad + (i / cols) * (h + pad), left = pad + (i % cols) * (w + pad);
    expected.narrow(1, top, h).narrow(2, left, w).fill_(0.1 * static_cast<double>(i));
  }
  EXPECT_TRUE(torch::equal(grid, expected));
  // the empty last cell and the borders hold the pad value
  EXPECT_TRUE(torch::all(grid.narrow(1, 4, 2).narrow(2, 9, 3) == 0.5).item<bool>());
  EXPECT_TRUE(torch::all(grid.select(1, 0) == 0.5).item<bool>());
}

TEST(Grid, NoPaddingConcatenatesAndErrors) {
  torch::Tensor images = torch::arange(4 * 1 * 2 * 2, torch::kFloat).reshape({4, 1, 2, 2});
  torch::Tensor grid = io::make_grid(images, 2, 0);
  torch::Tensor top = torch::cat({images[0], images[1]}, 2), bottom = torch::cat({images[2], images[3]}, 2);
  EXPECT_TRUE(torch::equal(grid, torch::cat({top, bottom}, 1)));
  EXPECT_EQ(io::make_grid(images, 1, 2).sizes(), (std::vector<int64_t>{1, 4 * 2 + 5 * 2, 2 + 2 * 2}));
  expect_input_error([&] { io::make_grid(images, 0); }, "cols");
  expect_input_error([&] { io::make_grid(images, 2, -1); }, "pad");
  expect_input_error([&] { io::make_grid(images[0], 2); }, "[N, C, H, W]");
}

// ---- Fashion-MNIST -------------------------------------------------------------------------

void expect_class_counts(const torch::Tensor& labels, int64_t per_class) {
  torch::Tensor counts = torch::bincount(labels, {}, 10);
  EXPECT_TRUE(torch::equal(counts, torch::full({10}, per_class, torch::kLong))) << counts;
}

TEST(FashionMnist, TrainAndTestSplits) {
  for (auto [split, n] : {std::pair{data::Split::kTrain, 60000}, std::pair{data::Split::kTest, 10000}}) {
    data::LabeledImages d = data::load_fashion_mnist(split);
    ASSERT_EQ(d.images.sizes(), (std::vector<int64_t>{n, 1, 32, 32}));
    ASSERT_EQ(d.labels.sizes(), (std::vector<int64_t>{n}));
    EXPECT_EQ(d.images.scalar_type(), torch::kFloat);
    EXPECT_EQ(d.labels.scalar_type(), torch::kLong);
    EXPECT_EQ(d.images.min().item<float>(), -1.0f);
    EXPECT_EQ(d.images.max().item<float>(), 1.0f);
    // the 2-pixel border is black (-1)
    torch::Tensor inner = torch::zeros({32, 32}, torch::kBool);
    inner.narrow(0, 2, 28).narrow(1, 2, 28).fill_(true);
    EXPECT_TRUE(torch::all(d.images.masked_select(~inner) == -1.0f).item<bool>());
    expect_class_counts(d.labels, n / 10);
  }
}

TEST(FashionMnist, UnpaddedMatchesPythonGzipNumpy) {
  if (!test::python_has("numpy, gzip, hashlib")) TWEEDIE_SKIP_MISSING() << "python oracle (numpy) unavailable";
  const std::string dir = data::fashion_mnist_dir();
  std::string out;
  ASSERT_EQ(test::run_python("import gzip, hashlib, numpy as np\n"
                             "d = '" +
                                 dir + "'\n" + R"PY(
lab = np.frombuffer(gzip.open(d + '/t10k-labels-idx1-ubyte.gz').read(), np.uint8, offset=8)
img = np.frombuffer(gzip.open(d + '/t10k-images-idx3-ubyte.gz').read(), np.uint8, offset=16)
print('@', ' '.join(str(v) for v in lab[:8]))
print('@', hashlib.sha256(img[:784].tobytes()).hexdigest())
print('@', hashlib.sha256(img.tobytes()).hexdigest())
)PY",
                             &out),
            0)
      << out;
  auto got = lines(out);
  ASSERT_EQ(got.size(), 3u) << out;
  data::LabeledImages d = data::load_fashion_mnist(data::Split::kTest, /*pad_to_32=*/false, dir);
  ASSERT_EQ(d.images.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
  std::string first_labels;
  for (int64_t i = 0; i < 8; ++i)
    first_labels += (i ? " " : "") + std::to_string(d.labels[i].item<int64_t>());
  EXPECT_EQ(first_labels, got[0]);
  EXPECT_EQ(sha256_hex(pixel_bytes(d.images[0])), got[1]);
  EXPECT_EQ(sha256_hex(pixel_bytes(d.images)), got[2]);
  // the padded version holds the same pixels in its interior
  data::LabeledImages padded = data::load_fashion_mnist(data::Split::kTest, true, dir);
  EXPECT_TRUE(torch::equal(padded.images.narrow(2, 2, 28).narrow(3, 2, 28), d.images));
}

// Uncompressed idx files written here, so validation is tested without python.
std::string idx_header(uint32_t magic, const std::vector<uint32_t>& dims) {
  std::string out;
  auto put = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  return out;
}

TEST(FashionMnist, ReadsUncompressedIdxAndValidatesIt) {
  const fs::path dir = test::scratch_dir();
  const std::string images = (dir / "t10k-images-idx3-ubyte").string();
  const std::string labels = (dir / "t10k-labels-idx1-ubyte").string();
  std::string pixels(3 * 28 * 28, '\0');
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<char>(i % 256);
  write_bytes(images, idx_header(2051, {3, 28, 28}) + pixels);
  write_bytes(labels, idx_header(2049, {3}) + std::string("\x09\x00\x04", 3));
  data::LabeledImages d = data::load_fashion_mnist(data::Split::kTest, true, dir.string());
  ASSERT_EQ(d.images.sizes(), (std::vector<int64_t>{3, 1, 32, 32}));
  EXPECT_TRUE(torch::equal(d.labels, torch::tensor({9, 0, 4}, torch::kLong)));
  EXPECT_EQ(pixel_bytes(d.images.narrow(2, 2, 28).narrow(3, 2, 28)), pixels);

  write_bytes(labels, idx_header(2049, {3}) + std::string("\x09\x00\x0a", 3));
  expect_input_error([&] { data::load_fashion_mnist(data::Split::kTest, true, dir.string()); },
                     "out of range");
  write_bytes(labels, idx_header(2049, {2}) + std::string("\x09\x00", 2));
  expect_input_error([&] { data::load_fashion_mnist(data::Split::kTest, true, dir.string()); }, labels);
  write_bytes(images, idx_header(2049, {3, 28, 28}) + pixels);
  expect_input_error([&] { data::load_fashion_mnist(data::Split::kTest, true, dir.string()); }, "magic");
  write_bytes(images, idx_header(2051, {3, 28, 28}) + pixels.substr(1));
  expect_input_error([&] { data::load_fashion_mnist(data::Split::kTest, true, dir.string()); }, images);
  write_bytes(images, idx_header(2051, {3, 27, 28}) + pixels.substr(3 * 28));
  expect_input_error([&] { data::load_fashion_mnist(data::Split::kTest, true, dir.string()); }, "28x28");
  write_bytes(images, "\x00\x00");
  expect_input_error([&] { data::load_fashion_mnist(data::Split::kTest, true, dir.string()); }, "truncated");
  // a .gz file that is not gzip
  write_bytes(images + ".gz", "plain text");
  expect_input_error([&] { data::load_fashion_mnist(data::Split::kTest, true, dir.string()); },
                     images + ".gz");
  // a missing directory
  expect_input_error([&] { data::load_fashion_mnist(data::Split::kTrain, true, (dir / "nope").string()); },
                     "train-images-idx3-ubyte.gz");
}

TEST(FashionMnist, TamperedGzipCopiesAreInputErrors) {
  if (!test::python_has("gzip")) TWEEDIE_SKIP_MISSING() << "python oracle unavailable";
  const fs::path dir = test::scratch_dir();
  std::string out;
  ASSERT_EQ(test::run_python("import gzip, os, struct\n"
                             "src, out = '" +
                                 data::fashion_mnist_dir() + "', '" + dir.string() + "'\n" + R"PY(
imgs = gzip.open(src + '/t10k-images-idx3-ubyte.gz').read()
labs = gzip.open(src + '/t10k-labels-idx1-ubyte.gz').read()
def make(case, images=imgs, labels=labs, raw_images=None):
    d = os.path.join(out, case)
    os.makedirs(d)
    open(d + '/t10k-images-idx3-ubyte.gz', 'wb').write(raw_images or gzip.compress(images, 1))
    open(d + '/t10k-labels-idx1-ubyte.gz', 'wb').write(gzip.compress(labels, 1))
gz = gzip.compress(imgs, 1)
make('ok')
make('bad_magic', images=b'\x00\x00\x08\x04' + imgs[4:])
make('truncated_idx', images=imgs[:len(imgs) // 2])
make('truncated_gz', raw_images=gz[:len(gz) // 2])
make('flipped_gz', raw_images=gz[:100000] + bytes([gz[100000] ^ 0x55]) + gz[100001:])
make('count_mismatch', labels=struct.pack('>II', 2049, 9999) + labs[8:-1])
)PY",
                             &out),
            0)
      << out;
  auto load = [&](const std::string& c) {
    return data::load_fashion_mnist(data::Split::kTest, true, (dir / c).string());
  };
  EXPECT_EQ(load("ok").images.size(0), 10000);
  const std::string images = "t10k-images-idx3-ubyte.gz", labels = "t10k-labels-idx1-ubyte.gz";
  expect_input_error([&] { load("bad_magic"); }, (dir / "bad_magic" / images).string());
  expect_input_error([&] { load("truncated_idx"); }, (dir / "truncated_idx" / images).string());
  expect_input_error([&] { load("truncated_gz"); }, (dir / "truncated_gz" / images).string());
  expect_input_error([&] { load("flipped_gz"); }, (dir / "flipped_gz" / images).string());
  expect_input_error([&] { load("count_mismatch"); }, (dir / "count_mismatch" / labels).string());
}

TEST(FashionMnist, ClassesAndSplitNames) {
  const auto& names = data::fashion_mnist_classes();
  EXPECT_EQ(names[0], "T-shirt/top");
  EXPECT_EQ(names[5], "Sandal");
  EXPECT_EQ(names[9], "Ankle boot");
  EXPECT_EQ(data::parse_split("train"), data::Split::kTrain);
  EXPECT_EQ(data::parse_split("test"), data::Split::kTest);
  expect_input_error([] { data::parse_split("validation"); }, "validation");
}

// ---- skimage test images ---------------------------------------------------------------------

TEST(TestImage, CameraAndAstronaut) {
  torch::Tensor camera = data::load_test_image("camera");
  EXPECT_EQ(camera.sizes(), (std::vector<int64_t>{1, 512, 512}));
  torch::Tensor astronaut = data::load_test_image("astronaut");
  EXPECT_EQ(astronaut.sizes(), (std::vector<int64_t>{3, 512, 512}));
  EXPECT_GE(astronaut.min().item<float>(), -1.0f);
  EXPECT_LE(astronaut.max().item<float>(), 1.0f);
  // by path, too
  EXPECT_TRUE(torch::equal(data::load_test_image(data::test_image_dir() + "/camera.png"), camera));
}

TEST(TestImage, ListIsSortedAndHasTheClassics) {
  auto names = data::list_test_images();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* name : {"camera", "astronaut", "coins", "moon"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
}

TEST(TestImage, UnknownNameListsAvailableNames) {
  expect_input_error([] { data::load_test_image("no_such_image"); }, "no_such_image");
  expect_input_error([] { data::load_test_image("no_such_image"); }, "astronaut");
  expect_input_error([] { data::load_test_image("/nonexistent/x.png"); }, "/nonexistent/x.png");
}

TEST(TestImage, EnvironmentOverridesTheDirectory) {
  const fs::path dir = test::scratch_dir();
  io::write_png((dir / "tiny.png").string(), torch::zeros({1, 2, 3}));
  write_bytes(dir / "notes.txt", "not an image");
  ::setenv("TWEEDIE_SKIMAGE_DATA_DIR", dir.c_str(), 1);
  EXPECT_EQ(data::test_image_dir(), dir.string());
  EXPECT_EQ(data::list_test_images(), std::vector<std::string>{"tiny"});
  EXPECT_EQ(data::load_test_image("tiny").sizes(), (std::vector<int64_t>{1, 2, 3}));
  ::setenv("TWEEDIE_SKIMAGE_DATA_DIR", (dir / "missing").c_str(), 1);
  expect_input_error([] { data::test_image_dir(); }, "TWEEDIE_SKIMAGE_DATA_DIR");
  ::unsetenv("TWEEDIE_SKIMAGE_DATA_DIR");
}

// ---- transforms ----------------------------------------------------------------------------

TEST(Transform, CenterCropAndSquare) {
  torch::Tensor image = torch::arange(2 * 6 * 9, torch::kFloat).reshape({2, 6, 9});
  torch::Tensor crop = data::center_crop(image, 2, 5);
  EXPECT_TRUE(torch::equal(crop, image.narrow(1, 2, 2).narrow(2, 2, 5)));
  EXPECT_TRUE(torch::equal(data::center_square(image), image.narrow(2, 1, 6)));
  torch::Tensor batch = torch::stack({image, image + 1});
  EXPECT_EQ(data::center_square(batch).sizes(), (std::vector<int64_t>{2, 2, 6, 6}));
  EXPECT_TRUE(torch::equal(data::center_crop(batch, 2, 5)[1], crop + 1));
  expect_input_error([&] { data::center_crop(image, 7, 5); }, "center_crop");
  expect_input_error([&] { data::center_crop(image[0], 2, 2); }, "[C, H, W]");
}

TEST(Transform, ResizeKeepsConstantImagesConstant) {
  torch::Tensor image = torch::full({3, 24, 36}, 0.37f);
  for (const char* name : {"area", "bilinear", "bicubic", "nearest"}) {
    SCOPED_TRACE(name);
    const auto mode = data::parse_resize_mode(name);
    for (auto [h, w] : {std::pair{8, 12}, std::pair{50, 70}, std::pair{24, 36}, std::pair{10, 60}}) {
      torch::Tensor out = data::resize(image, h, w, mode);
      ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, h, w}));
      EXPECT_LT((out - 0.37f).abs().max().item<float>(), 1e-6f);
    }
    EXPECT_EQ(data::resize(image.unsqueeze(0).repeat({2, 1, 1, 1}), 5, 6, mode).sizes(),
              (std::vector<int64_t>{2, 3, 5, 6}));
  }
}

TEST(Transform, AreaDownscaleIsBlockMean) {
  torch::manual_seed(6);
  torch::Tensor image = torch::rand({2, 4, 6}) * 2 - 1;
  torch::Tensor out = data::resize(image, 2, 3, data::ResizeMode::kArea);
  torch::Tensor expected = image.reshape({2, 2, 2, 3, 2}).mean({2, 4});
  EXPECT_TRUE(torch::allclose(out, expected, 1e-6, 1e-6)) << out << expected;
}

TEST(Transform, ResizeClampsAndAntialiases) {
  // a hard edge overshoots under bicubic upscaling; the result stays in [-1, 1]
  torch::Tensor edge = torch::cat({-torch::ones({1, 8, 4}), torch::ones({1, 8, 4})}, 2);
  torch::Tensor up = data::resize(edge, 32, 32, data::ResizeMode::kBicubic);
  EXPECT_GE(up.min().item<float>(), -1.0f);
  EXPECT_LE(up.max().item<float>(), 1.0f);
  // a one-pixel checkerboard shrunk 3x averages out when antialiased (plain sampling keeps +-1)
  torch::Tensor yy = torch::arange(48).reshape({48, 1}), xx = torch::arange(48).reshape({1, 48});
  torch::Tensor checker = (((yy + xx) % 2) * 2 - 1).to(torch::kFloat).unsqueeze(0);
  for (auto mode : {data::ResizeMode::kBicubic, data::ResizeMode::kBilinear, data::ResizeMode::kArea})
    EXPECT_LT(data::resize(checker, 16, 16, mode).abs().max().item<float>(), 0.25f);
  EXPECT_EQ(data::resize(checker, 16, 16, data::ResizeMode::kNearest).abs().min().item<float>(), 1.0f);
}

TEST(Transform, GrayAndRgbConversions) {
  torch::Tensor rgb =
      torch::stack({torch::full({2, 2}, 0.5f), torch::full({2, 2}, -0.25f), torch::full({2, 2}, 1.0f)});
  torch::Tensor gray = data::to_gray(rgb);
  ASSERT_EQ(gray.sizes(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_NEAR(gray[0][1][1].item<float>(), 0.299 * 0.5 + 0.587 * -0.25 + 0.114 * 1.0, 1e-6);
  EXPECT_TRUE(torch::equal(data::to_gray(gray), gray));
  torch::Tensor back = data::to_rgb(gray);
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{3, 2, 2}));
  EXPECT_TRUE(torch::equal(back[2], gray[0]));
  EXPECT_TRUE(torch::equal(data::to_rgb(rgb), rgb));
  torch::Tensor batch = rgb.unsqueeze(0).repeat({4, 1, 1, 1});
  EXPECT_EQ(data::to_gray(batch).sizes(), (std::vector<int64_t>{4, 1, 2, 2}));
  EXPECT_EQ(data::to_rgb(data::to_gray(batch)).sizes(), (std::vector<int64_t>{4, 3, 2, 2}));
  // white stays white, black stays black
  EXPECT_NEAR(data::to_gray(torch::ones({3, 1, 1})).item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(data::to_gray(-torch::ones({3, 1, 1})).item<float>(), -1.0f, 1e-6);
  expect_input_error([] { data::to_gray(torch::zeros({2, 3, 3})); }, "channels");
  expect_input_error([] { data::to_rgb(torch::zeros({4, 3, 3})); }, "channels");
}

TEST(Transform, ParseResizeMode) {
  EXPECT_EQ(data::parse_resize_mode("area"), data::ResizeMode::kArea);
  EXPECT_EQ(data::parse_resize_mode("bilinear"), data::ResizeMode::kBilinear);
  EXPECT_EQ(data::parse_resize_mode("bicubic"), data::ResizeMode::kBicubic);
  EXPECT_EQ(data::parse_resize_mode("nearest"), data::ResizeMode::kNearest);
  expect_input_error([] { data::parse_resize_mode("lanczos"); }, "lanczos");
}

}  // namespace
}  // namespace tweedie
