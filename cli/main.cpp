// tweedie: recover signals and images from incomplete, noisy and nonlinear measurements with
// generative priors. This file only dispatches; each subcommand lives in its own file.
#include <iostream>
#include <string>

#include "cli/command.h"
#include "cli/config_file.h"
#include "tweedie/core/error.h"
#include "tweedie/core/version.h"

namespace {

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int fail(int code, const std::string& what) {
  std::cerr << "tweedie: error: " << one_line(what) << '\n';
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tweedie: signal and image recovery with generative (diffusion) priors", "tweedie"};
  app.set_version_flag("--version", std::string("tweedie " TWEEDIE_VERSION " (git " TWEEDIE_GIT_HASH ")"));
  app.require_subcommand(1);
  app.footer("Run 'tweedie <command> --help' for a command's options and their defaults.");

  std::vector<std::unique_ptr<tweedie::cli::Command>> commands;
  for (auto& make : tweedie::cli::command_registry()) {
    commands.push_back(make());
  }
  std::sort(commands.begin(), commands.end(), [](auto& a, auto& b) { return a->name() < b->name(); });
  for (auto& c : commands) c->attach(app);

  try {
    tweedie::cli::install_config_file(app, argc, argv);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return fail(2, e.what());
  }
  for (auto& c : commands) {
    if (!c->parsed()) continue;
    try {
      return c->execute();
    } catch (const tweedie::InputError& e) {
      return fail(2, e.what());
    } catch (const c10::Error& e) {
      return fail(1, e.what_without_backtrace());
    } catch (const std::exception& e) {
      return fail(1, e.what());
    }
  }
  return fail(2, "no command given; run 'tweedie --help'");
}
