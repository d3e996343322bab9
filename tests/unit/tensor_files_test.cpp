// Tensor files: safetensors read/write, torch.save checkpoints (zip and legacy), format sniffing.
// Python's torch.load is the oracle for checkpoints: it dumps every tensor's raw bytes, which
// must equal ours exactly (this catches offset, stride and dtype mistakes).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include <unistd.h>

#include "support/test_support.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/io/pickle.h"
#include "tweedie/io/safetensors.h"
#include "tweedie/io/tensors.h"
#include "tweedie/io/torch_pt.h"
#include "tweedie/io/zip_reader.h"

namespace tweedie {
namespace {

namespace fs = std::filesystem;
using io::TensorMap;
using namespace std::string_literals;

// ---- helpers -------------------------------------------------------------------------------------

// Python helpers: flatten nested dicts like read_torch_pt does, and dump each tensor's dtype,
// shape and raw bytes (bfloat16 via its int16 bit pattern) into a directory.
const char* kPrelude = R"PY(
import os, sys, collections, struct, json
import numpy as np
import torch
NAMES = {torch.float32: 'Float', torch.float64: 'Double', torch.float16: 'Half',
         torch.bfloat16: 'BFloat16', torch.int64: 'Long', torch.int32: 'Int',
         torch.int16: 'Short', torch.int8: 'Char', torch.uint8: 'Byte', torch.bool: 'Bool'}
def flatten(obj, prefix=''):
    out = {}
    for k, v in obj.items():
        name = f'{prefix}.{k}' if prefix else str(k)
        if isinstance(v, torch.Tensor): out[name] = v
        elif isinstance(v, dict): out.update(flatten(v, name))
    return out
def raw(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16: t = t.view(torch.int16)
    return t.numpy().tobytes()
def dump(obj, d):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'manifest.txt'), 'w') as m:
        for i, (k, v) in enumerate(flatten(obj).items()):
            with open(os.path.join(d, f'{i}.bin'), 'wb') as f: f.write(raw(v))
            m.write(f"{k}\t{NAMES[v.dtype]}\t{','.join(map(str, v.shape))}\t{i}.bin\n")
)PY";

bool has_oracle() {
  static const bool ok = test::python_has("torch, numpy");
  return ok;
}

#define REQUIRE_ORACLE() \
  if (!has_oracle()) TWEEDIE_SKIP_MISSING() << "python3 with torch and numpy is unavailable"

void run_oracle(const std::string& code) {
  std::string out;
  int rc = test::run_python(std::string(kPrelude) + code, &out);
  ASSERT_EQ(rc, 0) << out;
}

std::string py(const fs::path& p) { return "r'" + p.string() + "'"; }

using test::gd_fixtures_dir;

#define REQUIRE_GD_FIXTURE() \
  if (!test::has_gd_fixture("gd_A.pt")) TWEEDIE_SKIP_MISSING() << "guided-diffusion fixtures are unavailable"

std::string shape_text(const torch::Tensor& t) {
  std::string s;
  for (int64_t d : t.sizes()) s += (s.empty() ? "" : ",") + std::to_string(d);
  return s;
}

std::string raw_bytes(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(s);
  while (std::getline(in, field, sep)) out.push_back(field);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

// Every tensor of a python dump must be in `got` with the same dtype, shape and bytes.
void expect_matches_dump(const TensorMap& got, const fs::path& dir) {
  std::ifstream manifest(dir / "manifest.txt");
  ASSERT_TRUE(manifest) << dir;
  size_t count = 0;
  for (std::string line; std::getline(manifest, line);) {
    ++count;
    auto f = split(line, '\t');
    ASSERT_EQ(f.size(), 4u) << line;
    auto it = got.find(f[0]);
    if (it == got.end()) {
      ADD_FAILURE() << "missing tensor " << f[0];
      continue;
    }
    const torch::Tensor& t = it->second;
    EXPECT_EQ(c10::toString(t.scalar_type()), f[1]) << f[0];
    EXPECT_EQ(shape_text(t), f[2]) << f[0];
    EXPECT_TRUE(raw_bytes(t) == read_file((dir / f[3]).string())) << "values differ: " << f[0];
    EXPECT_TRUE(t.is_contiguous()) << f[0];
  }
  EXPECT_EQ(got.size(), count);
}

// The InputError message thrown by `f`; a test failure if it throws anything else or nothing.
std::string input_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected InputError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected InputError, nothing thrown";
  return "";
}

