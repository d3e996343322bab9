#pragma once
// --config FILE for every subcommand: JSON ({"threads": 2, "seed": 7}) or TOML (threads = 2),
// with the same keys as the long flags; flags on the command line override the file.
#include <CLI/CLI.hpp>

namespace tweedie::cli {

class JsonOrTomlConfig : public CLI::ConfigTOML {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

}  // namespace tweedie::cli
