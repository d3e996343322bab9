#include "tweedie/core/interrupt.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <string>
#include <utility>

namespace tweedie {
namespace {

std::atomic<int> pending_signal{0};
std::function<void()>& poll_hook() {
  static std::function<void()> hook;
  return hook;
}

extern "C" void on_signal(int signal) {
  request_interrupt(signal);
  // the next one of either ends the process
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

std::string signal_name(int signal) {
  switch (signal) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "signal " + std::to_string(signal);
  }
}

}  // namespace

Interrupted::Interrupted(int signal)
    : std::runtime_error("interrupted by " + signal_name(signal) +
                         "; nothing is half-written: an experiment or a training run resumes from what it finished"),
      signal_(signal) {}

void install_signal_handlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A write past the file-size limit (ulimit -f) would kill the process by SIGXFSZ and leave its
  // staged temp files; ignored, the write fails with EFBIG and the error boundary reports the
  // path in one line, removing what the run staged (docs/reliability.md).
  std::signal(SIGXFSZ, SIG_IGN);
}

void request_interrupt(int signal) { pending_signal.store(signal, std::memory_order_relaxed); }

void set_interrupt_poll(std::function<void()> poll) { poll_hook() = std::move(poll); }

void check_interrupt() {
  if (const int s = pending_signal.load(std::memory_order_relaxed)) throw Interrupted(s);
  if (poll_hook()) poll_hook()();
}

}  // namespace tweedie