void expect_one_line_naming(const std::string& message, const std::string& what) {
  EXPECT_NE(message.find(what), std::string::npos) << "'" << what << "' not in: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// ---- safetensors ---------------------------------------------------------------------------------

TensorMap sample_tensors() {
  torch::manual_seed(1);
  TensorMap m;
  m["f64"] = torch::randn({3, 2}, torch::kDouble);
  m["f32"] = torch::randn({2, 3, 4});
  m["f16"] = torch::randn({5}).to(torch::kHalf);
  m["bf16"] = torch::randn({2, 2}).to(torch::kBFloat16);
  m["i64"] = torch::tensor({-(int64_t{1} << 40), int64_t{7}, int64_t{1} << 62});
  m["i32"] = torch::randint(-1000, 1000, {4}, torch::kInt);
  m["i16"] = torch::randint(-1000, 1000, {4}, torch::kShort);
  m["i8"] = torch::randint(-100, 100, {3}, torch::kChar);
  m["u8"] = torch::randint(0, 255, {3}, torch::kByte);
  m["bool"] = torch::tensor({true, false, true});
  m["scalar"] = torch::tensor(2.5);
  m["empty"] = torch::zeros({0, 3});
  m["transposed"] = torch::arange(6, torch::kFloat).reshape({2, 3}).t();  // non-contiguous input
  return m;
}

void expect_same(const TensorMap& a, const TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    ASSERT_NE(it, b.end()) << name;
    EXPECT_EQ(t.scalar_type(), it->second.scalar_type()) << name;
    EXPECT_EQ(t.sizes(), it->second.sizes()) << name;
    EXPECT_TRUE(raw_bytes(t) == raw_bytes(it->second)) << name;
  }
}

// A safetensors file: header length (or `length` if given), header, data.
std::string st_bytes(const std::string& header, const std::string& data, int64_t length = -1) {
  uint64_t n = length >= 0 ? static_cast<uint64_t>(length) : header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}

TEST(Safetensors, RoundTripAllDtypes) {
  auto path = (test::scratch_dir() / "m.safetensors").string();
  TensorMap m = sample_tensors();
  std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "ünïcode \"quoted\""}};
  io::write_safetensors(path, m, meta);
  io::SafeTensors back = io::read_safetensors(path);
  expect_same(m, back.tensors);
  EXPECT_EQ(back.metadata, meta);
  for (const auto& [name, t] : back.tensors) EXPECT_TRUE(t.is_contiguous()) << name;
}

TEST(Safetensors, LayoutIsPaddedSortedAndContiguous) {
  std::string bytes = io::encode_safetensors(sample_tensors());
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  std::string header = bytes.substr(8, n);
  ASSERT_EQ(header.front(), '{');
  auto j = nlohmann::json::parse(header);
  EXPECT_FALSE(j.contains("__metadata__"));  // only written when given
  uint64_t expect_begin = 0;
  for (const auto& [name, t] : sample_tensors()) {  // std::map: sorted by name
    auto offsets = j.at(name).at("data_offsets");
    EXPECT_EQ(offsets[0].get<uint64_t>(), expect_begin) << name;
    expect_begin = offsets[1].get<uint64_t>();
  }
  EXPECT_EQ(8 + n + expect_begin, bytes.size());
}

