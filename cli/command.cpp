#include "cli/command.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/config_file.h"
#include "tweedie/core/distributed.h"
#include "tweedie/core/error.h"
#include "tweedie/core/interrupt.h"
#include "tweedie/core/fs.h"
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
  g->add_option("--threads", common_.threads, "CPU threads of LibTorch and OpenBLAS (0 = the CPUs this process may use: affinity mask, cgroup quota)")
      ->check(CLI::Range(0, max_threads()).description("0.." + std::to_string(max_threads())));
  g->add_option("--seed", common_.seed, "Seed of the random generator (0 to 2^64-1)")
      ->check(CLI::Validator(
          [](std::string& v) {
            return v.find('-') == std::string::npos ? std::string()
                                                    : "'" + v + "': a seed is a non-negative integer (0 to 2^64-1)";
          },
          "UINT"));
  g->add_option("--device", common_.device, "Device: cpu, cuda or cuda:N");
  g->add_flag("--quiet,-q", common_.quiet, "No progress or informational output");
  // Read by install_config_file() in main before parsing; declared here for --help.
  g->add_option("--config", config_file_, "JSON or TOML file of options (keys = long flag names; flags win)");
}

int max_threads() { return static_cast<int>(std::max(16u, 4 * std::thread::hardware_concurrency())); }

int Command::execute() {
  // A NaN or infinite number given to any option is refused here, once for every command;
  // ranges and cross-option checks stay with each command.
  for (const CLI::Option* opt : app_->get_options()) {
    // Floating-point options only: a file or a title may well be called "nan".
    if (!opt->nonpositional() || opt->get_type_name().find("FLOAT") == std::string::npos) continue;
    for (const std::string& text : opt->results()) {
      const char* begin = text.c_str();
      char* end = nullptr;
      const double v = std::strtod(begin, &end);
      if (end != begin && *end == '\0') require_finite(v, opt->get_name());  // "--snr = nan: expected ..."
    }
  }
  install_signal_handlers();  // SIGINT/SIGTERM stop the run at its next check point (core/interrupt.h)
  keep_freed_memory();  // activations are reused, not re-mapped, between network calls
  set_threads(common_.threads);
  device_ = parse_device(common_.device);
  if (writes_incrementally()) return run();
  OutputTransaction outputs;
  int code = run();
  if (code == 0) outputs.commit();
  return code;
}

void Command::say(const std::string& line) const {
  // Flushed: a long run logging to a file (train, experiment under nohup) shows each line when
  // it happens, not at exit.
  if (!common_.quiet) std::cout << line << std::endl;
}

void add_dist_options(CLI::App& app, DistOptions& o) {
  auto* g = app.add_option_group("Distributed (docs/distributed.md)");
  g->add_option("--dist", o.mode,
                "auto: join the process group when RANK and WORLD_SIZE are set (torchrun's variables, with "
                "MASTER_ADDR, MASTER_PORT); on: require them; off: one process, ignoring them")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  g->add_option("--dist-timeout", o.timeout_s,
                "Seconds to wait for the other ranks (rendezvous, every collective): past it, a lost rank is an "
                "error, never a hang")
      ->check(CLI::PositiveNumber);
}

Distributed join_group(const DistOptions& o) {
  return Distributed::from_env(parse_dist_mode(o.mode),
                               std::chrono::milliseconds(static_cast<int64_t>(std::ceil(o.timeout_s * 1000))));
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
