#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "support/test_support.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/core/memory.h"

namespace tweedie {
namespace {

TEST(Fs, AtomicWriteReplacesAndLeavesNoTemp) {
  auto dir = test::scratch_dir();
  std::string path = (dir / "sub" / "out.bin").string();
  atomic_write_file(path, "first");
  atomic_write_file(path, "second");
  EXPECT_EQ(read_file(path), "second");
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir / "sub")) { (void)e; ++entries; }
  EXPECT_EQ(entries, 1);
}

TEST(Fs, AtomicWriteIntoUnwritablePlaceKeepsOldContent) {
  auto dir = test::scratch_dir();
  std::string path = (dir / "out.bin").string();
  atomic_write_file(path, "keep");
  // A directory in the way of the temp file's rename target is an error, not a crash.
  std::filesystem::create_directories(dir / "blocked");
  EXPECT_THROW(atomic_write_file((dir / "blocked").string(), "x"), InputError);
  EXPECT_EQ(read_file(path), "keep");
}

namespace fs = std::filesystem;

int count_entries(const fs::path& dir) {
  int n = 0;
  for (auto& e : fs::recursive_directory_iterator(dir)) { (void)e; ++n; }
  return n;
}

TEST(OutputTransaction, CommitPublishesEveryFileAtOnce) {
  auto dir = test::scratch_dir();
  const std::string a = (dir / "out" / "a.txt").string(), b = (dir / "out" / "deep" / "b.txt").string();
  {
    OutputTransaction tx;
    EXPECT_TRUE(OutputTransaction::active());
    atomic_write_file(a, "first");
    atomic_write_file(a, "second");  // a rewrite replaces the staged temp
    atomic_write_file(b, "b");
    EXPECT_FALSE(fs::exists(a));  // nothing visible before commit
    tx.commit();
    EXPECT_FALSE(OutputTransaction::active());
  }
  EXPECT_EQ(read_file(a), "second");
  EXPECT_EQ(read_file(b), "b");
  EXPECT_EQ(count_entries(dir / "out"), 3);  // a.txt, deep/, deep/b.txt: no temp files
}

TEST(OutputTransaction, WithoutCommitLeavesTheDirectoryAsItWas) {
  auto dir = test::scratch_dir();
  atomic_write_file((dir / "keep.txt").string(), "old");
  try {
    OutputTransaction tx;
    atomic_write_file((dir / "keep.txt").string(), "new");
    atomic_write_file((dir / "new" / "sub" / "x.txt").string(), "x");
    throw InputError("the run failed");
  } catch (const InputError&) {
  }
  EXPECT_EQ(read_file((dir / "keep.txt").string()), "old");
  EXPECT_FALSE(fs::exists(dir / "new"));  // directories it created are gone too
  EXPECT_EQ(count_entries(dir), 1);
  EXPECT_FALSE(OutputTransaction::active());
}

TEST(OutputTransaction, DoNotNest) {
  OutputTransaction outer;
  EXPECT_THROW(OutputTransaction inner, InternalError);
}

TEST(Fs, OutputChecksNameTheFlag) {
  auto dir = test::scratch_dir();
  const std::string file = (dir / "file.txt").string();
  atomic_write_file(file, "x");
  try {
    check_output_dir(file, "--output");
    FAIL() << "an existing file accepted as output directory";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--output"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a directory"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_output_dir(file + "/sub/deeper", "--output"), InputError);
  EXPECT_NO_THROW(check_output_dir((dir / "new" / "run").string(), "--output"));
  EXPECT_THROW(check_output_file((dir / "x.txt").string(), "-o", {"png", "npy"}), InputError);
  EXPECT_THROW(check_output_file(dir.string(), "-o"), InputError);
  EXPECT_NO_THROW(check_output_file((dir / "x.png").string(), "-o", {"png", "npy"}));
}

TEST(Fs, ReadFileRefusesDevicesAndSizesOverTheLimit) {
  EXPECT_THROW(read_file("/dev/zero"), InputError);
  auto dir = test::scratch_dir();
  const std::string path = (dir / "ten.bin").string();
  atomic_write_file(path, "0123456789");
  EXPECT_EQ(read_file(path, 10), "0123456789");
  EXPECT_THROW(read_file(path, 9), InputError);
}

TEST(Error, PrintableEscapesControlBytesAndBrokenUtf8) {
  EXPECT_EQ(printable("plain σ ε text"), "plain σ ε text");
  EXPECT_EQ(printable("a\x1b[2Jb"), "a\\x1b[2Jb");
  EXPECT_EQ(printable("bell\x07\n"), "bell\\x07\\x0a");
  EXPECT_EQ(printable("\x7f"), "\\x7f");
  EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");            // not UTF-8
  EXPECT_EQ(printable("\xc2\x9b"), "\\xc2\\x9b");            // C1 control (CSI) in UTF-8
  EXPECT_EQ(printable("\xe2\x82"), "\\xe2\\x82");            // truncated sequence
}

TEST(Error, JsonErrorsNameFileAndKeyPath) {
  const nlohmann::json j = nlohmann::json::parse(R"({"problems": [{"sweep": {"sigma": "x"}}]})");
  try {
    (void)j["problems"][0]["sweep"]["sigma"].get<double>();
    FAIL();
  } catch (const nlohmann::json::exception& e) {
    const std::string m = json_input_error("cfg.json", e).what();
    EXPECT_EQ(m, "cfg.json: key /problems/0/sweep/sigma: type must be number, but is string");
  }
  try {
    parse_json("{\"a\": 1,", "bad.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("bad.json: ", 0), 0u) << e.what();
    EXPECT_EQ(std::string(e.what()).find("[json.exception"), std::string::npos) << e.what();
  }
}

TEST(Memory, RequireMemoryRefusesWithTheFigure) {
  ::setenv("TWEEDIE_MEMORY_LIMIT", "1e9", 1);
  EXPECT_NO_THROW(require_memory(5e8, "half"));
  try {
    require_memory(7.8e11, "gaussian:m=1000000", "use impl=matrix-free");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "gaussian:m=1000000 needs 780 GB, but 1.0 GB of memory is available; use impl=matrix-free");
  }
  ::unsetenv("TWEEDIE_MEMORY_LIMIT");
}

TEST(Fs, ReadMissingFileIsInputError) {
  EXPECT_THROW(read_file("/nonexistent/tweedie/file"), InputError);
}

TEST(Fs, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Fs, Extension) {
  EXPECT_EQ(file_extension("a/b.NPY"), "npy");
  EXPECT_EQ(file_extension("a/b"), "");
}

}  // namespace
}  // namespace tweedie
