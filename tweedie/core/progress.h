#pragma once
// Progress reporting for long work. On a terminal: one redrawn bar with rate and ETA.
// Otherwise (CI logs, pipes): a plain line every `plain_interval_s` seconds and at the end.
// Silent when quiet. Writes to stderr so stdout stays clean for results.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tweedie {

struct ProgressOptions {
  bool quiet = false;
  double plain_interval_s = 10.0;   // non-TTY: seconds between lines
  std::string unit = "it";          // "it", "img", "step" ...
  std::FILE* stream = stderr;
  int force_tty = -1;               // -1 detect, 0 plain, 1 bar (tests)
  int64_t initial = 0;              // units already done at start (a resumed run): not in the rate
};

class Progress {
 public:
  Progress(std::string label, int64_t total, ProgressOptions options = {});
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Reports `done` of `total` units finished; `status` is appended (e.g. "loss 0.031").
  void update(int64_t done, const std::string& status = "");
  // Final line (done = total unless given); called by the destructor if not called before,
  // except while an exception unwinds (an abandoned run prints no "100%" above its error).
  void finish(const std::string& status = "");

  // Reports a training step: `done` and an exponentially smoothed loss (weight 0.02 on the
  // newest), shown as "loss 0.0312".
  void update_loss(int64_t done, double loss);

  // "1h02m", "3m05s", "12.3s".
  static std::string format_duration(double seconds);

 private:
  void emit(bool final_line);

  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  std::string status_;
  ProgressOptions options_;
  bool tty_;
  bool finished_ = false;
  // Exceptions in flight at construction: more at destruction means the work is being abandoned,
  // and the bar must not print a final "100%" line above the error.
  int uncaught_at_start_ = 0;
  double smoothed_loss_ = -1;
  std::chrono::steady_clock::time_point start_, last_emit_;
};

}  // namespace tweedie
