// tweedie: recover signals and images from incomplete, noisy and nonlinear measurements with
// generative priors. This file dispatches, and is the error boundary: whatever a command throws
// becomes one line on stderr, `tweedie: error: <input>: <problem>`, with exit code 2 when the
// user's input caused it and 1 only for tweedie's own bugs.
#include <filesystem>
#include <iostream>
#include <new>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/config_file.h"
#include "tweedie/core/error.h"
#include "tweedie/core/interrupt.h"
#include "tweedie/core/memory.h"
#include "tweedie/core/plugin.h"
#include "tweedie/core/version.h"

namespace {

// One line, every control byte escaped (messages quote file names, JSON text, chunk names).
int fail(int code, const std::string& what) {
  std::string s = what;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::cerr << "tweedie: error: " << tweedie::printable(s) << '\n';
  return code;
}

// LibTorch's message without its "Exception raised from ..." trace and without the
// "[enforce fail at file:line]" location; first line only.
std::string torch_message(const c10::Error& e) {
  std::string s = e.what_without_backtrace();
  auto nl = s.find('\n');
  if (nl != std::string::npos) s.erase(nl);
  if (s.rfind("[enforce fail at ", 0) == 0) {
    auto close = s.find("] ");
    if (close != std::string::npos) s.erase(0, close + 2);
  }
  return s;
}

// Runs `body`, mapping every exception to the exit code and one-line message above.
template <class F>
int guarded(F&& body) {
  try {
    return body();
  } catch (const tweedie::Interrupted& e) {
    // not an error: the user asked; 128 + the signal, as a shell reports a process it killed
    std::cerr << "tweedie: " << e.what() << '\n';
    return 128 + e.signal();
  } catch (const tweedie::InputError& e) {
    return fail(2, e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the user named (output directory, input file) that cannot be used.
    std::string where = e.path1().empty() ? "" : e.path1().string() + ": ";
    return fail(2, where + e.code().message());
  } catch (const nlohmann::json::exception& e) {
    // Every JSON we read came from the user (configs, problem.json, model.json); read sites
    // name the file, this catches the rest with the key path at least.
    return fail(2, tweedie::json_input_error("JSON input", e).what());
  } catch (const std::bad_alloc&) {
    return fail(2, "out of memory: the request needs more memory than is available (" +
                       tweedie::format_bytes(double(tweedie::available_memory_bytes())) + " free); use smaller sizes");
  } catch (const c10::Error& e) {
    std::string m = torch_message(e);
    // An allocation that could not be served is the size of the request, not a bug of ours.
    if (m.find("you tried to allocate") != std::string::npos || m.find("DefaultCPUAllocator") != std::string::npos)
      return fail(2, "out of memory: " + m);
    return fail(1, m);
  } catch (const std::exception& e) {
    return fail(1, e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tweedie: signal and image recovery with generative (diffusion) priors", "tweedie"};
  app.set_version_flag("--version", std::string("tweedie " TWEEDIE_VERSION " (git " TWEEDIE_GIT_HASH ")"));
  app.require_subcommand(1);
  app.footer("Run 'tweedie <command> --help' for a command's options and their defaults.");

  // Plugins first ($TWEEDIE_PLUGINS, core/plugin.h): their parts appear in every command's help
  // and are found by name in specs and configs.
  if (int code = guarded([] {
        tweedie::load_plugins_from_environment();
        return 0;
      }))
    return code;

  std::vector<std::unique_ptr<tweedie::cli::Command>> commands;
  for (auto& make : tweedie::cli::command_registry()) {
    commands.push_back(make());
  }
  std::sort(commands.begin(), commands.end(), [](auto& a, auto& b) { return a->name() < b->name(); });
  for (auto& c : commands) c->attach(app);

  // CLI11 says only "A subcommand is required" for `tweedie frobnicate`: name the word.
  if (argc > 1 && argv[1][0] != '-') {
    std::string word = argv[1];
    bool known = false;
    for (auto& c : commands) known = known || c->name() == word;
    if (!known) return fail(2, "unknown command '" + word + "'; run 'tweedie --help' for the list");
  }

  bool answered = false;  // --help or --version: printed, nothing to run
  int code = guarded([&] {
    try {
      tweedie::cli::install_config_file(app, argc, argv);
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      answered = e.get_exit_code() == 0;
      return answered ? app.exit(e) : fail(2, e.what());
    }
    return 0;
  });
  if (answered || code != 0) return code;
  for (auto& c : commands) {
    if (!c->parsed()) continue;
    return guarded([&] { return c->execute(); });
  }
  return fail(2, "no command given; run 'tweedie --help'");
}
