#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/io/npy.h"

namespace tweedie {
namespace {

namespace fs = std::filesystem;

// Every dtype the reader supports: numpy's kind+size code and the matching torch dtype.
struct DtypeCase {
  const char* code;
  torch::ScalarType type;
};
const std::vector<DtypeCase>& all_dtypes() {
  static const std::vector<DtypeCase> cases = {
      {"f2", torch::kHalf},  {"f4", torch::kFloat}, {"f8", torch::kDouble},
      {"i1", torch::kChar},  {"i2", torch::kShort}, {"i4", torch::kInt},
      {"i8", torch::kLong},  {"u1", torch::kByte},  {"b1", torch::kBool},
      {"c8", torch::kComplexFloat}, {"c16", torch::kComplexDouble},
  };
  return cases;
}

// numpy's type string for a supported code, as np.dtype(code).str spells it.
std::string numpy_descr(const std::string& code) {
  return (code == "i1" || code == "u1" || code == "b1" ? "|" : "<") + code;
}

// The raw bytes of a contiguous CPU tensor.
std::string tensor_bytes(const torch::Tensor& t) {
  EXPECT_TRUE(t.is_contiguous());
  return std::string(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
}

// Random values of any supported dtype, covering every byte of the wider types.
torch::Tensor random_tensor(torch::ScalarType type, torch::IntArrayRef shape) {
  switch (type) {
    case torch::kBool: return torch::randint(0, 2, shape).to(torch::kBool);
    case torch::kByte: return torch::randint(0, 256, shape).to(type);
    case torch::kChar: return torch::randint(-128, 128, shape).to(type);
    case torch::kShort: return torch::randint(-32768, 32768, shape).to(type);
    case torch::kInt: return torch::randint(INT32_MIN, INT32_MAX, shape, torch::kLong).to(type);
    case torch::kLong:
      return torch::randint(-(int64_t{1} << 62), int64_t{1} << 62, shape, torch::kLong);
    case torch::kComplexFloat:
    case torch::kComplexDouble:
      return torch::complex(torch::randn(shape, torch::kDouble), torch::randn(shape, torch::kDouble))
          .to(type);
    default: return (torch::randn(shape, torch::kDouble) * 100).to(type);  // floats
  }
}

void expect_same(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(got.scalar_type(), want.scalar_type());
  EXPECT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(got.device().is_cpu());
  torch::Tensor w = want.resolve_conj().contiguous();
  EXPECT_EQ(tensor_bytes(got), tensor_bytes(w));
}

// Checks a tensor read from `stem`.npy against numpy's little-endian C-order bytes in
// `stem`.bin.
void expect_matches_bin(const fs::path& dir, const std::string& stem, torch::ScalarType type,
                        std::vector<int64_t> shape) {
  SCOPED_TRACE(stem);
  torch::Tensor t;
  ASSERT_NO_THROW(t = io::read_npy((dir / (stem + ".npy")).string()));
  EXPECT_EQ(t.scalar_type(), type);
  EXPECT_EQ(t.sizes().vec(), shape);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(tensor_bytes(t), read_file((dir / (stem + ".bin")).string()));
}

// Builds a .npy file by hand from a header dict (padded the way numpy does) and data.
std::string make_npy(const std::string& dict, std::string_view data, int major = 1) {
  size_t preamble = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((preamble + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  for (size_t i = 0; i < preamble - 8; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + std::string(data);
}

// Writes `bytes` to a scratch file and expects read_npy to throw a one-line InputError
// naming the file and containing `needle`.
void expect_rejected(std::string_view bytes, const std::string& needle, const std::string& stem) {
  SCOPED_TRACE(stem);
  std::string path = (test::scratch_dir() / (stem + ".npy")).string();
  atomic_write_file(path, bytes);
  try {
    io::read_npy(path);
    ADD_FAILURE() << "no error for " << stem;
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

std::string python_prelude(const fs::path& dir) {
  return "import numpy as np\nd = r'" + dir.string() + "'\n";
}

#define REQUIRE_NUMPY()                                                         \
  do {                                                                          \
    if (!test::python_has("numpy")) TWEEDIE_SKIP_MISSING() << "python3 with numpy absent"; \
  } while (0)

// ---- numpy writes, we read -------------------------------------------------------------

TEST(NpyNumpy, ReadsEveryDtypeInBothOrdersAndByteOrders) {
  REQUIRE_NUMPY();
  auto dir = test::scratch_dir();
  std::string out;
  int rc = test::run_python(python_prelude(dir) + R"PY(
rng = np.random.default_rng(7)
def values(dt, shape):
    if dt.kind == 'f': return (rng.standard_normal(shape) * 100).astype(dt)
    if dt.kind == 'c': return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    if dt.kind == 'b': return rng.integers(0, 2, shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, shape, endpoint=True, dtype=np.int64).astype(dt)
for code in ['f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'b1', 'c8', 'c16']:
    for order in 'CF':
        for bo, tag in (('<', 'le'), ('>', 'be')):
            dt = np.dtype(code).newbyteorder(bo)
            a = np.asarray(values(dt, (2, 3, 4)), dtype=dt, order=order)
            assert a.flags.f_contiguous == (order == 'F') and a.dtype.str[1:] == code
            if dt.itemsize > 1: assert a.dtype.str[0] == bo
            stem = f'{d}/{code}_{order}_{tag}'
            np.save(stem + '.npy', a)
            open(stem + '.bin', 'wb').write(a.astype(dt.newbyteorder('<')).tobytes(order='C'))
print('ok')
)PY", &out);
  ASSERT_EQ(rc, 0) << out;
  for (const auto& dc : all_dtypes()) {
    for (std::string order : {"C", "F"}) {
      for (std::string endian : {"le", "be"}) {
        expect_matches_bin(dir, std::string(dc.code) + "_" + order + "_" + endian, dc.type, {2, 3, 4});
      }
    }
  }
}

TEST(NpyNumpy, ReadsScalarsEmptyRank4AndNewerFormatVersions) {
  REQUIRE_NUMPY();
  auto dir = test::scratch_dir();
  std::string out;
  int rc = test::run_python(python_prelude(dir) + R"PY(
def save(stem, a, version=None):
    with open(f'{d}/{stem}.npy', 'wb') as f:
        np.lib.format.write_array(f, a, version=version)
    open(f'{d}/{stem}.bin', 'wb').write(a.astype(a.dtype.newbyteorder('<')).tobytes(order='C'))
save('scalar_f8', np.array(3.5))
save('scalar_be_i4', np.array(-7, dtype='>i4'))
save('scalar_bool', np.array(True))
save('empty_0x3', np.zeros((0, 3), dtype='<f4'))
save('empty_3x0x2_be', np.zeros((3, 0, 2), dtype='>i8'))
save('empty_1d', np.zeros((0,), dtype='|u1'))
r4 = np.arange(120, dtype='<f8').reshape(2, 3, 4, 5) * 0.5 - 7
save('rank4_F', np.asfortranarray(r4))
save('rank4_F_be_c8', np.asfortranarray((r4 + 2j * r4[::-1]).astype('>c8')))
save('rank4_F_bool', np.asfortranarray(r4 > 3))
save('v2_f4', np.arange(12, dtype='<f4').reshape(3, 4), version=(2, 0))
save('v3_i2_F', np.asfortranarray(np.arange(-6, 6, dtype='>i2').reshape(3, 4)), version=(3, 0))
save('rank1_i1', np.array([-128, -1, 0, 1, 127], dtype='|i1'))
for stem in ('rank4_F', 'rank4_F_be_c8', 'v3_i2_F'):
    assert b'True' in open(f'{d}/{stem}.npy', 'rb').read(128)
print('ok')
)PY", &out);
  ASSERT_EQ(rc, 0) << out;
  expect_matches_bin(dir, "scalar_f8", torch::kDouble, {});
  expect_matches_bin(dir, "scalar_be_i4", torch::kInt, {});
  expect_matches_bin(dir, "scalar_bool", torch::kBool, {});
  expect_matches_bin(dir, "empty_0x3", torch::kFloat, {0, 3});
  expect_matches_bin(dir, "empty_3x0x2_be", torch::kLong, {3, 0, 2});
  expect_matches_bin(dir, "empty_1d", torch::kByte, {0});
  expect_matches_bin(dir, "rank4_F", torch::kDouble, {2, 3, 4, 5});
  expect_matches_bin(dir, "rank4_F_be_c8", torch::kComplexFloat, {2, 3, 4, 5});
  expect_matches_bin(dir, "rank4_F_bool", torch::kBool, {2, 3, 4, 5});
  expect_matches_bin(dir, "v2_f4", torch::kFloat, {3, 4});
  expect_matches_bin(dir, "v3_i2_F", torch::kShort, {3, 4});
  expect_matches_bin(dir, "rank1_i1", torch::kChar, {5});

  // Spot-check values directly, independent of the .bin files.
  auto scalar = io::read_npy((dir / "scalar_f8.npy").string());
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_EQ(scalar.item<double>(), 3.5);
  EXPECT_EQ(io::read_npy((dir / "scalar_be_i4.npy").string()).item<int32_t>(), -7);
  auto fortran = io::read_npy((dir / "v3_i2_F.npy").string());
  EXPECT_TRUE(torch::equal(fortran, torch::arange(-6, 6, torch::kShort).reshape({3, 4})));
  auto r4 = io::read_npy((dir / "rank4_F.npy").string());
  EXPECT_TRUE(torch::equal(r4, torch::arange(120, torch::kDouble).reshape({2, 3, 4, 5}) * 0.5 - 7));
}

TEST(NpyNumpy, RejectsNumpyFilesWithUnsupportedDtypes) {
  REQUIRE_NUMPY();
  auto dir = test::scratch_dir();
  std::string out;
  int rc = test::run_python(python_prelude(dir) + R"PY(
np.save(f'{d}/unicode.npy', np.array(['ab', 'cde']))
np.save(f'{d}/object.npy', np.array([1, 'x', None], dtype=object), allow_pickle=True)
np.save(f'{d}/u2.npy', np.arange(3, dtype='<u2'))
np.save(f'{d}/u4.npy', np.arange(3, dtype='<u4'))
np.save(f'{d}/u8.npy', np.arange(3, dtype='>u8'))
np.save(f'{d}/datetime.npy', np.array(['2020-01-01'], dtype='datetime64[D]'))
np.save(f'{d}/structured.npy', np.zeros(2, dtype=[('a', '<f4'), ('b', '<i2')]))
np.save(f'{d}/bytes.npy', np.array([b'ab']))
print('ok')
)PY", &out);
  ASSERT_EQ(rc, 0) << out;
  for (std::string stem : {"unicode", "object", "u2", "u4", "u8", "datetime", "structured", "bytes"}) {
    SCOPED_TRACE(stem);
    std::string path = (dir / (stem + ".npy")).string();
    try {
      io::read_npy(path);
      ADD_FAILURE() << "no error";
    } catch (const InputError& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find("unsupported dtype"), std::string::npos) << msg;
    }
  }
}

// ---- we write, numpy reads -------------------------------------------------------------

TEST(NpyNumpy, NumpyLoadsWhatWeWrite) {
  REQUIRE_NUMPY();
  auto dir = test::scratch_dir();
  torch::manual_seed(11);
  std::ostringstream manifest;
  // Writes `t` as <stem>.npy plus the expected C-order bytes as <stem>.bin.
  auto emit = [&](const std::string& stem, const torch::Tensor& t, const torch::Tensor& expected,
                  const std::string& descr) {
    io::write_npy((dir / (stem + ".npy")).string(), t);
    atomic_write_file((dir / (stem + ".bin")).string(), tensor_bytes(expected.contiguous()));
    manifest << stem << ' ' << descr << " (";
    for (int64_t s : t.sizes()) manifest << s << ',';
    manifest << ")\n";
  };
  for (const auto& dc : all_dtypes()) {
    auto t = random_tensor(dc.type, {2, 3, 4});
    emit(std::string("plain_") + dc.code, t, t, numpy_descr(dc.code));
    auto transposed = t.transpose(0, 2);  // non-contiguous input
    emit(std::string("transposed_") + dc.code, transposed, transposed, numpy_descr(dc.code));
  }
  auto re = torch::randn({3, 2}, torch::kDouble), im = torch::randn({3, 2}, torch::kDouble);
  emit("conj_view", torch::complex(re, im).conj(), torch::complex(re, -im), "<c16");
  emit("scalar", torch::tensor(2.5, torch::kFloat), torch::tensor(2.5, torch::kFloat), "<f4");
  auto empty = torch::zeros({0, 5}, torch::kLong);
  emit("empty", empty, empty, "<i8");
  auto rank5 = random_tensor(torch::kInt, {1, 2, 1, 3, 2});
  emit("rank5", rank5, rank5, "<i4");
  atomic_write_file((dir / "manifest.txt").string(), manifest.str());
  // An explicit-value file, checked against literal values in the script.
  io::write_npy((dir / "literal.npy").string(),
                torch::tensor({1.5, -2.0, 3.0, 4.25}, torch::kDouble).reshape({2, 2}).t());

  std::string out;
  int rc = test::run_python(python_prelude(dir) + R"PY(
import ast
bad = 0
for line in open(f'{d}/manifest.txt'):
    stem, descr, shape = line.split(' ', 2)
    shape = ast.literal_eval(shape.strip())
    path = f'{d}/{stem}.npy'
    a = np.load(path, allow_pickle=False)
    raw = open(f'{d}/{stem}.bin', 'rb').read()
    blob = open(path, 'rb').read()
    hlen = int.from_bytes(blob[8:10], 'little')
    problems = []
    if blob[:8] != b'\x93NUMPY\x01\x00': problems.append('preamble %r' % blob[:8])
    if (10 + hlen) % 64 or blob[9 + hlen:10 + hlen] != b'\n': problems.append('header padding')
    if a.dtype.str != descr: problems.append('dtype %s' % a.dtype.str)
    if a.shape != shape: problems.append('shape %r' % (a.shape,))
    if not a.flags.c_contiguous: problems.append('not C order')
    if a.tobytes() != raw: problems.append('values differ')
    if problems:
        bad += 1
        print('BAD', stem, problems)
lit = np.load(f'{d}/literal.npy')
if not np.array_equal(lit, np.array([[1.5, 3.0], [-2.0, 4.25]])) or lit.dtype != np.float64:
    bad += 1
    print('BAD literal', lit)
print('bad', bad)
raise SystemExit(1 if bad else 0)
)PY", &out);
  EXPECT_EQ(rc, 0) << out;
}

// ---- C++ round trips -------------------------------------------------------------------

TEST(NpyRoundTrip, EveryDtypeThroughBytesAndFiles) {
  torch::manual_seed(3);
  auto dir = test::scratch_dir();
  for (const auto& dc : all_dtypes()) {
    auto t = random_tensor(dc.type, {3, 4, 5});
    expect_same(io::parse_npy(io::encode_npy(t), "mem"), t, std::string("bytes ") + dc.code);
    std::string path = (dir / (std::string(dc.code) + ".npy")).string();
    io::write_npy(path, t);
    expect_same(io::read_npy(path), t, std::string("file ") + dc.code);
    auto strided = t.slice(1, 0, 4, 2).transpose(0, 2);
    expect_same(io::parse_npy(io::encode_npy(strided), "mem"), strided,
                std::string("strided ") + dc.code);
  }
}

TEST(NpyRoundTrip, ScalarsEmptyAndHighRank) {
  auto scalar = torch::tensor(int64_t{-42});
  expect_same(io::parse_npy(io::encode_npy(scalar), "mem"), scalar, "0-d");
  auto empty = torch::zeros({4, 0, 3}, torch::kHalf);
  expect_same(io::parse_npy(io::encode_npy(empty), "mem"), empty, "zero-size");
  auto high = random_tensor(torch::kFloat, {1, 2, 1, 2, 1, 2, 1, 2});
  expect_same(io::parse_npy(io::encode_npy(high), "mem"), high, "rank 8");
  auto re = torch::randn({4}, torch::kFloat), im = torch::randn({4}, torch::kFloat);
  expect_same(io::parse_npy(io::encode_npy(torch::complex(re, im).conj()), "mem"),
              torch::complex(re, -im), "conjugate view");
}

TEST(NpyRoundTrip, HeaderLayoutMatchesNumpyConventions) {
  std::string bytes = io::encode_npy(torch::zeros({2, 3}, torch::kFloat));
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  size_t hlen = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + hlen) % 64, 0u);
  EXPECT_EQ(bytes[9 + hlen], '\n');
  EXPECT_NE(bytes.find("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
            std::string::npos);
  EXPECT_EQ(bytes.size(), 10 + hlen + 24);
  std::string one_d = io::encode_npy(torch::zeros({7}, torch::kByte));
  EXPECT_NE(one_d.find("'descr': '|u1'"), std::string::npos);
  EXPECT_NE(one_d.find("'shape': (7,)"), std::string::npos);
  EXPECT_NE(io::encode_npy(torch::tensor(true)).find("'shape': ()"), std::string::npos);
}

TEST(NpyRoundTrip, ResultOwnsItsMemory) {
  auto t = torch::arange(16, torch::kInt);
  torch::Tensor back;
  {
    std::string bytes = io::encode_npy(t);
    back = io::parse_npy(bytes, "mem");
    std::fill(bytes.begin(), bytes.end(), '\xff');  // must not show through
  }
  EXPECT_TRUE(torch::equal(back, t));
}

TEST(NpyRoundTrip, AcceptsHandWrittenHeaderVariations) {
  std::string data(8, '\0');
  data[0] = 1;  // int32 little-endian [1, 0]
  // Keys in another order, double quotes, extra spaces, no trailing comma, Python 2 longs.
  auto t = io::parse_npy(make_npy("{ \"shape\" : ( 2L , ) ,'fortran_order':False,'descr':'<i4'}",
                                  data), "mem");
  EXPECT_TRUE(torch::equal(t, torch::tensor({1, 0}, torch::kInt)));
  // Version 2.0 header built by hand; big-endian float64 1.5 and -2.25.
  std::string be("\x3f\xf8\0\0\0\0\0\0\xc0\x02\0\0\0\0\0\0", 16);
  auto d = io::parse_npy(make_npy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", be, 2),
                         "mem");
  EXPECT_TRUE(torch::equal(d, torch::tensor({1.5, -2.25}, torch::kDouble)));
  // Bool bytes other than 0/1 are normalised to true.
  auto b = io::parse_npy(make_npy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
                                  std::string("\x00\x02\x01", 3)), "mem");
  EXPECT_TRUE(torch::equal(b, torch::tensor({false, true, true})));
  EXPECT_EQ(b.to(torch::kInt).sum().item<int>(), 2);
}

TEST(NpyRoundTrip, UnsupportedDtypeOnWriteIsInputError) {
  auto dir = test::scratch_dir();
  std::string path = (dir / "bf16.npy").string();
  try {
    io::write_npy(path, torch::zeros({2}, torch::kBFloat16));
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("BFloat16"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_THROW(io::encode_npy(torch::zeros({2}, torch::kBFloat16)), InputError);
  EXPECT_THROW(io::encode_npy(torch::Tensor()), InputError);
}

// ---- malformed input -------------------------------------------------------------------

const char* kGoodDict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

TEST(NpyErrors, TruncatedFiles) {
  std::string good = make_npy(kGoodDict, std::string(24, '\0'));
  expect_rejected("", "truncated", "empty");
  expect_rejected(good.substr(0, 4), "truncated", "in_magic");
  expect_rejected(good.substr(0, 9), "truncated", "in_length");
  expect_rejected(good.substr(0, 40), "header length", "in_header");
  expect_rejected(good.substr(0, good.size() - 1), "truncated .npy data", "in_data");
  expect_rejected(good.substr(0, good.size() - 24), "truncated .npy data", "no_data");
}

TEST(NpyErrors, BadMagicAndVersion) {
  std::string good = make_npy(kGoodDict, std::string(24, '\0'));
  std::string bad = good;
  bad[1] = 'M';
  expect_rejected(bad, "bad magic", "bad_magic");
  expect_rejected("PK\x03\x04 this is a zip file, not npy", "bad magic", "zip");
  std::string v4 = good;
  v4[6] = 4;
  expect_rejected(v4, "version 4.0", "version4");
}

TEST(NpyErrors, HeaderLengthPastEnd) {
  std::string good = make_npy(kGoodDict, std::string(24, '\0'));
  std::string bad = good;
  bad[8] = '\xff';
  bad[9] = '\x7f';
  expect_rejected(bad, "header length", "v1_len");
  std::string v2 = make_npy(kGoodDict, std::string(24, '\0'), 2);
  v2[11] = '\x10';  // 2^28-byte header
  expect_rejected(v2, "header length", "v2_len");
}

TEST(NpyErrors, HeaderLyingAboutDataSize) {
  std::string data(24, '\0');  // 2x3 float32
  expect_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }", data),
                  "truncated .npy data", "says_more");
  expect_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", data),
                  "trailing bytes", "says_less");
  expect_rejected(make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", data),
                  "truncated .npy data", "wrong_itemsize");
  expect_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", data),
                  "trailing bytes", "scalar_with_extra");
  expect_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", data),
                  "trailing bytes", "empty_with_extra");
  expect_rejected(
      make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", data),
      "absurd", "overflow");
  expect_rejected(
      make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 99999999999, 99999999999), }",
               ""),
      "absurd", "overflow_beside_zero");
  expect_rejected(
      make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", data),
      "too large", "dim_past_int64");
  expect_rejected(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 6), }", data),
                  "negative", "negative_dim");
}

