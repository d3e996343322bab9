#include "cli/command.h"

#include <iostream>

#include "cli/config_file.h"
#include "tweedie/core/error.h"
#include "tweedie/core/runtime.h"

namespace tweedie::cli {

std::vector<CommandFactory>& command_registry() {
  static std::vector<CommandFactory> registry;
  return registry;
}

Command::Command(std::string name, std::string description)
    : name_(std::move(name)), description_(std::move(description)) {}

void Command::attach(CLI::App& root) {
  app_ = root.add_subcommand(name_, description_);
  app_->option_defaults()->always_capture_default();
  add_options(*app_);
  auto* g = app_->add_option_group("Common options");
  g->add_option("--threads", common_.threads, "Intra-op CPU threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  g->add_option("--seed", common_.seed, "Seed of the random generator");
  g->add_option("--device", common_.device, "Device: cpu, cuda or cuda:N");
  g->add_flag("--quiet,-q", common_.quiet, "No progress or informational output");
  // Read by install_config_file() in main before parsing; declared here for --help.
  g->add_option("--config", config_file_, "JSON or TOML file of options (keys = long flag names; flags win)");
}

int Command::execute() {
  set_threads(common_.threads);
  device_ = parse_device(common_.device);
  return run();
}

void Command::say(const std::string& line) const {
  if (!common_.quiet) std::cout << line << '\n';
}

std::pair<double, double> parse_range(const std::string& text, const std::string& flag) {
  auto comma = text.find(',');
  try {
    if (comma == std::string::npos) throw std::invalid_argument("no comma");
    size_t used = 0;
    double lo = std::stod(text.substr(0, comma), &used);
    double hi = std::stod(text.substr(comma + 1));
    if (!(hi > lo)) throw std::invalid_argument("empty");
    return {lo, hi};
  } catch (const std::exception&) {
    throw InputError(flag + " '" + text + "': expected LO,HI with LO < HI, e.g. -1,1");
  }
}

}  // namespace tweedie::cli
