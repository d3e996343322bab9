#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_support.h"
#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"

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
