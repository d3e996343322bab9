#pragma once
// Shared helpers for the GoogleTest suites: where fixtures live, scratch directories, and
// running the Python oracle (Debian's /usr/bin/python3 with numpy and torch).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace tweedie::test {

// Directory of shared/fixtures (env TWEEDIE_FIXTURES_DIR); empty if absent.
std::filesystem::path fixtures_dir();
// fixtures_dir()/guided-diffusion: the reference code's tensors (schedules, U-Net outputs).
std::filesystem::path gd_fixtures_dir();
// True when gd_fixtures_dir()/name exists (name "" = the directory itself).
bool has_gd_fixture(const std::string& name = "");
// A fresh, empty scratch directory unique to the running test.
std::filesystem::path scratch_dir();
// Runs `python3 -c <code>` with the oracle interpreter; returns its exit status, stdout in *out.
int run_python(const std::string& code, std::string* out = nullptr);
// True when the oracle interpreter can import every module in `modules` (comma separated).
bool python_has(const std::string& modules);

// True when the environment says CI=true: there a missing fixture or Python oracle fails the
// test instead of skipping it, so CI cannot pass by testing nothing.
bool ci_strict();

// Ends the test as skipped (locally) or failed (CI=true), with the streamed reason; see
// TWEEDIE_SKIP_MISSING below.
struct MissingFixture {
  const char* file;
  int line;
  void operator=(const ::testing::Message& reason) const {
    const bool strict = ci_strict();
    ::testing::internal::AssertHelper(
        strict ? ::testing::TestPartResult::kFatalFailure : ::testing::TestPartResult::kSkip, file, line,
        strict ? "CI=true, so a missing fixture or oracle is a failure: " : "") = reason;
  }
};

}  // namespace tweedie::test

// Use where a test needs shared/fixtures or the Python oracle and finds it missing:
//   if (!test::has_gd_fixture()) TWEEDIE_SKIP_MISSING() << "guided-diffusion fixtures not found";
#define TWEEDIE_SKIP_MISSING() \
  return ::tweedie::test::MissingFixture{__FILE__, __LINE__} = ::testing::Message()

namespace tweedie::test {

}  // namespace tweedie::test
