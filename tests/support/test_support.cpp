#include "support/test_support.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <sys/wait.h>
#include <unistd.h>

namespace tweedie::test {
namespace fs = std::filesystem;

fs::path fixtures_dir() {
  const char* env = std::getenv("TWEEDIE_FIXTURES_DIR");
  fs::path p = env ? fs::path(env) : fs::path(TWEEDIE_SOURCE_DIR) / ".." / "shared" / "fixtures";
  return fs::exists(p) ? fs::canonical(p) : fs::path();
}

fs::path scratch_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "scratch";
  fs::path p = fs::temp_directory_path() / "tweedie-tests" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

static std::string python_exe() {
  const char* env = std::getenv("TWEEDIE_PYTHON");
  return (env && *env) ? env : "/usr/bin/python3";
}

int run_python(const std::string& code, std::string* out) {
  fs::path script = fs::temp_directory_path() / "tweedie-tests" /
                    ("oracle_" + std::to_string(::getpid()) + ".py");
  fs::create_directories(script.parent_path());
  { std::ofstream(script) << code; }
  std::string cmd = python_exe() + " " + script.string() + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf{};
  std::string text;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) text.append(buf.data(), n);
  int status = ::pclose(pipe);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool python_has(const std::string& modules) {
  return run_python("import " + modules + "\n") == 0;
}

bool ci_strict() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::filesystem::path gd_fixtures_dir() { return fixtures_dir() / "guided-diffusion"; }

bool has_gd_fixture(const std::string& name) {
  return !fixtures_dir().empty() && std::filesystem::exists(name.empty() ? gd_fixtures_dir() : gd_fixtures_dir() / name);
}

}  // namespace tweedie::test
