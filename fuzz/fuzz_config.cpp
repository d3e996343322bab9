// libFuzzer harness: the --config FILE reader (cli/config_file.cpp, JSON or TOML). Its errors
// are CLI11's: CLI::ParseError (ConversionError, ...), which the CLI reports with exit code 2.
#include <sstream>
#include <string>

#include "cli/config_file.h"
#include "fuzz/fuzz_common.h"

TWEEDIE_FUZZ_INIT

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream input(std::string(reinterpret_cast<const char*>(data), size));
  tweedie::cli::JsonOrTomlConfig config("solve");
  try {
    for (const auto& item : config.from_config(input)) {
      (void)item.fullname();
      for (const auto& s : item.inputs) (void)s.size();
    }
  } catch (const CLI::ParseError&) {
  } catch (const tweedie::InputError&) {
  }
  return 0;
}
