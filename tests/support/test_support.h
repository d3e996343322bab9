#pragma once
// Shared helpers for the GoogleTest suites: where fixtures live, scratch directories, and
// running the Python oracle (Debian's /usr/bin/python3 with numpy and torch).
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

}  // namespace tweedie::test