TEST(NpyErrors, UnsupportedDtypes) {
  std::string data(24, '\0');
  auto with_descr = [&](const std::string& descr) {
    return make_npy("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (1,), }", data);
  };
  expect_rejected(with_descr("<U5"), "unsupported dtype '<U5'", "unicode");
  expect_rejected(with_descr("|O"), "unsupported dtype '|O'", "object");
  expect_rejected(with_descr("<u4"), "unsigned 32-bit", "uint32");
  expect_rejected(with_descr("<u2"), "unsigned 16-bit", "uint16");
  expect_rejected(with_descr("<f16"), "unsupported dtype", "float128");
  expect_rejected(with_descr("<M8[ns]"), "datetime", "datetime");
  expect_rejected(with_descr("float32"), "unsupported dtype", "alias");
  expect_rejected(with_descr(""), "unsupported dtype", "empty");
  expect_rejected(make_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                           data), "structured", "structured");
}

TEST(NpyErrors, MalformedHeaderDicts) {
  std::string data(24, '\0');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'fortran_order': False, 'shape': (2, 3)}", "missing key 'descr'"},
      {"{'descr': '<f4', 'shape': (2, 3)}", "missing key 'fortran_order'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", "duplicate"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}", "expected '('"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}", "in shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, x)}", "expected an integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}", "unexpected key"},
      {"{'descr': '<f4 , 'fortran_order': False, 'shape': (2, 3)}", "malformed"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}", "expected ','"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} junk", "after the closing"},
      {"'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", "expected '{'"},
      {"{descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}", "quoted string"},
      {"\x01\x02\n{", "malformed"},
      {"", "malformed"},
  };
  int index = 0;
  for (const auto& [dict, needle] : cases) {
    expect_rejected(make_npy(dict, data), needle, "case" + std::to_string(index++));
  }
}

}  // namespace
}  // namespace tweedie
