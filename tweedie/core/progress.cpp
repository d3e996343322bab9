#include "tweedie/core/progress.h"

#include <exception>

#include <algorithm>
#include <cmath>

#include <unistd.h>

namespace tweedie {

Progress::Progress(std::string label, int64_t total, ProgressOptions options)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 0)), options_(std::move(options)) {
  tty_ = options_.force_tty >= 0 ? options_.force_tty == 1 : ::isatty(::fileno(options_.stream)) == 1;
  start_ = last_emit_ = std::chrono::steady_clock::now();
  uncaught_at_start_ = std::uncaught_exceptions();
}

Progress::~Progress() {
  if (finished_) return;
  if (std::uncaught_exceptions() > uncaught_at_start_) {
    // Unwinding from an error: the error line is the whole report ("tweedie: error: ..."), and a
    // terminal bar in progress gets its line ended so that message starts on its own.
    finished_ = true;
    if (!options_.quiet && tty_) std::fputc('\n', options_.stream);
    return;
  }
  finish();
}

std::string Progress::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, static_cast<int>(s) % 3600 / 60);
  }
  return buf;
}

void Progress::update(int64_t done, const std::string& status) {
  done_ = std::clamp<int64_t>(done, 0, total_ > 0 ? total_ : done);
  status_ = status;
  if (options_.quiet) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_emit_).count();
  // A terminal bar redraws at most 10 times a second; plain lines every plain_interval_s.
  if (since >= (tty_ ? 0.1 : options_.plain_interval_s)) {
    last_emit_ = now;
    emit(false);
  }
}

void Progress::finish(const std::string& status) {
  if (finished_) return;
  finished_ = true;
  if (total_ > 0) done_ = total_;
  if (!status.empty()) status_ = status;
  if (!options_.quiet) emit(true);
}

void Progress::emit(bool final_line) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t done_here = std::max<int64_t>(done_ - options_.initial, 0);
  double rate = elapsed > 0 ? static_cast<double>(done_here) / elapsed : 0.0;
  double eta = (rate > 0 && total_ > 0) ? static_cast<double>(total_ - done_) / rate : NAN;
  std::string tail = " " + std::to_string(done_) + "/" + std::to_string(total_);
  char rate_buf[48];
  std::snprintf(rate_buf, sizeof rate_buf, " %.2f %s/s", rate, options_.unit.c_str());
  tail += rate_buf;
  tail += final_line ? " in " + format_duration(elapsed) : " eta " + format_duration(eta);
  if (!status_.empty()) tail += "  " + status_;
  if (tty_) {
    constexpr int kWidth = 28;
    int filled = total_ > 0 ? static_cast<int>(kWidth * done_ / total_) : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(options_.stream, "\r\033[K%s [%s]%s%s", label_.c_str(), bar.c_str(), tail.c_str(),
                 final_line ? "\n" : "");
  } else {
    int pct = total_ > 0 ? static_cast<int>(100 * done_ / total_) : 100;
    std::fprintf(options_.stream, "%s: %3d%%%s\n", label_.c_str(), pct, tail.c_str());
  }
  std::fflush(options_.stream);
}

void Progress::update_loss(int64_t done, double loss) {
  smoothed_loss_ = smoothed_loss_ < 0 ? loss : 0.98 * smoothed_loss_ + 0.02 * loss;
  char status[48];
  std::snprintf(status, sizeof status, "loss %.4f", smoothed_loss_);
  update(done, status);
}

}  // namespace tweedie
