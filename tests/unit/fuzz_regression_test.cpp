// Replays every input under fuzz/regressions/<target>/ (each once crashed a libFuzzer harness
// of fuzz/, see docs/reliability.md) through the same reader in the normal build: it must
// either succeed or throw tweedie::InputError, never anything else.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <typeinfo>
#include <unistd.h>
#include <vector>

#include "tweedie/core/error.h"
#include "tweedie/core/fs.h"
#include "tweedie/io/npy.h"
#include "tweedie/io/pickle.h"
#include "tweedie/io/png.h"
#include "tweedie/io/safetensors.h"
#include "tweedie/io/torch_pt.h"
#include "tweedie/io/zip_reader.h"
#include "tweedie/problem.h"

#include "cli/config_file.h"

namespace tweedie {
namespace {

namespace fs = std::filesystem;

using Reader = std::function<void(std::string_view bytes, const std::string& name)>;

// The same calls as fuzz/fuzz_<target>.cpp, minus the sanitizer-only checks.
const std::map<std::string, Reader>& readers() {
  static const std::map<std::string, Reader> r = {
      {"npy", [](std::string_view b, const std::string& n) { (void)io::parse_npy(b, n); }},
      {"png",
       [](std::string_view b, const std::string& n) {
         try {
           (void)io::parse_png_text(b, n);
         } catch (const InputError&) {
         }
         (void)io::parse_png(b, n);
       }},
      {"safetensors", [](std::string_view b, const std::string& n) { (void)io::parse_safetensors(b, n); }},
      {"pickle",
       [](std::string_view b, const std::string& n) {
         size_t pos = 0;
         for (int i = 0; i < 8 && pos < b.size(); ++i) (void)io::pickle::load(b, &pos, n);
       }},
      {"torch_pt", [](std::string_view b, const std::string& n) { (void)io::parse_torch_pt(b, n); }},
      {"zip",
       [](std::string_view b, const std::string& n) {
         io::ZipReader zip(b, n);
         for (const auto& e : zip.entries()) {
           try {
             (void)zip.read(e.name);
           } catch (const InputError&) {
           }
         }
       }},
      // Through load_problem, as `tweedie solve --problem FILE` reads it: JSON parsing included
      // (the fuzz harness parses in memory). No y.npy beside it, so a valid file ends in an
      // InputError about y.npy.
      {"problem",
       [](std::string_view b, const std::string& n) {
         fs::path dir = fs::temp_directory_path() / ("tweedie-fuzz-regression-" + std::to_string(::getpid()));
         fs::create_directories(dir / fs::path(n).parent_path());
         fs::path file = dir / n;
         atomic_write_file(file.string(), b);
         try {
           (void)load_problem(file.string());
         } catch (...) {
           fs::remove_all(dir);
           throw;
         }
         fs::remove_all(dir);
       }},
      {"config",
       [](std::string_view b, const std::string& n) {
         std::istringstream in{std::string(b)};
         try {
           (void)cli::JsonOrTomlConfig("solve").from_config(in);
         } catch (const CLI::ParseError&) {  // the CLI's own input errors (exit code 2)
         }
       }},
  };
  return r;
}

TEST(FuzzRegression, EveryInputIsAcceptedOrAnInputError) {
  const char* source = std::getenv("TWEEDIE_SOURCE_DIR");
  const fs::path root = fs::path(source ? source : TWEEDIE_SOURCE_DIR) / "fuzz" / "regressions";
  ASSERT_TRUE(fs::is_directory(root)) << root;
  int replayed = 0;
  for (const auto& dir : fs::directory_iterator(root)) {
    if (!dir.is_directory()) continue;
    const std::string target = dir.path().filename().string();
    auto it = readers().find(target);
    ASSERT_NE(it, readers().end()) << "no reader for fuzz/regressions/" << target;
    for (const auto& file : fs::directory_iterator(dir.path())) {
      if (!file.is_regular_file()) continue;
      const std::string name = target + "/" + file.path().filename().string();
      const std::string bytes = read_file(file.path().string());
      try {
        it->second(bytes, name);
      } catch (const InputError& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.find('\n'), std::string::npos) << name << ": message is not one line: " << what;
        EXPECT_NE(what.find(name), std::string::npos) << name << ": message does not name the file: " << what;
      } catch (const std::exception& e) {
        ADD_FAILURE() << name << ": " << typeid(e).name() << " escaped instead of InputError: " << e.what();
      } catch (...) {
        ADD_FAILURE() << name << ": a non-std exception escaped";
      }
      ++replayed;
    }
  }
  std::cout << "replayed " << replayed << " regression input(s)\n";
}

}  // namespace
}  // namespace tweedie