TEST(Safetensors, ReadsHandCraftedFile) {
  // Per the spec, written by hand: unpadded header, data order differing from name order,
  // a zero-size tensor and metadata.
  std::string header =
      R"({"b":{"dtype":"I16","shape":[2],"data_offsets":[0,4]},)"
      R"("a":{"dtype":"F32","shape":[],"data_offsets":[4,8]},)"
      R"("e":{"dtype":"BF16","shape":[0,5],"data_offsets":[8,8]},)"
      R"("__metadata__":{"k":"v"}})";
  int16_t b[2] = {-3, 300};
  float a = 1.5f;
  std::string data(reinterpret_cast<const char*>(b), 4);
  data.append(reinterpret_cast<const char*>(&a), 4);
  io::SafeTensors st = io::parse_safetensors(st_bytes(header, data), "mem");
  ASSERT_EQ(st.tensors.size(), 3u);
  EXPECT_TRUE(torch::equal(st.tensors["b"], torch::tensor({-3, 300}, torch::kShort)));
  EXPECT_EQ(st.tensors["a"].dim(), 0);
  EXPECT_EQ(st.tensors["a"].item<float>(), 1.5f);
  EXPECT_EQ(st.tensors["e"].sizes(), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(st.tensors["e"].scalar_type(), torch::kBFloat16);
  EXPECT_EQ(st.metadata.at("k"), "v");
}

TEST(Safetensors, PythonReadsOurFileAndWeReadPythons) {
  REQUIRE_ORACLE();
  auto dir = test::scratch_dir();
  TensorMap m = sample_tensors();
  io::write_safetensors((dir / "ours.safetensors").string(), m, {{"who", "tweedie"}});
  // Python parses our file by the spec (or with the safetensors package when installed) and
  // writes its own file by the spec: unsorted names, unpadded header, data in reverse order.
  ASSERT_NO_FATAL_FAILURE(run_oracle(std::string(R"PY(
d = )PY") + py(dir) + R"PY(
DT = {'F64': torch.float64, 'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16,
      'I64': torch.int64, 'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8,
      'U8': torch.uint8, 'BOOL': torch.bool}
def read_spec(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    assert (8 + n) % 8 == 0
    h = json.loads(b[8:8 + n])
    assert h.pop('__metadata__') == {'who': 'tweedie'}
    data = b[8 + n:]
    out = {}
    for k, e in h.items():
        s, t = e['data_offsets']
        raw_ = bytearray(data[s:t])
        x = torch.frombuffer(raw_, dtype=DT[e['dtype']]) if raw_ else torch.empty(0, dtype=DT[e['dtype']])
        out[k] = x.reshape(e['shape'])
    return out
got = read_spec(os.path.join(d, 'ours.safetensors'))
try:
    import safetensors.torch
    lib = safetensors.torch.load_file(os.path.join(d, 'ours.safetensors'))
    assert all(torch.equal(lib[k], got[k]) for k in got)
except ImportError:
    pass
dump(got, os.path.join(d, 'dump'))
torch.manual_seed(0)
theirs = {'z': torch.randn(3, 4), 'a': torch.arange(5, dtype=torch.int64), 'm': torch.randn(2).half(),
          'bf': torch.randn(3).bfloat16(), 'flag': torch.tensor([True, False])}
inv = {v: k for k, v in DT.items()}
header, blobs, off = {}, [], 0
for k in reversed(list(theirs)):
    r = raw(theirs[k])
    header[k] = {'dtype': inv[theirs[k].dtype], 'shape': list(theirs[k].shape), 'data_offsets': [off, off + len(r)]}
    blobs.append(r); off += len(r)
hb = json.dumps(header).encode()
with open(os.path.join(d, 'theirs.safetensors'), 'wb') as f:
    f.write(struct.pack('<Q', len(hb)) + hb + b''.join(blobs))
dump(theirs, os.path.join(d, 'theirs'))
)PY"));
  TensorMap contiguous;
  for (const auto& [k, v] : m) contiguous[k] = v.contiguous();
  expect_matches_dump(contiguous, dir / "dump");
  expect_matches_dump(io::read_safetensors((dir / "theirs.safetensors").string()).tensors,
                      dir / "theirs");
}

struct BadSafetensors {
  const char* label;
  std::string bytes;
  const char* mention;  // a word the message must contain (e.g. the tensor's name)
};

std::vector<BadSafetensors> bad_safetensors_cases() {
  const std::string f32x2 = R"("dtype":"F32","shape":[2])";
  const std::string data8(8, '\0');
  return {
      {"empty file", "", "too short"},
      {"seven bytes", std::string(7, '\0'), "too short"},
      {"header past end", st_bytes("{}", "", 1000), "past the end"},
      {"header over 100 MB", st_bytes("{}", "", 200'000'000), "100 MB"},
      {"bad json", st_bytes(R"({"a":)", ""), "JSON"},
      {"json array", st_bytes("[1,2]", ""), "object"},
      {"entry not object", st_bytes(R"({"w":1})", ""), "'w'"},
      {"missing field", st_bytes(R"({"w":{"dtype":"F32","shape":[2]}})", data8), "'w'"},
      {"bad dtype", st_bytes(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "xx"), "F8_E4M3"},
      {"complex dtype", st_bytes(R"({"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", data8), "C64"},
      {"dtype not string", st_bytes(R"({"w":{"dtype":5,"shape":[1],"data_offsets":[0,4]}})", data8), "'w'"},
      {"negative dim", st_bytes(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", data8), "'w'"},
      {"fractional dim", st_bytes(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", data8), "'w'"},
      {"shape not array", st_bytes(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", data8), "'w'"},
      {"offsets past data", st_bytes("{\"w\":{" + f32x2 + R"(,"data_offsets":[0,16]}})", data8), "'w'"},
      {"begin after end", st_bytes("{\"w\":{" + f32x2 + R"(,"data_offsets":[8,0]}})", data8), "'w'"},
      {"one offset", st_bytes("{\"w\":{" + f32x2 + R"(,"data_offsets":[0]}})", data8), "'w'"},
      {"negative offset", st_bytes("{\"w\":{" + f32x2 + R"(,"data_offsets":[-8,0]}})", data8), "'w'"},
      {"size mismatch", st_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8), "'w'"},
      {"overlap", st_bytes("{\"a\":{" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 +
                               R"(,"data_offsets":[4,12]}})", std::string(12, '\0')), "overlap"},
      {"duplicate name", st_bytes("{\"a\":{" + f32x2 + R"(,"data_offsets":[0,8]},"a":{)" + f32x2 +
                                      R"(,"data_offsets":[0,8]}})", data8), "twice"},
      {"metadata value not string", st_bytes(R"({"__metadata__":{"k":1}})", ""), "__metadata__"},
      {"metadata not object", st_bytes(R"({"__metadata__":[1]})", ""), "__metadata__"},
      {"bool byte", st_bytes(R"({"flag":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", "\x01\x02"), "'flag'"},
      {"huge shape", st_bytes(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data8), "'w'"},
  };
}

TEST(Safetensors, CorruptFilesAreOneLineInputErrors) {
  auto dir = test::scratch_dir();
  for (const auto& c : bad_safetensors_cases()) {
    SCOPED_TRACE(c.label);
    auto path = (dir / "bad.safetensors").string();
    write_bytes(path, c.bytes);
    std::string msg = input_error([&] { io::read_safetensors(path); });
    expect_one_line_naming(msg, path);
    expect_one_line_naming(msg, c.mention);
  }
}

TEST(Safetensors, TruncatedOwnFileIsInputError) {
  auto dir = test::scratch_dir();
  std::string good = io::encode_safetensors(sample_tensors());
  for (size_t cut : {size_t{0}, size_t{5}, size_t{9}, good.size() / 2, good.size() - 1}) {
    SCOPED_TRACE(cut);
    auto path = (dir / "cut.safetensors").string();
    write_bytes(path, good.substr(0, cut));
    expect_one_line_naming(input_error([&] { io::read_safetensors(path); }), path);
  }
}

TEST(Safetensors, UnwritableTensorsAreInputErrors) {
  auto path = (test::scratch_dir() / "x.safetensors").string();
  TensorMap complex{{"c", torch::zeros({2}, torch::kComplexFloat)}};
  expect_one_line_naming(input_error([&] { io::write_safetensors(path, complex); }), "'c'");
  TensorMap reserved{{"__metadata__", torch::zeros({2})}};
  expect_one_line_naming(input_error([&] { io::write_safetensors(path, reserved); }), path);
  EXPECT_FALSE(fs::exists(path));
}

// ---- torch.save checkpoints ----------------------------------------------------------------------

TEST(TorchPt, GuidedDiffusionKeysShapesAndDtypes) {
  REQUIRE_GD_FIXTURE();
  TensorMap m = io::read_torch_pt((gd_fixtures_dir() / "gd_A.pt").string());
  std::ifstream keys(gd_fixtures_dir() / "gd_A_keys.txt");
  ASSERT_TRUE(keys);
  size_t count = 0;
  for (std::string line; std::getline(keys, line);) {
    if (line.empty()) continue;
    ++count;
    auto f = split(line, '\t');  // name, [d0, d1, ...], dtype
    ASSERT_EQ(f.size(), 3u) << line;
    auto it = m.find(f[0]);
    ASSERT_NE(it, m.end()) << f[0];
    std::string shape = f[1];
    shape.erase(std::remove_if(shape.begin(), shape.end(), [](char c) { return c == ' ' || c == '[' || c == ']'; }),
                shape.end());
    EXPECT_EQ(shape_text(it->second), shape) << f[0];
    EXPECT_EQ(f[2], "float32");
    EXPECT_EQ(it->second.scalar_type(), torch::kFloat) << f[0];
  }
  EXPECT_EQ(count, 198u);
  EXPECT_EQ(m.size(), count);
}

TEST(TorchPt, GuidedDiffusionValuesMatchTorchLoad) {
  REQUIRE_GD_FIXTURE();
  REQUIRE_ORACLE();
  auto dir = test::scratch_dir();
  ASSERT_NO_FATAL_FAILURE(run_oracle("dump(torch.load(" + py(gd_fixtures_dir() / "gd_A.pt") + "), " +
                                     py(dir / "dump") + ")\n"));
  expect_matches_dump(io::read_torch_pt((gd_fixtures_dir() / "gd_A.pt").string()), dir / "dump");
}

// A checkpoint exercising what state dicts contain: OrderedDict with _metadata, views sharing
// one storage (offsets, transposes, steps, stride 0), every dtype, 0-dim and empty tensors,
// a Parameter, and nesting with non-tensor leaves.
const char* kCheckpointScript = R"PY(
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Linear(4, 5))
sd = model.state_dict()
assert hasattr(sd, '_metadata')
base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
sd['view.base'] = base
sd['view.t'] = base.t()
sd['view.slice'] = base[2:5, 3:9:2]
sd['view.col'] = base[:, 7]
sd['view.expand'] = base[1, :3].expand(4, 3)
sd['view.scalar'] = base[5, 9]
sd['empty'] = torch.zeros(0, 3)
sd['f16'] = torch.randn(4, 3).half().t()
sd['f64'] = torch.randn(5, dtype=torch.float64)[1:]
sd['bf16'] = torch.randn(2, 3).bfloat16()
sd['i64'] = torch.tensor([-2**40, 3, 2**62])
sd['i32'] = torch.randint(-1000, 1000, (4,), dtype=torch.int32)
sd['i16'] = torch.randint(-1000, 1000, (4,), dtype=torch.int16)
sd['i8'] = torch.randint(-100, 100, (3,), dtype=torch.int8)
sd['u8'] = torch.randint(0, 255, (3,), dtype=torch.uint8)
sd['bool'] = torch.tensor([[True, False], [False, True]]).t()
sd['param'] = torch.nn.Parameter(torch.randn(2))
ckpt = {'state_dict': sd, 'epoch': 3, 'name': 'run', 'lr': 1.5e-4, 'flags': [True, None],
        'ema': {'w': torch.ones(2), 'step': 10}, 'history': [torch.zeros(1)],
        'opt': {'state': {0: {'exp_avg': torch.full((3,), 2.0)}}, 'param_groups': [{'lr': 0.1}]}}
torch.save(ckpt, os.path.join(d, 'zip.pt'))
torch.save(ckpt, os.path.join(d, 'legacy.pt'), _use_new_zipfile_serialization=False)
dump(torch.load(os.path.join(d, 'zip.pt')), os.path.join(d, 'dump_zip'))
dump(torch.load(os.path.join(d, 'legacy.pt')), os.path.join(d, 'dump_legacy'))
)PY";

// Generating the checkpoints costs a python start-up with torch, so tests share one copy per
// script version: built in a private directory, then renamed into place.
fs::path checkpoints_dir() {
  fs::path shared = fs::temp_directory_path() / "tweedie-tests" /
                    ("checkpoints-" + std::to_string(std::hash<std::string>{}(kCheckpointScript)));
  if (fs::exists(shared / "dump_legacy" / "manifest.txt")) return shared;
  fs::path tmp = shared.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  run_oracle("d = " + py(tmp) + "\n" + kCheckpointScript);
  if (::testing::Test::HasFatalFailure()) return {};
  std::error_code ec;
  fs::rename(tmp, shared, ec);  // fails harmlessly if another test got there first
  return fs::exists(shared / "dump_legacy" / "manifest.txt") ? shared : tmp;
}

// Copies the shared checkpoints into the test's own scratch directory.
void make_checkpoints(const fs::path& dir) {
  fs::path src = checkpoints_dir();
  ASSERT_FALSE(src.empty());
  for (const auto& e : fs::directory_iterator(src))
    fs::copy(e.path(), dir / e.path().filename(), fs::copy_options::recursive);
}

TEST(TorchPt, GeneratedCheckpointMatchesTorchLoad) {
  REQUIRE_ORACLE();
  auto dir = test::scratch_dir();
  ASSERT_NO_FATAL_FAILURE(make_checkpoints(dir));
  for (const char* kind : {"zip", "legacy"}) {
    SCOPED_TRACE(kind);
    TensorMap m = io::read_torch_pt((dir / (std::string(kind) + ".pt")).string());
    expect_matches_dump(m, dir / ("dump_" + std::string(kind)));
    // Names are flattened with '.', non-tensor leaves and lists are skipped.
    EXPECT_EQ(m.count("state_dict.0.weight"), 1u);
    EXPECT_EQ(m.count("ema.w"), 1u);
    EXPECT_EQ(m.count("opt.state.0.exp_avg"), 1u);
    EXPECT_EQ(m.count("epoch") + m.count("ema.step") + m.count("history"), 0u);
    EXPECT_EQ(m.at("state_dict.1.num_batches_tracked").dim(), 0);
    EXPECT_EQ(m.at("state_dict.1.num_batches_tracked").scalar_type(), torch::kLong);
    // Views of one storage come back as separate tensors that own their memory.
    EXPECT_NE(m.at("state_dict.view.t").data_ptr(), m.at("state_dict.view.base").data_ptr());
    EXPECT_TRUE(torch::equal(m.at("state_dict.view.t"), m.at("state_dict.view.base").t()));
    EXPECT_EQ(m.at("state_dict.view.scalar").item<float>(), 59.0f);
  }
}

TEST(TorchPt, RepackedZip64AndCompressedArchives) {
  REQUIRE_ORACLE();
  auto dir = test::scratch_dir();
  ASSERT_NO_FATAL_FAILURE(make_checkpoints(dir));
  // Python's zipfile re-writes the archive: unaligned records; with zip64 extra fields and a
  // zip64 end record (limits lowered so that every entry needs them); and deflated.
  ASSERT_NO_FATAL_FAILURE(run_oracle("d = " + py(dir) + R"PY(
import zipfile
src = zipfile.ZipFile(os.path.join(d, 'zip.pt'))
def repack(name, method):
    with zipfile.ZipFile(os.path.join(d, name), 'w', method) as z:
        for info in src.infolist(): z.writestr(info.filename, src.read(info.filename))
repack('plain.pt', zipfile.ZIP_STORED)
repack('deflated.pt', zipfile.ZIP_DEFLATED)
zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 8, 1
repack('zip64.pt', zipfile.ZIP_STORED)
b = bytearray(open(os.path.join(d, 'zip64.pt'), 'rb').read())
e = len(b) - 22
assert b[e:e + 4] == b'PK\x05\x06'
b[e + 8:e + 12] = b'\xff' * 4          # entry counts: see the zip64 end record
b[e + 12:e + 20] = b'\xff' * 8         # central directory size and offset: likewise
open(os.path.join(d, 'zip64.pt'), 'wb').write(bytes(b))
)PY"));
  expect_matches_dump(io::read_torch_pt((dir / "plain.pt").string()), dir / "dump_zip");
  expect_matches_dump(io::read_torch_pt((dir / "zip64.pt").string()), dir / "dump_zip");
  auto deflated = (dir / "deflated.pt").string();
  expect_one_line_naming(input_error([&] { io::read_torch_pt(deflated); }), "compressed");
}

TEST(TorchPt, TruncatedCheckpointsAreInputErrors) {
  REQUIRE_GD_FIXTURE();
  auto dir = test::scratch_dir();
  std::string good = read_file((gd_fixtures_dir() / "gd_A.pt").string());
  auto path = (dir / "cut.pt").string();
  for (size_t cut : {size_t{0}, size_t{3}, size_t{4}, size_t{100}, size_t{37000}, size_t{40000},
                     good.size() / 2, good.size() - 2000, good.size() - 23, good.size() - 1}) {
    SCOPED_TRACE(cut);
    write_bytes(path, good.substr(0, cut));
    expect_one_line_naming(input_error([&] { io::read_torch_pt(path); }), path);
    expect_one_line_naming(input_error([&] { io::load_tensors(path); }), path);
  }
}

TEST(TorchPt, TruncatedLegacyCheckpointsAreInputErrors) {
  REQUIRE_ORACLE();
  auto dir = test::scratch_dir();
  ASSERT_NO_FATAL_FAILURE(make_checkpoints(dir));
  std::string good = read_file((dir / "legacy.pt").string());
  auto path = (dir / "cut.pt").string();
  for (size_t cut = 15; cut < good.size(); cut += std::max<size_t>(1, good.size() / 97)) {
    SCOPED_TRACE(cut);
    write_bytes(path, good.substr(0, cut));
    expect_one_line_naming(input_error([&] { io::read_torch_pt(path); }), path);
  }
}

TEST(TorchPt, FlippedBytesNeverCrash) {
  REQUIRE_GD_FIXTURE();
  auto dir = test::scratch_dir();
  const std::string good = read_file((gd_fixtures_dir() / "gd_A.pt").string());
  auto path = (dir / "flip.pt").string();
  // Corruption in data.pkl or a storage record is caught by the CRC; elsewhere (dates, unused
  // header fields) it may be harmless. Either way: a clean load or a one-line InputError.
  std::mt19937_64 rng(7);
  int errors = 0;
  std::vector<size_t> positions{100, 1000, 20000, 37000, 60000};  // inside data.pkl and storages
  for (int i = 0; i < 40; ++i) positions.push_back(rng() % good.size());
  for (size_t i = 0; i < 20; ++i) positions.push_back(good.size() - 1 - i * 37);  // central dir
  for (size_t pos : positions) {
    SCOPED_TRACE(pos);
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x5a);
    write_bytes(path, bad);
    try {
      io::read_torch_pt(path);
    } catch (const InputError& e) {
      ++errors;
      expect_one_line_naming(e.what(), path);
    }
  }
  EXPECT_GE(errors, 5);
  std::string crc = input_error([&] {
    std::string bad = good;
    bad[200] = static_cast<char>(bad[200] ^ 1);  // inside gd_A/data.pkl
    write_bytes(path, bad);
    io::read_torch_pt(path);
  });
  expect_one_line_naming(crc, "CRC");
}

TEST(TorchPt, MutatedPickleWithValidCrcNeverCrashes) {
  REQUIRE_ORACLE();
  auto dir = test::scratch_dir();
  ASSERT_NO_FATAL_FAILURE(make_checkpoints(dir));
  // Python rewrites the archive with random byte changes in data.pkl and correct CRCs, so the
  // unpickler and the tensor checks see the damage.
  ASSERT_NO_FATAL_FAILURE(run_oracle("d = " + py(dir) + R"PY(
import zipfile, random
rng = random.Random(3)
src = zipfile.ZipFile(os.path.join(d, 'zip.pt'))
pkl = [i.filename for i in src.infolist() if i.filename.endswith('/data.pkl')][0]
for n in range(60):
    data = bytearray(src.read(pkl))
    for _ in range(1 + n % 3):
        data[rng.randrange(len(data))] = rng.randrange(256)
    with zipfile.ZipFile(os.path.join(d, f'mut{n}.pt'), 'w') as z:
        for info in src.infolist():
            z.writestr(info.filename, bytes(data) if info.filename == pkl else src.read(info.filename))
)PY"));
  int errors = 0;
  for (int n = 0; n < 60; ++n) {
    auto path = (dir / ("mut" + std::to_string(n) + ".pt")).string();
    SCOPED_TRACE(path);
    try {
      io::read_torch_pt(path);
    } catch (const InputError& e) {
      ++errors;
      expect_one_line_naming(e.what(), path);
    }
  }
  EXPECT_GE(errors, 20);
}

TEST(TorchPt, StorageSizeAndTensorBoundsAreChecked) {
  REQUIRE_ORACLE();
  auto dir = test::scratch_dir();
  // Hand-built archives: persistent ids and _rebuild_tensor_v2 calls pickled by python's own
  // pickler, with storages that disagree with their tensors.
  ASSERT_NO_FATAL_FAILURE(run_oracle("d = " + py(dir) + R"PY(
import pickle, zipfile, io
class Storage:
    def __init__(s, key, numel): s.key, s.numel = key, numel
class Tensor:
    def __init__(s, storage, off, size, stride): s.a = (storage, off, size, stride)
    def __reduce__(s):
        return (torch._utils._rebuild_tensor_v2, s.a + (False, collections.OrderedDict()))
class P(pickle.Pickler):
    def persistent_id(s, obj):
        if isinstance(obj, Storage): return ('storage', torch.FloatStorage, obj.key, 'cpu', obj.numel)
def archive(name, obj, records):
    f = io.BytesIO(); P(f, protocol=2).dump(obj)
    with zipfile.ZipFile(os.path.join(d, name), 'w') as z:
        z.writestr('archive/data.pkl', f.getvalue())
        for k, v in records.items(): z.writestr('archive/data/' + k, v)
        z.writestr('archive/version', '3\n')
four = np.arange(4, dtype=np.float32).tobytes()
archive('ok.pt', {'x': Tensor(Storage('0', 4), 1, (3,), (1,))}, {'0': four})
archive('offset.pt', {'x': Tensor(Storage('0', 4), 2, (3,), (1,))}, {'0': four})
archive('stride.pt', {'x': Tensor(Storage('0', 4), 0, (2, 2), (1, 3))}, {'0': four})
archive('short.pt', {'x': Tensor(Storage('0', 4), 0, (4,), (1,))}, {'0': four[:12]})
archive('missing.pt', {'x': Tensor(Storage('7', 4), 0, (4,), (1,))}, {'0': four})
archive('tensor_root.pt', Tensor(Storage('0', 4), 0, (4,), (1,)), {'0': four})
)PY"));
  TensorMap ok = io::read_torch_pt((dir / "ok.pt").string());
  EXPECT_TRUE(torch::equal(ok.at("x"), torch::tensor({1.0f, 2.0f, 3.0f})));
  for (const char* name : {"offset", "stride", "short", "missing", "tensor_root"}) {
    SCOPED_TRACE(name);
    auto path = (dir / (std::string(name) + ".pt")).string();
    expect_one_line_naming(input_error([&] { io::read_torch_pt(path); }), path);
  }
}

TEST(TorchPt, NotACheckpointIsInputError) {
  auto dir = test::scratch_dir();
  auto path = (dir / "text.pt").string();
  write_bytes(path, "hello, world");
  expect_one_line_naming(input_error([&] { io::read_torch_pt(path); }), path);
  expect_one_line_naming(input_error([&] { io::read_torch_pt((dir / "absent.pt").string()); }),
                         "absent.pt");
}

// ---- the unpickler on its own --------------------------------------------------------------------

std::string unpickle_error(const std::string& bytes) {
  return input_error([&] {
    size_t pos = 0;
    io::pickle::load(bytes, &pos, "test.pkl");
  });
}

TEST(TorchPtPickle, RejectsWhatStateDictsNeverContain) {
  // GLOBAL os.system
  expect_one_line_naming(unpickle_error("\x80\x02" "cos\nsystem\n" ")R."), "'os.system'");
  // NEWOBJ and INST are not part of the subset.
  expect_one_line_naming(unpickle_error("\x80\x02N)\x81."), "NEWOBJ");
  expect_one_line_naming(unpickle_error("(ios\nsystem\n."), "INST");
  // A list appended to itself.
  expect_one_line_naming(unpickle_error("\x80\x02]q\x00h\x00" "a."s), "recursive");
  // Unbalanced stack, missing memo, truncation.
  expect_one_line_naming(unpickle_error("\x80\x02s."), "underflow");
  expect_one_line_naming(unpickle_error("\x80\x02h\x05."), "memo");
  expect_one_line_naming(unpickle_error("\x80\x02X\xff\x00\x00\x00ab"s), "truncated");
  expect_one_line_naming(unpickle_error(""), "truncated");
  // Nesting bounded: 300 nested lists.
  std::string deep = "\x80\x02";
  for (int i = 0; i < 300; ++i) deep += "]";
  for (int i = 0; i < 299; ++i) deep += "a";
  deep += ".";
  expect_one_line_naming(unpickle_error(deep), "nested");
}

TEST(TorchPtPickle, ReadsScalarsAndContainers) {
  // {'a': (1, -2, 70000, 2**40, 1.5, True, None, 'é'), 'b': [ ]} written by hand.
  std::string p = "\x80\x02}q\x00(X\x01\x00\x00\x00" "a"
                  "(K\x01J\xfe\xff\xff\xffJ\x70\x11\x01\x00\x8a\x06\x00\x00\x00\x00\x00\x01"
                  "G\x3f\xf8\x00\x00\x00\x00\x00\x00\x88N\x8c\x02\xc3\xa9t"
                  "X\x01\x00\x00\x00" "b]u."s;
  size_t pos = 0;
  auto r = io::pickle::load(p, &pos, "mem");
  EXPECT_EQ(pos, p.size());
  ASSERT_EQ(r.root->kind, io::pickle::Kind::kDict);
  ASSERT_EQ(r.root->entries.size(), 2u);
  const auto& t = r.root->entries[0].second->items;
  ASSERT_EQ(t.size(), 8u);
  EXPECT_EQ(t[0]->integer, 1);
  EXPECT_EQ(t[1]->integer, -2);
  EXPECT_EQ(t[2]->integer, 70000);
  EXPECT_EQ(t[3]->integer, int64_t{1} << 40);
  EXPECT_EQ(t[4]->real, 1.5);
  EXPECT_TRUE(t[5]->boolean);
  EXPECT_EQ(t[6]->kind, io::pickle::Kind::kNone);
  EXPECT_EQ(t[7]->text, "\xc3\xa9");
  EXPECT_EQ(r.root->entries[1].second->kind, io::pickle::Kind::kList);
}

TEST(TorchPtPickle, RandomMutationsOfARealStateDictNeverCrash) {
  REQUIRE_GD_FIXTURE();
  std::string file = read_file((gd_fixtures_dir() / "gd_A.pt").string());
  io::ZipReader zip(file, "gd_A.pt");
  const std::string pkl(zip.read("gd_A/data.pkl"));
  {
    size_t pos = 0;
    auto r = io::pickle::load(pkl, &pos, "gd_A.pt");
    EXPECT_EQ(pos, pkl.size());
    EXPECT_EQ(r.storages.size(), 198u);
  }
  std::mt19937_64 rng(11);
  int errors = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string bad = pkl;
    int flips = 1 + i % 4;
    for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
    if (i % 10 == 0) bad.resize(rng() % bad.size());
    try {
      size_t pos = 0;
      io::pickle::load(bad, &pos, "gd_A.pt");
    } catch (const InputError& e) {
      ++errors;
      ASSERT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
  EXPECT_GE(errors, 500);
}

// ---- format detection and dispatch ---------------------------------------------------------------

TEST(TensorFile, DetectsFormatsByContent) {
  auto dir = test::scratch_dir();
  auto st = (dir / "weights.bin").string();  // extension deliberately uninformative
  io::write_safetensors(st, sample_tensors());
  EXPECT_EQ(io::detect_tensor_file(st), io::TensorFileFormat::kSafetensors);
  auto text = (dir / "x.safetensors").string();
  write_bytes(text, "not a tensor file at all");
  EXPECT_EQ(io::detect_tensor_file(text), io::TensorFileFormat::kUnknown);
  expect_one_line_naming(input_error([&] { io::load_tensors(text); }), text);
  auto tiny = (dir / "tiny").string();
  write_bytes(tiny, "PK");
  EXPECT_EQ(io::detect_tensor_file(tiny), io::TensorFileFormat::kUnknown);
  expect_one_line_naming(input_error([&] { io::detect_tensor_file((dir / "absent").string()); }),
                         "absent");
  expect_one_line_naming(input_error([&] { io::load_tensors(dir.string()); }), dir.string());
  expect_same(io::load_tensors(st), io::read_safetensors(st).tensors);
  if (test::has_gd_fixture("gd_A.pt")) {
    EXPECT_EQ(io::detect_tensor_file((gd_fixtures_dir() / "gd_A.pt").string()), io::TensorFileFormat::kTorchZip);
  }
}

TEST(TensorFile, LoadsCheckpointsOfEitherTorchFormat) {
  REQUIRE_ORACLE();
  auto dir = test::scratch_dir();
  ASSERT_NO_FATAL_FAILURE(make_checkpoints(dir));
  auto zip = (dir / "zip.pt").string();
  auto legacy = (dir / "legacy.pt").string();
  EXPECT_EQ(io::detect_tensor_file(zip), io::TensorFileFormat::kTorchZip);
  EXPECT_EQ(io::detect_tensor_file(legacy), io::TensorFileFormat::kTorchLegacy);
  TensorMap a = io::load_tensors(zip);
  TensorMap b = io::load_tensors(legacy);
  expect_same(a, b);
  // Converting to safetensors and back keeps everything.
  auto st = (dir / "converted.safetensors").string();
  io::write_safetensors(st, a);
  expect_same(a, io::load_tensors(st));
}

TEST(TensorFile, StripPrefix) {
  TensorMap m{{"module.a.weight", torch::zeros({1})},
              {"module.b", torch::ones({1})},
              {"modules.c", torch::ones({1})},
              {"module", torch::ones({1})},
              {"other.d", torch::ones({1})}};
  TensorMap s = io::strip_prefix(m, "module");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.count("a.weight"), 1u);
  EXPECT_EQ(s.count("b"), 1u);
  EXPECT_TRUE(io::strip_prefix(m, "absent").empty());
}

}  // namespace
}  // namespace tweedie
