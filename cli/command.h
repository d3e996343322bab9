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

namespace tweedie::cli {

struct CommonOptions {
  int threads = 0;            // 0 = all cores
  uint64_t seed = 0;
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
  // Applies the shared options (threads, device), then runs. Returns the exit code.
  int execute();

  const std::string& name() const { return name_; }

 protected:
  virtual void add_options(CLI::App& app) = 0;
  virtual int run() = 0;

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

// Parses "lo,hi" into two doubles; InputError naming `flag` otherwise.
std::pair<double, double> parse_range(const std::string& text, const std::string& flag);

}  // namespace tweedie::cli
