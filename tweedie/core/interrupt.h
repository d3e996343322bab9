#pragma once
// Stopping a long run on request (issue 29, item 3). A signal handler only records the request;
// the run notices it at its next check point (every denoiser evaluation, training step and
// experiment cell) and unwinds with `Interrupted`, so destructors run: an open OutputTransaction
// deletes its staged files (the outputs stay as they were), finished experiment cells and training
// checkpoints stay, and a rerun resumes from them. The CLI maps `Interrupted` to exit 128 + signal
// (130 for SIGINT, 143 for SIGTERM) with one line. A second signal ends the process at once.
//
// The Python module installs a poll instead of handlers (Python owns SIGINT): it checks Python's
// pending signals at the same check points and raises KeyboardInterrupt through them.
#include <functional>
#include <stdexcept>

namespace tweedie {

class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signal);
  int signal() const { return signal_; }

 private:
  int signal_;
};

// SIGINT and SIGTERM request an interrupt; the second of them ends the process (the default action).
// SIGXFSZ is ignored, so a write past the file-size limit fails as a write (EFBIG) instead.
void install_signal_handlers();
// Records a request, as the handlers do (async-signal-safe).
void request_interrupt(int signal);
// A check run at every check point besides the signal flag; it may throw its own exception. Empty
// to remove.
void set_interrupt_poll(std::function<void()> poll);
// Throws Interrupted if a signal was recorded, then runs the poll. Cheap: an atomic load.
void check_interrupt();

}  // namespace tweedie
