#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tweedie/core/data_dir.h"
#include "tweedie/core/error.h"
#include "tweedie/core/progress.h"
#include "tweedie/core/runtime.h"

namespace tweedie {
namespace {

TEST(Runtime, SameSeedSameNumbersDifferentSeedDifferent) {
  auto g1 = make_generator(42), g2 = make_generator(42), g3 = make_generator(43);
  auto a = randn({1000}, g1), b = randn({1000}, g2), c = randn({1000}, g3);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  // The stream continues: a second draw differs from the first.
  EXPECT_FALSE(torch::equal(randn({1000}, g1), a));
  auto u = rand({1000}, g1);
  EXPECT_GE(u.min().item<float>(), 0.0f);
  EXPECT_LT(u.max().item<float>(), 1.0f);
}

TEST(Runtime, ThreadsAndDevices) {
  EXPECT_EQ(set_threads(1), 1);
  EXPECT_GE(set_threads(0), 1);
  // --threads bounds OpenBLAS's own pool too (Debian's libopenblas0-pthread is the BLAS here)
  if (blas_threads() == -1) {
    if (std::getenv("CI") && std::string(std::getenv("CI")) == "true") FAIL() << "OpenBLAS is not the loaded BLAS";
  } else {
    set_threads(0);
    EXPECT_EQ(set_threads(1), 1);
    EXPECT_EQ(blas_threads(), 1);
  }
  // the default counts the CPUs the process may use: here, one after narrowing the affinity mask
  cpu_set_t saved, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  int first = 0;
  while (!CPU_ISSET(first, &saved)) ++first;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  EXPECT_EQ(usable_cpus(), 1);
  EXPECT_EQ(set_threads(0), 1);
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  // at most the mask (a cgroup CPU quota may lower it further)
  EXPECT_LE(usable_cpus(), std::min(CPU_COUNT(&saved), static_cast<int>(std::thread::hardware_concurrency())));
  EXPECT_GE(usable_cpus(), 1);
  EXPECT_EQ(parse_device("cpu"), torch::Device(torch::kCPU));
  EXPECT_THROW(parse_device("tpu"), InputError);
  if (!torch::cuda::is_available()) {
    EXPECT_THROW(parse_device("cuda"), InputError);
  }
}

std::string capture_progress(int force_tty, bool quiet, const std::function<void(Progress&)>& steps = {}) {
  std::FILE* f = std::tmpfile();
  {
    ProgressOptions o;
    o.stream = f;
    o.force_tty = force_tty;
    o.quiet = quiet;
    o.plain_interval_s = 0.0;
    o.unit = "img";
    Progress p("train", 10, o);
    if (steps) steps(p);
    else for (int i = 1; i <= 10; ++i) p.update(i, "loss 0.5");
  }
  std::rewind(f);
  std::string text;
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  return text;
}

TEST(Progress, PlainLinesWhenNotATerminal) {
  std::string text = capture_progress(0, false);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_NE(text.find("train: 100% 10/10"), std::string::npos) << text;
  EXPECT_NE(text.find("img/s"), std::string::npos);
  EXPECT_NE(text.find("loss 0.5"), std::string::npos);
}

TEST(Progress, AnAbandonedBarPrintsNoFinalLine) {
  // Destroyed while an exception unwinds (a run that failed): no "100%" above the error line.
  std::FILE* f = std::tmpfile();
  try {
    ProgressOptions o;
    o.stream = f;
    o.force_tty = 0;
    o.plain_interval_s = 1e9;  // no periodic line: only a final one could appear
    Progress p("train", 10, o);
    p.update(3);
    throw std::runtime_error("lost");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(std::ftell(f), 0L) << "an abandoned bar wrote its final line";
  std::fclose(f);
  // Guard: the same bar destroyed normally does write it.
  std::FILE* g = std::tmpfile();
  {
    ProgressOptions o;
    o.stream = g;
    o.force_tty = 0;
    o.plain_interval_s = 1e9;
    Progress p("train", 10, o);
    p.update(3);
  }
  EXPECT_GT(std::ftell(g), 0L);
  std::fclose(g);
}

TEST(Progress, LossIsSmoothedExponentially) {
  // 1, then 0 nine times: 0.98^k after k zeros
  std::string text = capture_progress(0, false, [](Progress& p) {
    for (int i = 1; i <= 10; ++i) p.update_loss(i, i == 1 ? 1.0 : 0.0);
  });
  EXPECT_NE(text.find("loss 1.0000"), std::string::npos) << text;
  EXPECT_NE(text.find("loss 0.9800"), std::string::npos) << text;
  EXPECT_NE(text.find("loss 0.8337"), std::string::npos) << text;  // 0.98⁹
}

TEST(Progress, BarOnTerminalAndSilentWhenQuiet) {
  EXPECT_NE(capture_progress(1, false).find("\r\033[Ktrain ["), std::string::npos);
  EXPECT_EQ(capture_progress(0, true), "");
}

TEST(Progress, ResumedRunRatesOnlyTheNewUnits) {
  // A run resumed at 9 of 10 does one unit in >= 0.1 s: at most 10 units/s. Counting the 9
  // resumed units (the old behaviour) shows >= 90/s and an ETA far too short.
  std::FILE* f = std::tmpfile();
  {
    ProgressOptions o;
    o.stream = f;
    o.force_tty = 0;
    o.plain_interval_s = 0.0;
    o.initial = 9;
    Progress p("train", 10, o);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    p.update(10);
  }
  std::rewind(f);
  char buf[512] = {};
  std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  const std::string text(buf);
  const auto at = text.find("10/10 ");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_LE(std::stod(text.substr(at + 6)), 10.0) << text;
}

TEST(Progress, DurationFormat) {
  EXPECT_EQ(Progress::format_duration(12.34), "12.3s");
  EXPECT_EQ(Progress::format_duration(185), "3m05s");
  EXPECT_EQ(Progress::format_duration(3720), "1h02m");
}

// The data directory (core/data_dir.h): $TWEEDIE_DATA_DIR wins; a relative path is looked up
// there only when it does not exist from the working directory; a bad variable is an InputError
// naming it.
TEST(DataDir, EnvironmentVariableLookupAndPrecedence) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("tweedie-data-dir-" + std::to_string(::getpid()));
  fs::create_directories(root / "models" / "m");
  std::ofstream(root / "models" / "m" / "w.bin") << "x";
  const char* old = std::getenv("TWEEDIE_DATA_DIR");
  const std::string saved = old ? old : "";
  ::setenv("TWEEDIE_DATA_DIR", root.c_str(), 1);
  EXPECT_EQ(data_dir().value_or(""), root.string());
  EXPECT_EQ(data_path("models/m/w.bin"), (root / "models" / "m" / "w.bin").string());
  EXPECT_EQ(data_path("models/m/none.bin"), "models/m/none.bin");  // absent there too: left as given
  EXPECT_EQ(data_path("/abs/models/m/w.bin"), "/abs/models/m/w.bin");
  // A path that exists from the working directory is not redirected.
  const fs::path cwd = fs::current_path();
  fs::current_path(root / "models");
  EXPECT_EQ(data_path("m/w.bin"), "m/w.bin");
  fs::current_path(cwd);
  // A variable naming no data directory is refused by name.
  ::setenv("TWEEDIE_DATA_DIR", (root / "models").c_str(), 1);
  try {
    data_dir();
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("TWEEDIE_DATA_DIR"), std::string::npos) << e.what();
  }
  if (old) ::setenv("TWEEDIE_DATA_DIR", saved.c_str(), 1); else ::unsetenv("TWEEDIE_DATA_DIR");
  fs::remove_all(root);
}

}  // namespace
}  // namespace tweedie
