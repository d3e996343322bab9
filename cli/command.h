#pragma once
// The CLI's plumbing: every subcommand is a Command in its own file, enrolled with one
// TWEEDIE_REGISTER_COMMAND line. The base class adds the shared options (--threads, --seed,
// --device, --quiet, --config) so every `tweedie <cmd> --help` lists them with defaults.
#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tweedie/core/distributed.h"

namespace tweedie::cli {

struct CommonOptions {
  int threads = 0;            // 0 = usable_cpus(), at most max_threads()
  uint64_t seed = 0;          // 0 … 2^64−1
  std::string device = "cpu";
  bool quiet = false;
};

class Command {
 public:
  Command(std::string name, std::string description);
  virtual ~Command() = default;

  // Creates the subcommand on `root` with the shared options and this command's own.
  void attach(CLI::App& root);
  bool parsed() const { return app_ != nullptr && app_->parsed(); }
  // Validates the shared options and every numeric option (finite), applies threads and device,
  // then runs inside an OutputTransaction unless the command writes incrementally: a run that
  // fails (exception or non-zero exit) leaves its outputs as they were. Returns the exit code.
  int execute();

  const std::string& name() const { return name_; }

 protected:
  virtual void add_options(CLI::App& app) = 0;
  virtual int run() = 0;
  // Commands whose partial outputs are the point (training checkpoints for resuming after
  // kill -9, finished experiment cells) return true and check their inputs before writing.
  virtual bool writes_incrementally() const { return false; }

  const CommonOptions& common() const { return common_; }
  torch::Device device() const { return device_; }
  // Prints to stdout unless --quiet.
  void say(const std::string& line) const;

 private:
  std::string name_, description_;
  CLI::App* app_ = nullptr;
  CommonOptions common_;
  std::string config_file_;
  torch::Device device_ = torch::kCPU;
};

using CommandFactory = std::function<std::unique_ptr<Command>()>;
std::vector<CommandFactory>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(CommandFactory f) { command_registry().push_back(std::move(f)); }
};

#define TWEEDIE_REGISTER_COMMAND(Type) \
  static const ::tweedie::cli::CommandRegistrar Type##_registrar{[] { return std::make_unique<Type>(); }}

// The largest --threads accepted: 4 × the machine's cores, at least 16. More only thrashes, and
// LibTorch spawns them all eagerly (100000 never returned).
int max_threads();

// --dist and --dist-timeout, for the commands that can run as one rank of several (train,
// experiment; docs/distributed.md).
struct DistOptions {
  std::string mode = "auto";  // auto: distributed when RANK/WORLD_SIZE are set
  double timeout_s = 60;      // rendezvous and every collective / store wait
};
void add_dist_options(CLI::App& app, DistOptions& o);
// Joins the group the environment describes (or a single-process context); InputError on a bad
// environment or a rendezvous that times out.
Distributed join_group(const DistOptions& o);

// Parses "lo,hi" into two doubles; InputError naming `flag` otherwise.
std::pair<double, double> parse_range(const std::string& text, const std::string& flag);

}  // namespace tweedie::cli
