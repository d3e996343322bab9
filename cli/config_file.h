#pragma once
// --config FILE for every subcommand: JSON ({"threads": 2, "seed": 7}) or TOML (threads = 2),
// with the same keys as the long flags; flags on the command line override the file.
#include <CLI/CLI.hpp>

namespace tweedie::cli {

// Reads the file for subcommand `section`: every key becomes that subcommand's option.
class JsonOrTomlConfig : public CLI::ConfigTOML {
 public:
  // `file` names the file in error messages.
  explicit JsonOrTomlConfig(std::string section, std::string file = "--config file")
      : section_(std::move(section)), file_(std::move(file)) {}
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

 private:
  std::vector<CLI::ConfigItem> parse(std::istream& input) const;
  std::string section_, file_;
};

// CLI11 only reads config files on the root app, so main() finds `--config FILE` and the
// subcommand in argv first and installs this on the root with the file as its default.
// The subcommand's own --config option documents the flag and consumes it.
void install_config_file(CLI::App& root, int argc, const char* const* argv);

}  // namespace tweedie::cli
